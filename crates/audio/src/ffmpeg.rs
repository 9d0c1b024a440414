//! Fallback decoding through the `ffmpeg` command line for what symphonia cannot read
//! (Opus, video containers, exotic formats). It produces exactly what OpenAI's Whisper feeds
//! its model: `ffmpeg -nostdin -i <in> -f s16le -ac 1 -ar 16000 -`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::decode::Budget;
use crate::Limits;

/// ffmpeg's error output kept (its end: the last line is the one shown).
const STDERR_KEEP: usize = 64 << 10;

/// Where ffmpeg reads from.
#[derive(Clone)]
pub(crate) enum Input<'a> {
    /// A file ffmpeg opens itself (it can seek, which some containers need).
    File(&'a Path),
    /// Bytes piped to ffmpeg's stdin (shared with the caller, not copied:
    /// they may be gigabytes read from a stream).
    Bytes(std::sync::Arc<Vec<u8>>),
}

/// Outcome of a fallback attempt.
pub(crate) enum Outcome {
    /// `ffmpeg` is not on PATH (or cannot be started).
    NotInstalled,
    /// ffmpeg ran and failed, or ran past its time limit; the last line of
    /// its error output or what happened.
    Failed(String),
    /// ffmpeg produced more audio than the budget allows (it was stopped).
    TooLong,
    /// Signed 16-bit samples, already 16 kHz mono.
    Samples(Vec<i16>),
}

/// Decode `input` with `program` (ffmpeg), within `limits.ffmpeg_timeout`
/// and `budget`.
///
/// Everything ffmpeg writes is read by threads of our own, so a full pipe
/// never blocks it; its error output is kept to its last 64 KB and its
/// audio to the budget (ffmpeg is killed past it). The main thread waits for
/// the exit with a deadline and kills ffmpeg when it passes, so an ffmpeg
/// that never exits cannot hang the caller.
pub(crate) fn decode(
    input: Input<'_>,
    program: &Path,
    limits: &Limits,
    budget: &Budget,
) -> Outcome {
    let input_name = match input {
        Input::File(p) => p.to_string_lossy().into_owned(),
        Input::Bytes(_) => "pipe:0".to_string(),
    };
    let mut cmd = Command::new(program);
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
            Some(std::thread::spawn(move || {
                // ffmpeg may stop reading early (e.g. on a bad header): a broken pipe is fine.
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || stderr.map(read_tail).unwrap_or_default());
    let max_bytes = budget.max_samples.saturating_mul(2);
    let overflow = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take();
    let out_reader = {
        let overflow = Arc::clone(&overflow);
        std::thread::spawn(move || {
            let mut raw = Vec::new();
            let ok = stdout.is_some_and(|o| {
                o.take(max_bytes.saturating_add(1))
                    .read_to_end(&mut raw)
                    .is_ok()
            });
            if raw.len() as u64 > max_bytes {
                overflow.store(true, Ordering::Relaxed);
            }
            (raw, ok)
        })
    };

    let deadline = Instant::now() + limits.ffmpeg_timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        let over = overflow.load(Ordering::Relaxed);
        if over || Instant::now() >= deadline {
            timed_out = !over;
            // Killing closes its pipes, which ends the reader threads.
            let _ = child.kill();
            break child.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when ffmpeg exits, unless something it started still
    // holds them: wait for the readers only until the deadline (a moment
    // more after a kill), then leave them behind rather than hang.
    let grace = if timed_out {
        Instant::now() + Duration::from_secs(2)
    } else {
        deadline.max(Instant::now() + Duration::from_millis(100))
    };
    if let Some(w) = writer {
        let _ = join_by(w, grace);
    }
    let Some((raw, read_ok)) = join_by(out_reader, grace) else {
        return Outcome::Failed(format!(
            "ffmpeg's output did not end within {} s",
            limits.ffmpeg_timeout.as_secs_f64()
        ));
    };
    let err_text = join_by(err_reader, grace).unwrap_or_default();
    if overflow.load(Ordering::Relaxed) {
        return Outcome::TooLong;
    }
    if timed_out {
        return Outcome::Failed(format!(
            "ffmpeg did not finish within {} s and was stopped",
            limits.ffmpeg_timeout.as_secs_f64()
        ));
    }

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
        return Outcome::Failed(vkw_guard::one_line(&tidy(last, &input_name), 200));
    }
    Outcome::Samples(
        raw.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

/// The thread's result if it ends by `deadline`; otherwise it is left
/// running (detached) and `None` is returned.
fn join_by<T>(h: std::thread::JoinHandle<T>, deadline: Instant) -> Option<T> {
    while !h.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    h.join().ok()
}

/// Read `r` to its end, keeping only the last [`STDERR_KEEP`] bytes.
fn read_tail(mut r: impl Read) -> String {
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend(&buf[..n]);
                let excess = tail.len().saturating_sub(STDERR_KEEP);
                tail.drain(..excess);
            }
        }
    }
    String::from_utf8_lossy(tail.make_contiguous()).into_owned()
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
    use super::{read_tail, tidy, STDERR_KEEP};

    #[test]
    fn only_the_end_of_a_flood_is_kept() {
        let flood = "x".repeat(3 * STDERR_KEEP) + "\nlast line\n";
        let kept = read_tail(flood.as_bytes());
        assert_eq!(kept.len(), STDERR_KEEP);
        assert!(kept.ends_with("last line\n"));
    }

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
