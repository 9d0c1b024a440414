//! The golden inputs that faster-whisper decoded and resampled (FLAC at 22.05 and 44.1 kHz,
//! stereo, MP3 at 16 and 24 kHz), decoded from their ORIGINAL files and compared sample by
//! sample with what FFmpeg gave faster-whisper (`golden/pcm/`, `extra/pcm/`, spec §4.1).
//!
//! Every sample must be within ±1 LSB; the number of non-identical samples is printed
//! (recorded in docs/SPEC.md §4.1). Inputs with integer decoders (FLAC) must be bit-exact:
//! their samples hash to the golden `samples_sha256`.

mod common;

use common::{fixture, golden_json, read_wav_s16};
use sha2::{Digest, Sha256};

/// sha256 of the samples as faster-whisper's little-endian float32 (`int16 / 32768`).
fn sha_f32(s: &[i16]) -> String {
    let mut h = Sha256::new();
    for &x in s {
        h.update((f32::from(x) / 32768.0).to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// FFmpeg's samples for `rel`: `extra/pcm/<set>/<file>.wav` or `golden/pcm/<set>/<stem>.wav`,
/// whichever hashes to the golden `samples_sha256` (jfk.flac and jfk.mp3 share a stem).
fn reference(rel: &str, want_sha: &str) -> Vec<i16> {
    let p = std::path::Path::new(rel);
    let set = p.parent().and_then(|s| s.to_str()).unwrap_or_default();
    let file = p.file_name().and_then(|s| s.to_str()).unwrap_or_default();
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    for cand in [
        format!("extra/pcm/{set}/{file}.wav"),
        format!("golden/pcm/{set}/{stem}.wav"),
    ] {
        if !fixture(&cand).is_file() {
            continue;
        }
        let (rate, ch, s) = read_wav_s16(&cand);
        assert_eq!((rate, ch), (16000, 1), "{cand}");
        if sha_f32(&s) == want_sha {
            return s;
        }
    }
    panic!("{rel}: no reference PCM hashes to the golden samples_sha256");
}

/// The golden files whose input is not already 16 kHz mono 16-bit WAV, with their sha256.
fn resampled_goldens() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for g in [
        "tiny.en.float32.beam5.json",
        "base.float32.beam5.autolang.json",
    ] {
        let g = golden_json(g);
        for (rel, v) in g["files"].as_object().expect("files") {
            if rel.ends_with(".wav") || out.iter().any(|(r, _)| r == rel) {
                continue;
            }
            let sha = v["samples_sha256"].as_str().expect("sha").to_string();
            out.push((rel.clone(), sha));
        }
    }
    out
}

#[test]
fn original_audio_matches_ffmpeg_within_one_lsb() {
    let files = resampled_goldens();
    assert!(files.len() >= 31, "{} files", files.len());
    let (mut total, mut total_diff) = (0usize, 0usize);
    let mut report = Vec::new();
    for (rel, sha) in &files {
        let ours = vkw_audio::load_audio_s16(&fixture(&format!("data/{rel}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let want = reference(rel, sha);
        assert_eq!(ours.len(), want.len(), "{rel}: sample count");
        let mut diff = 0usize;
        for (j, (&a, &b)) in ours.iter().zip(&want).enumerate() {
            let d = (i32::from(a) - i32::from(b)).abs();
            assert!(d <= 1, "{rel}: sample {j} is {a}, FFmpeg {b}");
            diff += usize::from(d != 0);
        }
        if rel.ends_with(".flac") {
            // Lossless input: FFmpeg's samples exactly, hence faster-whisper's samples hash.
            assert_eq!(diff, 0, "{rel}");
            assert_eq!(&sha_f32(&ours), sha, "{rel}");
        }
        println!(
            "{rel}: {} samples, {diff} not identical to FFmpeg's ({:.4}%)",
            ours.len(),
            100.0 * diff as f64 / ours.len() as f64
        );
        report.push((rel.clone(), diff));
        total += ours.len();
        total_diff += diff;
    }
    println!(
        "{} files, {total} samples, {total_diff} not identical (all within ±1 LSB)",
        files.len()
    );
}
