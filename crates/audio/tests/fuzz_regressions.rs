//! The audio regression inputs of the fuzzing work (`tests/fixtures/fuzz/audio`,
//! listed with their expected errors in `tests/fixtures/fuzz/MANIFEST.tsv`),
//! through both public entry points: each ends in its typed one-line error,
//! quickly and without printing anything (a contained dependency panic must
//! not reach the panic hook's output).

mod common;

use common::fixture;
use std::path::Path;
use std::time::{Duration, Instant};
use vkw_audio::{decode_bytes_s16, load_audio_s16_with, AudioError, Limits};

struct Case {
    path: String,
    variant: String,
    needle: String,
}

fn audio_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture("fuzz/MANIFEST.tsv")).unwrap();
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| l.starts_with("audio/"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                path: f[0].to_string(),
                variant: f[1].to_string(),
                needle: f[2].to_string(),
            }
        })
        .collect();
    assert!(
        cases.len() >= 10,
        "MANIFEST.tsv lists {} audio cases",
        cases.len()
    );
    cases
}

/// The library's defaults, without the ffmpeg fallback (whether ffmpeg is
/// installed must not change these results).
fn limits() -> Limits {
    Limits {
        ffmpeg: None,
        ..Limits::default()
    }
}

fn check(case: &Case, name: &str, res: Result<Vec<i16>, AudioError>, elapsed: Duration) {
    let err = match res {
        Ok(s) => panic!(
            "{}: decoded {} samples, expected an error",
            case.path,
            s.len()
        ),
        Err(e) => e,
    };
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        format!("{err:?}").starts_with(&case.variant),
        "{}: expected {}, got {err:?}",
        case.path,
        case.variant
    );
    assert!(msg.starts_with(name), "{}: {msg}", case.path);
    assert!(msg.contains(&case.needle), "{}: {msg}", case.path);
    assert!(
        !msg.chars().any(char::is_control) && msg.len() < 400,
        "{}: not one short line: {msg:?}",
        case.path
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "{}: took {elapsed:?}",
        case.path
    );
}

#[test]
fn every_audio_regression_is_a_typed_one_line_error() {
    for case in audio_cases() {
        let path = fixture(&format!("fuzz/{}", case.path));
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string);
        let bytes = std::fs::read(&path).unwrap();
        let t0 = Instant::now();
        let res = decode_bytes_s16(bytes, ext.as_deref(), "upload", &limits());
        check(&case, "upload", res, t0.elapsed());
        let t0 = Instant::now();
        let res = load_audio_s16_with(&path, &limits());
        check(&case, &path.display().to_string(), res, t0.elapsed());
    }
}

/// The child half of [`contained_dependency_panics_print_nothing`].
fn decode_mkv_fixtures() {
    for name in ["mkv_timestamp_scale_0.mka", "mkv_timestamp_scale_2p40.mka"] {
        let p = fixture(&format!("fuzz/audio/{name}"));
        let err = load_audio_s16_with(&p, &limits()).unwrap_err();
        assert!(matches!(err, AudioError::Corrupt { .. }), "{err:?}");
    }
}

#[test]
fn contained_dependency_panics_print_nothing() {
    // symphonia panics inside on these files; the panic is contained and
    // the hook prints nothing. Run in a child process to see its stderr.
    if std::env::var_os("VKW_AUDIO_CHILD").is_some() {
        decode_mkv_fixtures();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "contained_dependency_panics_print_nothing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VKW_AUDIO_CHILD", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "a contained panic was printed: {stderr}"
    );
}

#[test]
fn panics_outside_the_decoder_are_still_reported() {
    // The wrapped hook stays silent only inside the decoder: after a
    // contained panic, an ordinary panic on this thread still reaches the
    // previous hook and unwinds as usual.
    let _ = load_audio_s16_with(&fixture("fuzz/audio/mkv_timestamp_scale_0.mka"), &limits());
    let caught = std::panic::catch_unwind(|| panic!("ordinary"));
    assert!(caught.is_err());
}

/// A 16-bit mono WAV of `n` samples at `rate`.
fn wav(rate: u32, n: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..n)
        .flat_map(|i| ((i % 200) as i16 * 50).to_le_bytes())
        .collect();
    common::wav_mono16(rate, data.len() as u32, &data)
}

#[test]
fn rates_at_the_limits_decode_and_odd_rates_keep_their_length() {
    for rate in [1_000u32, 7_999, 44_100, 767_999, 768_000] {
        let n = 3 * rate as usize / 2 + 1;
        let s = decode_bytes_s16(wav(rate, n), Some("wav"), "t.wav", &limits()).unwrap();
        // swresample's length: ceil(n · 16000 / rate), or one less where its tail reflection
        // falls short (docs/SPEC.md §4.1).
        let ceil = (n as u64 * 16_000).div_ceil(u64::from(rate));
        let len = s.len() as u64;
        assert!(len == ceil || len + 1 == ceil, "{rate}: {len} vs {ceil}");
    }
}

#[test]
fn the_duration_cap_follows_the_input_size() {
    let l = Limits {
        max_duration_s: 30.0,
        ..limits()
    };
    // 31 s of 16 kHz audio: over a 30 s cap.
    let err = decode_bytes_s16(wav(16_000, 31 * 16_000), None, "long.wav", &l).unwrap_err();
    assert!(matches!(err, AudioError::TooLong { .. }), "{err:?}");
    assert!(err.to_string().contains("30 s"), "{err}");
    // Under the cap: fine.
    assert!(decode_bytes_s16(wav(16_000, 29 * 16_000), None, "ok.wav", &l).is_ok());
    // The size-based cap: at least 60 s, else one second per input byte.
    assert_eq!(l.max_samples(10), 30 * 16_000);
    let d = Limits::default();
    assert_eq!(d.max_samples(10), 60 * 16_000);
    assert_eq!(d.max_samples(10_000), 10_000 * 16_000);
    assert_eq!(d.max_samples(u64::MAX), 12 * 3600 * 16_000);
}

#[cfg(unix)]
#[test]
fn fifos_are_read_like_stdin_within_the_stream_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.wav");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo not available");
        return;
    }
    let bytes = wav(16_000, 8_000);
    let feed = |fifo: &Path, bytes: Vec<u8>| {
        let fifo = fifo.to_path_buf();
        std::thread::spawn(move || {
            use std::io::Write;
            // The reader may stop early (over the limit): a broken pipe is fine.
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(fifo) {
                let _ = f.write_all(&bytes);
            }
        })
    };
    let writer = feed(&fifo, bytes.clone());
    let s = load_audio_s16_with(&fifo, &limits()).unwrap();
    writer.join().unwrap();
    assert_eq!(s.len(), 8_000);
    let writer = feed(&fifo, bytes);
    let small = Limits {
        max_stream_bytes: 1_000,
        ..limits()
    };
    let err = load_audio_s16_with(&fifo, &small).unwrap_err();
    writer.join().unwrap();
    assert!(
        matches!(err, AudioError::TooLarge { limit: 1_000, .. }),
        "{err:?}"
    );
}

#[test]
fn the_valid_fuzz_seeds_still_decode() {
    // The prechecks must not refuse real files: every seed of the audio
    // fuzz targets (short files written by libsndfile, or assembled by
    // fuzz/make_seeds.py around real payloads) decodes, or fails only as
    // unsupported (Opus, an MKV PCM track, AIFF float) or cut off (a
    // truncated MP3).
    let seeds = fixture("../../fuzz/seeds");
    let mut decoded = 0;
    for dir in ["audio_pcm", "audio_stream", "audio_mp4", "audio_mkv"] {
        for entry in std::fs::read_dir(seeds.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            match decode_bytes_s16(bytes, None, "seed", &limits()) {
                Ok(s) => {
                    assert!(!s.is_empty(), "{}", path.display());
                    decoded += 1;
                }
                Err(e @ (AudioError::Unsupported { .. } | AudioError::Truncated { .. })) => {
                    println!("{}: {e}", path.display())
                }
                // symphonia 0.5 reads neither RF64 nor libsndfile's
                // ALAC-in-CAF (its packet table); not precheck refusals.
                Err(e @ AudioError::Corrupt { .. })
                    if (path.ends_with("caf_alac_16_16000_1ch")
                        || path.ends_with("rf64_pcm_16_16000_1ch"))
                        && e.to_string().contains("ends unexpectedly") => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    assert!(decoded >= 25, "only {decoded} seeds decoded");
}
