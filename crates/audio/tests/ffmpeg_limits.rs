//! The ffmpeg fallback runs under limits (vkw_audio::Limits): an ffmpeg that
//! never exits is killed at the time limit, one that floods its error output
//! is read to the end keeping only its last lines, one that writes endless
//! audio is stopped at the duration cap, and one whose children keep its
//! pipes open cannot hang the caller. Fake `ffmpeg` scripts stand in for it.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vkw_audio::{decode_bytes_s16, AudioError, Limits};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Not audio: symphonia gives up and the fallback runs.
fn notes() -> Vec<u8> {
    b"These are meeting notes, not audio.\n".repeat(50)
}

fn run(program: PathBuf, timeout: Duration) -> (Result<Vec<i16>, AudioError>, Duration) {
    let limits = Limits {
        ffmpeg: Some(program),
        ffmpeg_timeout: timeout,
        ..Limits::default()
    };
    let t0 = Instant::now();
    let r = decode_bytes_s16(notes(), Some("txt"), "notes.txt", &limits);
    (r, t0.elapsed())
}

#[test]
fn ffmpeg_runs_within_its_limits() {
    let dir = tempfile::tempdir().unwrap();

    // Never exits: killed at the deadline.
    let (r, t) = run(
        script(dir.path(), "hang", "exec sleep 600"),
        Duration::from_secs(1),
    );
    let e = r.unwrap_err();
    assert!(matches!(e, AudioError::Ffmpeg { .. }), "{e:?}");
    assert!(e.to_string().contains("did not finish within 1 s"), "{e}");
    assert!(t < Duration::from_secs(5), "{t:?}");

    // Leaves a child holding its pipes and exits: no hang either.
    let (r, t) = run(
        script(dir.path(), "orphan", "sleep 30 &\nexit 1"),
        Duration::from_secs(1),
    );
    assert!(r.is_err());
    assert!(t < Duration::from_secs(5), "{t:?}");

    // 100 MB of error output: read to the end, only the tail kept, the
    // last line shown (escaped: it holds an escape sequence).
    let (r, t) = run(
        script(
            dir.path(),
            "flood",
            "yes 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -c 100000000 >&2\nprintf 'last \\033[31mwords\\n' >&2\nexit 1",
        ),
        Duration::from_secs(60),
    );
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("last \\u{1b}[31mwords"), "{msg}");
    assert!(
        !msg.chars().any(char::is_control) && msg.len() < 400,
        "{msg:?}"
    );
    assert!(t < Duration::from_secs(30), "{t:?}");

    // Endless audio: stopped at the duration cap (60 s for a small input).
    let (r, t) = run(
        script(dir.path(), "endless", "exec cat /dev/zero"),
        Duration::from_secs(60),
    );
    let e = r.unwrap_err();
    assert!(matches!(e, AudioError::TooLong { .. }), "{e:?}");
    assert!(t < Duration::from_secs(10), "{t:?}");

    // A working "ffmpeg": its samples are used.
    let (r, _) = run(
        script(dir.path(), "ok", "head -c 32000 /dev/zero"),
        Duration::from_secs(10),
    );
    assert_eq!(r.unwrap().len(), 16_000);
}
