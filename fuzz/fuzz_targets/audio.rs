//! The body of the audio targets.

use vkw_audio::Limits;

/// Decode with the library's own checks and a small duration cap (the cap
/// scales with the input size, [`Limits::max_samples`]; 120 s keeps each
/// run short), without the ffmpeg fallback.
pub fn run(data: &[u8], hint: Option<&str>) {
    let limits = Limits {
        max_duration_s: 120.0,
        ffmpeg: None,
        ..Limits::default()
    };
    match vkw_audio::decode_bytes_s16(data.to_vec(), hint, "fuzz.input", &limits) {
        Ok(samples) => assert!(samples.len() as u64 <= limits.max_samples(data.len() as u64)),
        Err(e) => crate::common::check_error(&e),
    }
}
