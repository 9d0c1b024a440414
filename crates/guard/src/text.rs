//! Keeping every error one line: names and messages that come from a file, a
//! path or another program can hold anything (control characters, megabytes
//! of text), so they are shown escaped (`\n`, `\u{1b}`, …) and, where they
//! are not the user's own, cut to a bounded length.

use std::fmt::Write;
use std::path::Path;

/// `s` with control characters escaped and at most `max` characters of it
/// (an ellipsis marks a cut).
pub fn one_line(s: &str, max: usize) -> String {
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

/// An input's name for messages, with control characters escaped (a file
/// name may contain a newline); not shortened, since the user needs all of
/// it to find the file.
pub fn name(s: &str) -> String {
    if s.chars().any(char::is_control) {
        one_line(s, usize::MAX)
    } else {
        s.to_string()
    }
}

/// [`name`] of a path as `Display` shows it.
pub fn path(p: &Path) -> String {
    name(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(one_line("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(one_line("a\r\nb", 100), "a\\r\\nb");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(name("/tmp/x\ny.wav"), "/tmp/x\\ny.wav");
        assert_eq!(path(Path::new("/m/a\nb")), "/m/a\\nb");
        assert_eq!(path(Path::new("/m/ok dir")), "/m/ok dir");
    }
}
