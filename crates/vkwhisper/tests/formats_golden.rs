//! faster-whisper's tokens on the real-format fixtures of `tests/fixtures/formats/` (Opus in
//! Ogg, WebM/Opus, Matroska and MP4 video with AAC, 8 kHz WAV, 48 kHz stereo WAV), recorded
//! once by `scripts/make_audio_fixtures.py` with faster-whisper 1.2.1 (tiny.en, float32,
//! beam 5). Each file is decoded by vkw-audio with the ffmpeg fallback disabled.

mod common;

use vkw_testkit::fixtures;
use vkwhisper::{DecodeOptions, TranscribeOptions};

#[test]
fn formats_give_faster_whispers_tokens_without_ffmpeg() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let dir = fixtures().join("formats");
    let text = std::fs::read_to_string(dir.join("golden.json")).expect("golden.json");
    let g: serde_json::Value = serde_json::from_str(&text).expect("json");
    let limits = vkw_audio::Limits {
        ffmpeg: None,
        ..Default::default()
    };
    let mut failures = Vec::new();
    for (name, want) in g["files"].as_object().expect("files") {
        let samples =
            vkw_audio::load_audio_with(&dir.join(name), &limits).unwrap_or_else(|e| panic!("{e}"));
        let mut segs = Vec::new();
        engine
            .transcribe(
                &samples,
                &TranscribeOptions::new(DecodeOptions::default()),
                &mut segs,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<Vec<u32>> = segs.iter().map(|s| s.tokens.clone()).collect();
        let want_tokens: Vec<Vec<u32>> = want["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| {
                s["tokens"]
                    .as_array()
                    .expect("tokens")
                    .iter()
                    .map(|t| t.as_u64().expect("token") as u32)
                    .collect()
            })
            .collect();
        let text: String = segs.iter().map(|s| s.text.as_str()).collect();
        eprintln!("{name}: {text:?}");
        if got != want_tokens {
            failures.push(format!(
                "{name}: tokens differ: got {text:?}, faster-whisper {:?}",
                want["text"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
