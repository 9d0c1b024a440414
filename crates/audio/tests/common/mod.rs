//! Shared helpers for the integration tests: fixture paths, an independent 16-bit WAV reader,
//! golden JSON, and error metrics.
#![allow(dead_code)]

use std::path::PathBuf;

/// Root of the shared test fixtures.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(FIXTURES).join(rel)
}

/// Golden JSON file under `tests/fixtures/golden/`.
pub fn golden_json(name: &str) -> serde_json::Value {
    let path = fixture(&format!("golden/{name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A minimal RIFF/WAVE reader for 16-bit PCM (written here, independent of symphonia):
/// returns (sample_rate, channels, interleaved samples).
pub fn read_wav_s16(rel: &str) -> (u32, u16, Vec<i16>) {
    let path = fixture(rel);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..12], b"WAVE");
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut pos = 12;
    let (mut rate, mut channels, mut bits) = (0, 0, 0);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let size = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            channels = u16_at(body + 2);
            rate = u32_at(body + 4);
            bits = u16_at(body + 14);
        } else if id == b"data" {
            assert_eq!(bits, 16, "{rel}: not 16-bit");
            let end = (body + size).min(b.len());
            let samples = b[body..end]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (rate, channels, samples);
        }
        pos = body + size + (size & 1);
    }
    panic!("{rel}: no data chunk");
}

/// Samples of a golden PCM file as faster-whisper's float32 (int16 / 32768).
pub fn golden_pcm(rel: &str) -> Vec<f32> {
    let (rate, ch, s) = read_wav_s16(&format!("golden/pcm/{rel}"));
    assert_eq!((rate, ch), (16000, 1));
    s.iter().map(|&x| f32::from(x) / 32768.0).collect()
}

/// (max |a - b|, SNR in dB of `reference` against the difference).
pub fn compare(ours: &[f32], reference: &[f32]) -> (f64, f64) {
    let mut max = 0f64;
    let (mut sig, mut noise) = (0f64, 0f64);
    for (&a, &r) in ours.iter().zip(reference) {
        let d = f64::from(a) - f64::from(r);
        max = max.max(d.abs());
        sig += f64::from(r) * f64::from(r);
        noise += d * d;
    }
    (max, 10.0 * (sig / noise.max(1e-30)).log10())
}

/// A 16-bit mono PCM WAV at `rate` whose data chunk declares `declared` bytes, followed by
/// `data` (a complete file when `declared == data.len()`; a cut one when it is more).
pub fn wav_mono16(rate: u32, declared: u32, data: &[u8]) -> Vec<u8> {
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(36 + declared).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(b"\x02\0\x10\0data");
    v.extend_from_slice(&declared.to_le_bytes());
    v.extend_from_slice(data);
    v
}
