//! The resampler and down-mix with any rate and channel count the decoder
//! accepts: the input picks a rate, a channel count and a sample format,
//! and the rest is sample data, wrapped into a WAV header and decoded.
//! Properties: rates outside 1–768 kHz and channel counts outside 1–26 are
//! typed errors; accepted ones decode to swresample's length: `ceil(frames ·
//! 16000 / rate)` samples or one fewer (its tail reflection), fewer still
//! for an input shorter than about two filters, none for one shorter than
//! its filter (docs/SPEC.md §4.1).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use vkw_audio::{AudioError, Limits, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let rate = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let channels = u16::from(data[4]);
    let (tag, bits): (u16, u16) = match data[5] {
        0 => (3, 32),
        8 => (1, 8),
        24 => (1, 24),
        32 => (1, 32),
        _ => (1, 16),
    };
    let block = channels * (bits / 8);
    let body = &data[6..];
    let frames = if block == 0 {
        0
    } else {
        body.len() / usize::from(block)
    };
    let body = &body[..frames * usize::from(block)];
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt \x10\0\0\0");
    wav.extend_from_slice(&tag.to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    wav.extend_from_slice(&block.to_le_bytes());
    wav.extend_from_slice(&bits.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(body.len() as u32).to_le_bytes());
    wav.extend_from_slice(body);
    let limits = Limits {
        max_duration_s: 120.0,
        ffmpeg: None,
        ..Limits::default()
    };
    let max = limits.max_samples(wav.len() as u64);
    let res = vkw_audio::decode_bytes_s16(wav, None, "resample.wav", &limits);
    let valid_rate = (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate);
    match res {
        Ok(samples) => {
            assert!(valid_rate && (1..=26).contains(&channels) && frames > 0);
            let want = (frames as u64 * 16_000).div_ceil(u64::from(rate));
            let len = samples.len() as u64;
            // swresample's filter: ceil(32 / factor) taps, rounded up to even.
            // An input shorter than about two filters is started only by the
            // flush's tail reflection, which is half of what is left: it can
            // fall several outputs short (as swresample does; PyAV's lengths
            // are in swr.rs's tests), so only longer inputs get the ±1 check.
            let factor = (16_000.0 * 0.97 / f64::from(rate)).min(1.0);
            let taps = ((32.0 / factor).ceil() as u64).next_multiple_of(2);
            assert!(
                len <= want && (len + 1 >= want || len == 0 || (frames as u64) < 2 * taps + 2),
                "rate {rate}, {channels} ch, {frames} frames: {len} of {want}"
            );
            assert!(want <= max);
        }
        Err(AudioError::SampleRate { rate: r, .. }) => {
            assert!(!valid_rate && u64::from(rate) == r)
        }
        Err(e) => {
            common::check_error(&e);
            // An accepted rate with real frames fails only for the channel
            // count or the duration cap.
            if valid_rate && (1..=26).contains(&channels) && frames > 0 {
                assert!(
                    matches!(e, AudioError::TooLong { .. }),
                    "rate {rate}, {channels} ch, {frames} frames: {e}"
                );
            }
        }
    }
});
