//! `vad_filter=True` against faster-whisper 1.2.1
//! (`tests/fixtures/golden/tiny.en.float32.beam5.vad.words.json`, spec §8):
//! the speech chunks, `duration_after_vad`, the tokens and the word timings;
//! and, against faster-whisper runs recorded by `scripts/make_vad_reference.py`,
//! the mapping of segment and word times back to the original audio on
//! inputs where the VAD really removes audio.

mod common;

use sha2::{Digest, Sha256};
use std::path::Path;
use vkw_testkit::{fixtures, vad_model};
use vkw_vad::SileroVad;
use vkwhisper::{Audio, DecodeOptions, Segment, TranscribeOptions, TranscriptionInfo, VadOptions};

fn golden() -> serde_json::Value {
    let path = fixtures().join("golden/tiny.en.float32.beam5.vad.words.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vad golden")).expect("json")
}

/// The samples faster-whisper saw: the original file, or the golden PCM of
/// a compressed input (`golden/pcm`, `extra/pcm` where the name collides),
/// whichever hashes to `samples_sha256`.
fn exact_samples(rel: &str, sha: &str) -> Vec<f32> {
    let p = Path::new(rel);
    let set = p.parent().unwrap_or(Path::new(""));
    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    let candidates = [
        fixtures().join("data").join(rel),
        fixtures()
            .join("golden/pcm")
            .join(set)
            .join(format!("{stem}.wav")),
        fixtures()
            .join("extra/pcm")
            .join(set)
            .join(format!("{name}.wav")),
    ];
    for c in &candidates {
        let Ok(samples) = vkw_audio::load_audio(c) else {
            continue;
        };
        let mut h = Sha256::new();
        for x in &samples {
            h.update(x.to_le_bytes());
        }
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if got == sha {
            return samples;
        }
    }
    panic!("{rel}: no fixture has faster-whisper's exact samples");
}

fn tokens_of(seg: &serde_json::Value) -> Vec<u32> {
    seg["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().expect("token") as u32)
        .collect()
}

#[test]
fn speech_chunks_match_golden() {
    let Some(path) = vad_model() else {
        return;
    };
    let vad = SileroVad::load(&path).expect("VAD");
    let g = golden();
    let opts = VadOptions::default();
    for (rel, want) in g["files"].as_object().expect("files") {
        let samples = exact_samples(rel, want["samples_sha256"].as_str().expect("sha"));
        let got = vad.speech_timestamps(&samples, &opts).expect("vad");
        let chunks = want["vad_speech_chunks"].as_array().expect("chunks");
        assert_eq!(got.len(), chunks.len(), "{rel}: chunk count");
        for (a, b) in got.iter().zip(chunks) {
            let (s, e) = (b[0].as_u64().expect("s"), b[1].as_u64().expect("e"));
            // Within 1 ms (16 samples).
            assert!(
                (a.start as u64).abs_diff(s) <= 16 && (a.end as u64).abs_diff(e) <= 16,
                "{rel}: {a:?} vs [{s}, {e}]"
            );
        }
        let after: usize = got.iter().map(|c| c.len()).sum();
        let want_after = want["duration_after_vad"].as_f64().expect("after");
        assert!((after as f64 / 16000.0 - want_after).abs() < 1e-3, "{rel}");
    }
}

struct Engine {
    engine: vkwhisper::Engine,
    vad: SileroVad,
}

impl Engine {
    fn load() -> Option<Self> {
        let vad = SileroVad::load(&vad_model()?).expect("VAD");
        let engine = common::engine("tiny.en")?;
        Some(Self { engine, vad })
    }

    /// `vad_filter=True` transcription (beam 5, FW defaults otherwise);
    /// `owned` takes the path the CLI uses: the samples as 16-bit integers,
    /// owned, the speech concatenated in place.
    fn run(
        &self,
        samples: &[f32],
        vad: &VadOptions,
        word_timestamps: bool,
        owned: bool,
    ) -> (TranscriptionInfo, Vec<Segment>) {
        let opts = TranscribeOptions::new(DecodeOptions {
            word_timestamps,
            ..DecodeOptions::default()
        })
        .with_vad(vad.clone());
        let audio: Audio<'_> = if owned {
            // The inputs are 16-bit audio: v / 32768 gives them back exactly.
            let s16: Vec<i16> = samples.iter().map(|&x| (x * 32768.0) as i16).collect();
            assert!(
                s16.iter()
                    .zip(samples)
                    .all(|(&v, &x)| f32::from(v) / 32768.0 == x),
                "samples are not 16-bit values"
            );
            s16.into()
        } else {
            samples.into()
        };
        let mut segs = Vec::new();
        let info = self
            .engine
            .transcribe(audio, &opts, &mut segs)
            .expect("transcribe");
        (info, segs)
    }
}

/// Segments against faster-whisper's: tokens exact; start/end within
/// 0.02 s; with words, the same words with start/end within 0.02 s.
fn compare_segments(what: &str, got: &[Segment], want: &[serde_json::Value]) {
    assert_eq!(got.len(), want.len(), "{what}: segment count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.tokens, tokens_of(w), "{what}: segment {i} tokens");
        let (ws, we) = (
            w["start"].as_f64().expect("s"),
            w["end"].as_f64().expect("e"),
        );
        assert!(
            (g.start - ws).abs() <= 0.02 + 1e-9 && (g.end - we).abs() <= 0.02 + 1e-9,
            "{what}: segment {i}: [{}, {}] vs [{ws}, {we}]",
            g.start,
            g.end
        );
        let Some(want_words) = w.get("words").and_then(serde_json::Value::as_array) else {
            continue;
        };
        let words = g.words.as_deref().unwrap_or_default();
        assert_eq!(
            words.len(),
            want_words.len(),
            "{what}: segment {i}: word count"
        );
        for (k, (gw, ww)) in words.iter().zip(want_words).enumerate() {
            let (s, e) = (ww[0].as_f64().expect("s"), ww[1].as_f64().expect("e"));
            assert_eq!(
                gw.word,
                ww[2].as_str().expect("word"),
                "{what}: segment {i} word {k}"
            );
            assert!(
                (gw.start - s).abs() <= 0.02 + 1e-9 && (gw.end - e).abs() <= 0.02 + 1e-9,
                "{what}: segment {i} word {k} {:?}: [{}, {}] vs [{s}, {e}]",
                gw.word,
                gw.start,
                gw.end
            );
        }
    }
}

#[test]
fn vad_golden_tokens_and_words() {
    // The golden run: default VadOptions, word_timestamps=True.
    let Some(engine) = Engine::load() else {
        return;
    };
    let g = golden();
    let mut compared = 0;
    for (rel, want) in g["files"].as_object().expect("files") {
        let samples = exact_samples(rel, want["samples_sha256"].as_str().expect("sha"));
        let (info, segs) = engine.run(&samples, &VadOptions::default(), true, false);
        compare_segments(rel, &segs, want["segments"].as_array().expect("segments"));
        assert!((info.duration - want["duration"].as_f64().expect("d")).abs() < 1e-9);
        let after = want["duration_after_vad"].as_f64().expect("after");
        assert!((info.duration_after_vad - after).abs() < 1e-3, "{rel}");
        compared += 1;
    }
    assert!(compared >= 6, "only {compared} files compared");
}

/// VadOptions from a faster-whisper `vad_parameters` dict.
fn vad_options(v: &serde_json::Value) -> VadOptions {
    let mut o = VadOptions::default();
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    if let Some(x) = f("threshold") {
        o.threshold = x as f32;
    }
    if let Some(x) = f("neg_threshold") {
        o.neg_threshold = Some(x as f32);
    }
    if let Some(x) = f("min_speech_duration_ms") {
        o.min_speech_duration_ms = x as u32;
    }
    if let Some(x) = f("max_speech_duration_s") {
        o.max_speech_duration_s = x;
    }
    if let Some(x) = f("min_silence_duration_ms") {
        o.min_silence_duration_ms = x as u32;
    }
    if let Some(x) = f("speech_pad_ms") {
        o.speech_pad_ms = x as u32;
    }
    o
}

/// The input of a transcript case: WAV sample ranges and silences, as
/// `scripts/make_vad_reference.py` builds them.
fn build(case: &serde_json::Value) -> Vec<f32> {
    let mut out = Vec::new();
    for p in case["parts"].as_array().expect("parts") {
        let n = |i: usize| p[i].as_u64().expect("count") as usize;
        if p[0] == "silence" {
            out.extend(std::iter::repeat_n(0f32, n(1)));
        } else {
            let rel = p[1].as_str().expect("file");
            let a = vkw_audio::load_audio(&fixtures().join(rel)).expect(rel);
            out.extend_from_slice(&a[n(2)..n(3)]);
        }
    }
    out
}

#[test]
fn times_are_mapped_back_as_faster_whisper_does() {
    // Inputs where the VAD really removes audio (inserted silence, short
    // silences ending speech), transcribed by faster-whisper with
    // vad_filter=True: same chunks, tokens, and segment times in the
    // original timeline.
    let Some(engine) = Engine::load() else {
        return;
    };
    let path = fixtures().join("vad/fw_vad_transcripts.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let cases = r["cases"].as_object().expect("cases");
    assert!(cases.len() >= 3);
    for (name, case) in cases {
        let samples = build(case);
        assert_eq!(
            samples.len() as u64,
            case["num_samples"].as_u64().expect("n"),
            "{name}"
        );
        let opts = vad_options(&case["vad"]);
        let chunks = engine.vad.speech_timestamps(&samples, &opts).expect("vad");
        let want_chunks = case["speech_chunks"].as_array().expect("chunks");
        assert_eq!(chunks.len(), want_chunks.len(), "{name}: {chunks:?}");
        for (a, b) in chunks.iter().zip(want_chunks) {
            let (s, e) = (b[0].as_u64().expect("s"), b[1].as_u64().expect("e"));
            assert!(
                (a.start as u64).abs_diff(s) <= 16 && (a.end as u64).abs_diff(e) <= 16,
                "{name}: {a:?} vs [{s}, {e}]"
            );
        }
        let words = case["word_timestamps"].as_bool().unwrap_or(false);
        let (info, segs) = engine.run(&samples, &opts, words, true);
        let after = case["duration_after_vad"].as_f64().expect("after");
        assert!((info.duration_after_vad - after).abs() < 1e-3, "{name}");
        compare_segments(name, &segs, case["segments"].as_array().expect("segments"));
        if words {
            assert!(
                segs.iter().all(|s| s.words.is_some()),
                "{name}: words missing"
            );
        }
    }
}
