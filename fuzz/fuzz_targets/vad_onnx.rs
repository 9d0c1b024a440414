//! Silero VAD ONNX bytes → `SileroVad::from_onnx_bytes`; a model that loads
//! is run on one second of audio.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match vkw_vad::SileroVad::from_onnx_bytes(data) {
        Ok(vad) => {
            let samples: Vec<f32> = (0..16_000)
                .map(|i| ((i as f32) * 0.05).sin() * 0.3)
                .collect();
            match vad.speech_timestamps(&samples[..], &vkw_vad::VadOptions::default()) {
                Ok(chunks) => assert!(chunks.iter().all(|c| c.start <= c.end)),
                Err(e) => common::check_error(&e),
            }
        }
        Err(e) => common::check_error(&e),
    }
});
