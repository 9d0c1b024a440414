//! Audio bytes → `vkw_audio::decode_bytes_s16` (containers probed by
//! content): WAV, RF64, AIFF/AIFC and CAF (PCM, float, A-law, mu-law, ADPCM, ALAC). The seeds are of these formats; the decoder
//! itself is the same for every target.
#![no_main]

#[path = "audio.rs"]
mod audio;
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| audio::run(data, None));
