//! AAC in MP4: the edit list's priming samples are trimmed as FFmpeg does, so
//! the audio lines up with the source instead of starting 64 ms late.

use std::path::PathBuf;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(rel)
}

/// Lag (in samples, within ±max) at which `b` best matches `a`.
fn best_lag(a: &[f32], b: &[f32], max: isize) -> isize {
    let score = |lag: isize| -> f64 {
        (0..a.len().min(b.len()) as isize)
            .filter_map(|i| {
                let j = i + lag;
                (j >= 0 && (j as usize) < b.len())
                    .then(|| f64::from(a[i as usize]) * f64::from(b[j as usize]))
            })
            .sum()
    };
    (-max..=max)
        .max_by(|&x, &y| score(x).total_cmp(&score(y)))
        .unwrap_or(0)
}

#[test]
fn aac_m4a_is_aligned_with_its_source() {
    let wav = vkw_audio::load_audio(&fixture("data/jfk/jfk.wav")).unwrap();
    let m4a = vkw_audio::load_audio(&fixture("extra/jfk_aac.m4a")).unwrap();
    // FFmpeg decodes this file to 176,128 samples.
    assert!(
        (m4a.len() as i64 - 176_128).abs() <= 1024,
        "{} samples",
        m4a.len()
    );
    // Compare a stretch of speech in the middle.
    let lag = best_lag(&wav[40_000..60_000], &m4a[40_000..60_000], 2500);
    assert_eq!(lag, 0, "decoded AAC is shifted by {lag} samples");
}
