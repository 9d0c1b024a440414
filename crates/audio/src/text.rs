//! Keeping every error one line: names and messages that come from a file,
//! a path or another program are shown with control characters escaped and
//! cut to a bounded length.

use std::fmt::Write;

/// `s` with control characters escaped (`\n`, `\u{1b}`, …) and at most
/// `max` characters (an ellipsis marks a cut).
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 4);
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An input's name for messages: a path as `Display` shows it, with control
/// characters escaped (a file name may contain a newline); not shortened,
/// since the user needs the whole path.
pub(crate) fn name(s: &str) -> String {
    if s.chars().any(char::is_control) {
        one_line(s, usize::MAX)
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_cuts() {
        assert_eq!(super::one_line("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(super::one_line("abcdef", 3), "abc…");
        assert_eq!(super::name("/tmp/x\ny.wav"), "/tmp/x\\ny.wav");
    }
}
