//! Quoting text that comes from a model's files inside error messages.
//!
//! Every error of this crate is one line. Names read from a file (variable
//! names, spec names, tokens, JSON keys) and messages of the parsers we call
//! can hold anything: control characters, invalid UTF-8, megabytes of text.
//! They are shown escaped (Rust's `{:?}` form: `\n`, `\u{1b}`, …) and
//! truncated, so a damaged file can neither break the line nor flood the
//! terminal.

use std::fmt::Write;

/// Longest quoted name, in characters (without the quotes).
pub(crate) const MAX_QUOTED: usize = 80;
/// Longest message taken from a dependency's error (tokenizers, serde_json).
const MAX_DETAIL: usize = 200;

/// `s` escaped and in double quotes, at most [`MAX_QUOTED`] characters of it
/// (an ellipsis marks a cut).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_QUOTED) + 8);
    out.push('"');
    for (shown, c) in s.chars().enumerate() {
        if shown == MAX_QUOTED {
            out.push('…');
            break;
        }
        // `escape_debug` is what `{:?}` prints for a `str`.
        let _ = write!(out, "{}", c.escape_debug());
    }
    out.push('"');
    out
}

/// A message of another library made safe for a one-line error: control
/// characters escaped, at most [`MAX_DETAIL`] characters.
pub(crate) fn one_line(s: &str) -> String {
    vkw_guard::one_line(s, MAX_DETAIL)
}

/// A path for an error message: as `Display` shows it, with control
/// characters escaped (a directory name may contain a newline).
pub(crate) use vkw_guard::path;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn quoting_escapes_and_truncates() {
        assert_eq!(quote("a/b"), "\"a/b\"");
        assert_eq!(quote("x\ny\u{1b}"), "\"x\\ny\\u{1b}\"");
        let long = quote(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_QUOTED + 3);
        assert_eq!(one_line("a\r\nb"), "a\\r\\nb");
        assert_eq!(path(Path::new("/m/a\nb")), "/m/a\\nb");
        assert_eq!(path(Path::new("/m/ok dir")), "/m/ok dir");
    }
}
