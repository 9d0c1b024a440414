//! Fallback decoding through the `ffmpeg` command line for what symphonia cannot read
//! (Opus, video containers, exotic formats). It produces exactly what OpenAI's Whisper feeds
//! its model: `ffmpeg -nostdin -i <in> -f s16le -ac 1 -ar 16000 -`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Where ffmpeg reads from.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    /// A file ffmpeg opens itself (it can seek, which some containers need).
    File(&'a Path),
    /// Bytes piped to ffmpeg's stdin.
    Bytes(&'a [u8]),
}

/// Outcome of a fallback attempt.
pub(crate) enum Outcome {
    /// `ffmpeg` is not on PATH (or cannot be started).
    NotInstalled,
    /// ffmpeg ran and failed; the last line of its error output.
    Failed(String),
    /// Signed 16-bit samples, already 16 kHz mono.
    Samples(Vec<i16>),
}

/// Decode `input` with ffmpeg.
pub(crate) fn decode(input: Input<'_>) -> Outcome {
    let input_name = match input {
        Input::File(p) => p.to_string_lossy().into_owned(),
        Input::Bytes(_) => "pipe:0".to_string(),
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        "0",
        "-i",
    ]);
    match input {
        Input::File(p) => {
            // An argument that starts with '-' would be taken for an option.
            if p.to_string_lossy().starts_with('-') {
                cmd.arg(Path::new(".").join(p));
            } else {
                cmd.arg(p);
            }
            cmd.stdin(Stdio::null());
        }
        Input::Bytes(_) => {
            cmd.arg("pipe:0");
            cmd.stdin(Stdio::piped());
        }
    }
    cmd.args(["-vn", "-f", "s16le", "-ac", "1", "-ar", "16000", "pipe:1"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());

    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return Outcome::NotInstalled,
    };

    // Feed stdin from a thread so a full stdout pipe cannot deadlock us.
    let writer = match (input, child.stdin.take()) {
        (Input::Bytes(bytes), Some(mut stdin)) => {
            let bytes = bytes.to_vec();
            Some(std::thread::spawn(move || {
                // ffmpeg may stop reading early (e.g. on a bad header): a broken pipe is fine.
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut raw = Vec::new();
    let read_ok = child
        .stdout
        .take()
        .map(|mut o| o.read_to_end(&mut raw).is_ok())
        .unwrap_or(false);
    let status = child.wait();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let err_text = err_reader.join().unwrap_or_default();

    let ok = read_ok && status.as_ref().is_ok_and(|s| s.success());
    if !ok || raw.len() < 2 {
        let last = err_text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or(if ok {
                "no audio stream"
            } else {
                "ffmpeg failed"
            });
        return Outcome::Failed(tidy(last, &input_name));
    }
    Outcome::Samples(
        raw.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

/// ffmpeg's last error line without the input name our own message already starts with, and
/// with its "no output stream" wording said plainly.
fn tidy(line: &str, input_name: &str) -> String {
    let line = line
        .strip_prefix(input_name)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(line);
    if line.contains("does not contain any stream") {
        "no audio stream found".to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn tidy_messages() {
        assert_eq!(
            tidy(
                "/a/b.txt: Invalid data found when processing input",
                "/a/b.txt"
            ),
            "Invalid data found when processing input"
        );
        assert_eq!(
            tidy("Output file #0 does not contain any stream", "x"),
            "no audio stream found"
        );
    }
}
