//! Containing panics of the parsing dependencies.
//!
//! `tokenizers` 0.22 panics on some malformed `tokenizer.json` files (an
//! `expect` on a failed parse of the `decoder` field). The file is checked
//! to be valid JSON first, which avoids the known case; the parse itself
//! runs under [`contain`] so that any other panic becomes an error.
//!
//! The hook handling is the one of vkw-audio's `guard.rs` (the crates share
//! no code): on first use the installed panic hook is wrapped in one that
//! stays silent while the current thread is inside [`contain`] (a
//! thread-local flag) and otherwise calls the wrapped hook, so nothing is
//! printed for a contained panic and other threads' panics are reported as
//! before. A hook installed later by the application replaces the wrapper
//! (contained panics are then printed by it, but still contained). A
//! `panic = "abort"` build cannot contain anything.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`contain`].
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

static WRAP_HOOK: Once = Once::new();

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
/// contained panics reach the fuzzer's hook (which aborts), to find
/// dependency panics that a check could avoid.
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
/// most 200 characters) without anything printed.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
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
        crate::text::one_line(&msg)
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
