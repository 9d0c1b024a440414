//! Batched mode (faster-whisper's `BatchedInferencePipeline`, spec §9.3)
//! against faster-whisper 1.2.1 (`golden/tiny.en.float32.beam5.batched8.json`,
//! recorded by `scripts/record-batched-golden.py`): same pieces, times and
//! tokens; and on the longform file, word error rate within 1 point of the
//! sequential mode's. With word timestamps (`…batched8.words.json`): same
//! tokens and words, word times within 0.02 s, probabilities within 1e-3.
//! With clip timestamps (`…batched8.clips.json`): same pieces and tokens.

mod common;

use vkw_testkit::{fixtures, wer};
use vkwhisper::{Engine, Segment, TranscribeOptions};

const LONGFORM: &str = "longform/ljspeech_LJ001_0001-0032.wav";

fn json(name: &str) -> serde_json::Value {
    let path = fixtures().join("golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("json")
}

/// A golden segment's `tokens`.
fn golden_tokens(w: &serde_json::Value) -> Vec<u32> {
    w["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().expect("token") as u32)
        .collect()
}

/// tiny.en on the CPU, with the VAD model installed.
fn setup() -> Option<Engine> {
    if !common::vad_installed() {
        return None;
    }
    common::engine("tiny.en")
}

fn batched(s: &Engine, rel: &str, batch_size: usize) -> Vec<Segment> {
    batched_with(s, rel, batch_size, false)
}

fn batched_with(s: &Engine, rel: &str, batch_size: usize, word_timestamps: bool) -> Vec<Segment> {
    let audio = vkwhisper::decode_audio(fixtures().join("data").join(rel)).expect("audio");
    // FW's pipeline defaults: no timestamps, VadOptions(max_speech 30 s, min_silence 160 ms).
    let mut opts = TranscribeOptions::batched(batch_size);
    opts.decoding.word_timestamps = word_timestamps;
    let mut segs = Vec::new();
    s.transcribe(audio, &opts, &mut segs)
        .expect("batched transcription");
    segs
}

#[test]
fn batched_matches_faster_whisper_and_wer_is_within_one_point_of_sequential() {
    let Some(s) = setup() else {
        return;
    };
    let golden = json("tiny.en.float32.beam5.batched8.json");
    let mut longform_text = None;
    for (rel, want) in golden["files"].as_object().expect("files") {
        let got = batched(&s, rel, 8);
        if rel == LONGFORM {
            longform_text = Some(got.iter().map(|g| g.text.as_str()).collect::<String>());
        }
        let want = want["segments"].as_array().expect("segments");
        assert_eq!(got.len(), want.len(), "{rel}: segment count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.tokens, golden_tokens(w), "{rel} segment {}", g.id);
            assert_eq!(g.text, w["text"].as_str().expect("text"));
            for (ours, key) in [(g.start, "start"), (g.end, "end")] {
                let theirs = w[key].as_f64().expect("time");
                assert!(
                    (ours - theirs).abs() < 1e-9,
                    "{rel} {key}: {ours} vs {theirs}"
                );
            }
            assert_eq!(g.seek as u64, w["seek"].as_u64().expect("seek"));
            let lp = w["avg_logprob"].as_f64().expect("avg_logprob");
            assert!(
                (g.avg_logprob - lp).abs() < 2e-3,
                "{rel}: avg_logprob {}",
                g.avg_logprob
            );
        }
    }

    // WER on the longform file: batched (ours) vs sequential. The sequential
    // transcript is faster-whisper's golden one, which our sequential mode
    // reproduces token for token (tests/golden.rs).
    let manifest =
        std::fs::read_to_string(fixtures().join("data/longform/manifest.tsv")).expect("manifest");
    let name = LONGFORM.trim_start_matches("longform/");
    let reference = manifest
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split('\t').nth(2))
        .expect("reference text");
    let seq = json("tiny.en.float32.beam5.json");
    let seq_text = seq["files"][LONGFORM]["text"].as_str().expect("text");
    let text = longform_text.expect("the golden file covers the longform file");
    let (w_batched, w_seq) = (wer(reference, &text), wer(reference, seq_text));
    eprintln!("longform WER: batched {w_batched:.2} %, sequential {w_seq:.2} %");
    assert!(
        (w_batched - w_seq).abs() <= 1.0,
        "batched WER {w_batched:.2} vs sequential {w_seq:.2}"
    );
}

#[test]
fn batched_word_timestamps_match_faster_whisper() {
    let Some(s) = setup() else {
        return;
    };
    let golden = json("tiny.en.float32.beam5.batched8.words.json");
    let (mut max_dt, mut max_dp, mut n_words) = (0.0f64, 0.0f64, 0usize);
    for (rel, want) in golden["files"].as_object().expect("files") {
        let got = batched_with(&s, rel, 8, true);
        let want = want.as_array().expect("segments");
        assert_eq!(got.len(), want.len(), "{rel}: segment count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.tokens, golden_tokens(w), "{rel} segment {}", g.id);
            for (ours, key) in [(g.start, "start"), (g.end, "end")] {
                let theirs = w[key].as_f64().expect("time");
                assert!(
                    (ours - theirs).abs() <= 0.02 + 1e-9,
                    "{rel} segment {} {key}: {ours} vs {theirs}",
                    g.id
                );
            }
            let gw = g.words.as_deref().expect("words requested");
            let ww = w["words"].as_array().expect("words");
            assert_eq!(gw.len(), ww.len(), "{rel} segment {}: word count", g.id);
            for (a, b) in gw.iter().zip(ww) {
                let b = b.as_array().expect("[start, end, word, probability]");
                assert_eq!(a.word, b[2].as_str().expect("word"), "{rel}");
                for (ours, theirs) in [(a.start, &b[0]), (a.end, &b[1])] {
                    let theirs = theirs.as_f64().expect("time");
                    let dt = (ours - theirs).abs();
                    max_dt = max_dt.max(dt);
                    assert!(
                        dt <= 0.02 + 1e-9,
                        "{rel} word {:?}: {ours} vs {theirs}",
                        a.word
                    );
                }
                let dp = (a.probability - b[3].as_f64().expect("probability")).abs();
                max_dp = max_dp.max(dp);
                assert!(
                    dp < 1e-3,
                    "{rel} word {:?}: probability off by {dp}",
                    a.word
                );
                n_words += 1;
            }
        }
    }
    eprintln!("{n_words} words: max |Δt| {max_dt:.3} s, max |Δp| {max_dp:.2e}");
}

/// `--clip-timestamps` in batched mode against FW's pipeline with
/// `clip_timestamps` (`…batched8.clips.json`, recorded by
/// `scripts/record-batched-clips-golden.py`): one piece per clip, no VAD,
/// times from each clip's start.
#[test]
fn batched_clips_match_faster_whisper() {
    let Some(s) = setup() else {
        return;
    };
    let golden = json("tiny.en.float32.beam5.batched8.clips.json");
    for (rel, want) in golden["files"].as_object().expect("files") {
        let audio = vkwhisper::decode_audio(fixtures().join("data").join(rel)).expect("audio");
        let mut opts = TranscribeOptions::batched(8);
        opts.decoding.clip_timestamps = want["clip_timestamps"]
            .as_array()
            .expect("clips")
            .iter()
            .map(|v| v.as_f64().expect("second"))
            .collect();
        let mut got = Vec::new();
        let info = s.transcribe(audio, &opts, &mut got).expect("batched clips");
        let dav = want["duration_after_vad"].as_f64().expect("duration");
        assert!((info.duration_after_vad - dav).abs() < 1e-6, "{rel}: {dav}");
        let want = want["segments"].as_array().expect("segments");
        assert_eq!(got.len(), want.len(), "{rel}: segment count");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.tokens, golden_tokens(w), "{rel} segment {}", g.id);
            for (ours, key) in [(g.start, "start"), (g.end, "end")] {
                let theirs = w[key].as_f64().expect("time");
                assert!(
                    (ours - theirs).abs() < 1e-9,
                    "{rel} {key}: {ours} vs {theirs}"
                );
            }
            let lp = w["avg_logprob"].as_f64().expect("avg_logprob");
            assert!(
                (g.avg_logprob - lp).abs() < 2e-3,
                "{rel}: {}",
                g.avg_logprob
            );
        }
    }
}

/// A clip longer than 30 s is decoded as consecutive 30 s pieces (FW would
/// keep only its first 30 s): nothing of it is lost.
#[test]
fn batched_long_clip_is_split_into_30_s_pieces() {
    let Some(s) = setup() else {
        return;
    };
    let audio = vkwhisper::decode_audio(fixtures().join("data").join(LONGFORM)).expect("audio");
    let mut opts = TranscribeOptions::batched(4);
    opts.decoding.clip_timestamps = vec![2.0, 67.0];
    let mut got = Vec::new();
    let info = s.transcribe(audio, &opts, &mut got).expect("batched clips");
    assert!((info.duration_after_vad - 65.0).abs() < 1e-9);
    let starts: Vec<f64> = got.iter().map(|g| g.start).collect();
    assert_eq!(starts, vec![2.0, 32.0, 62.0], "one segment per piece");
    assert!(
        (got[2].end - 67.0).abs() < 0.05,
        "last piece ends at the clip end"
    );
}
