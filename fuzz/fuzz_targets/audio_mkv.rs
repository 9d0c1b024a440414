//! Audio bytes → `vkw_audio::decode_bytes_s16` (containers probed by
//! content): Matroska/WebM (PCM, FLAC, Vorbis, AAC tracks). The seeds are of these formats; the decoder
//! itself is the same for every target.
#![no_main]

#[path = "audio.rs"]
mod audio;
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| audio::run(data, Some("mkv")));
