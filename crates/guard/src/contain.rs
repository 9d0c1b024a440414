//! Containing panics of the parsing dependencies.
//!
//! symphonia's demuxers and codecs panic on some malformed streams (failed
//! assertions in the Matroska reader, an index out of bounds in the AAC
//! decoder, an `unwrap` in the MP4 `esds` parser), and `tokenizers` on some
//! malformed `tokenizer.json` files. The callers check what they can first
//! (`vkw-audio`'s `precheck/`, `vkw-model`'s JSON check), so the known cases
//! never panic; the call itself runs under [`contain`], which turns any
//! other panic into an error value.
//!
//! The panic hook is process-global, and the default one prints the message
//! (and, with `RUST_BACKTRACE`, a backtrace) before unwinding starts, so
//! catching the unwind alone would still write to stderr. On first use,
//! [`contain`] therefore wraps whatever hook is installed at that moment in
//! one that stays silent while the *current thread* is inside [`contain`],
//! and otherwise calls the wrapped hook. This is sound with other threads
//! panicking concurrently (the flag is thread-local) and with hooks installed
//! earlier (they are kept). A hook the application installs *later* replaces
//! the wrapper: contained panics are then reported by that hook, but still
//! contained. In a `panic = "abort"` build nothing can be contained; the
//! prechecks are then the only protection (see docs/RELIABILITY.md).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`contain`].
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

static WRAP_HOOK: Once = Once::new();

/// Longest panic message kept, in characters.
const MAX_MESSAGE: usize = 200;

fn install_hook() {
    WRAP_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) || report_contained() {
                previous(info);
            }
        }));
    });
}

/// Under `cargo fuzz` (`cfg(fuzzing)`), `VKW_FUZZ_PANICS=report` lets
/// contained panics reach the fuzzer's hook (which aborts), to find the
/// dependency panics that a check before the call could avoid.
#[cfg(fuzzing)]
fn report_contained() -> bool {
    static REPORT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REPORT.get_or_init(|| std::env::var("VKW_FUZZ_PANICS").as_deref() == Ok("report"))
}

#[cfg(not(fuzzing))]
fn report_contained() -> bool {
    false
}

/// Run `f`; a panic inside it is returned as `Err(message)` (one line, at
/// most [`MAX_MESSAGE`] characters) without anything printed.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = CONTAINING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    result.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        crate::one_line(&msg, MAX_MESSAGE)
    })
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn panics_become_errors_and_nesting_restores_the_flag() {
        assert_eq!(contain(|| 5), Ok(5));
        let e = contain(|| -> u8 { panic!("boom\nsecond line") }).unwrap_err();
        assert_eq!(e, "boom\\nsecond line");
        let inner = contain(|| contain(|| -> u8 { panic!("inner") }));
        assert_eq!(inner, Ok(Err("inner".to_string())));
        assert!(!super::CONTAINING.with(std::cell::Cell::get));
    }
}
