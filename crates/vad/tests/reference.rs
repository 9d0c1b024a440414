//! The network and the segment state machine against faster-whisper 1.2.1
//! run with onnxruntime (`tests/fixtures/vad/silero_v6_reference.json`,
//! recorded by `scripts/make_vad_reference.py`).

use serde_json::Value;
use vkw_vad::{timestamps_from_probs, SileroVad, SpeechChunk, VadOptions};

fn reference() -> Value {
    let path = vkw_testkit::fixtures().join("vad/silero_v6_reference.json");
    let text = std::fs::read_to_string(&path).expect("vad reference fixture");
    serde_json::from_str(&text).expect("vad reference json")
}

fn options(v: &Value) -> VadOptions {
    let mut o = VadOptions::default();
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
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

fn chunks(v: &Value) -> Vec<SpeechChunk> {
    v.as_array()
        .expect("chunk list")
        .iter()
        .map(|c| SpeechChunk {
            start: c[0].as_u64().expect("start") as usize,
            end: c[1].as_u64().expect("end") as usize,
        })
        .collect()
}

#[test]
fn probabilities_and_chunks_match_faster_whisper() {
    let Some(path) = vkw_testkit::vad_model() else {
        return;
    };
    let vad = SileroVad::load(&path).expect("load VAD");
    let r = reference();
    let files = r["files"].as_object().expect("files");
    assert!(files.len() >= 2);
    for (rel, f) in files {
        let samples = vkw_audio::load_audio(&vkw_testkit::fixtures().join(rel)).expect(rel);
        assert_eq!(
            samples.len() as u64,
            f["num_samples"].as_u64().expect("n"),
            "{rel}"
        );
        let want: Vec<f32> = f["probs"]
            .as_array()
            .expect("probs")
            .iter()
            .map(|p| p.as_f64().expect("prob") as f32)
            .collect();
        let t = std::time::Instant::now();
        let got = vad.speech_probs(&samples);
        eprintln!(
            "{rel}: {} rows in {:.3} s ({:.1} s of audio)",
            got.len(),
            t.elapsed().as_secs_f64(),
            samples.len() as f64 / 16000.0
        );
        assert_eq!(got.len(), want.len(), "{rel}: row count");
        let (worst, at) = got
            .iter()
            .zip(&want)
            .enumerate()
            .map(|(i, (g, w))| ((g - w).abs(), i))
            .fold((0f32, 0), |a, b| if b.0 > a.0 { b } else { a });
        eprintln!("{rel}: max |p - p_ref| = {worst:.2e} at row {at}");
        assert!(worst <= 1e-4, "{rel}: row {at} differs by {worst}");

        // The state machine on the reference probabilities must give FW's
        // chunks exactly; on ours, within 1 ms (one 512-sample window can
        // only move if a probability sits within 1e-4 of a threshold).
        for (name, opts) in r["options"].as_object().expect("options") {
            let opts = options(opts);
            let expected = chunks(&f["chunks"][name]);
            assert_eq!(
                timestamps_from_probs(&want, samples.len(), &opts),
                expected,
                "{rel} {name}: from the reference probabilities"
            );
            let ours = vad.speech_timestamps(&samples, &opts).expect("vad");
            assert_eq!(ours.len(), expected.len(), "{rel} {name}: chunk count");
            for (a, b) in ours.iter().zip(&expected) {
                assert!(
                    a.start.abs_diff(b.start) <= 16 && a.end.abs_diff(b.end) <= 16,
                    "{rel} {name}: {a:?} vs {b:?}"
                );
            }
        }
    }
}

#[test]
fn jfk_matches_the_golden_intermediates() {
    // The shared golden file's VAD section: FW's probabilities for jfk.wav.
    let Some(path) = vkw_testkit::vad_model() else {
        return;
    };
    let vad = SileroVad::load(&path).expect("load VAD");
    let g: Value = serde_json::from_str(
        &std::fs::read_to_string(vkw_testkit::fixtures().join("golden/jfk.intermediates.json"))
            .expect("intermediates"),
    )
    .expect("json");
    let probs = g["vad"]["speech_probs"]
        .as_array()
        .expect("vad.speech_probs in jfk.intermediates.json");
    let samples =
        vkw_audio::load_audio(&vkw_testkit::fixtures().join("data/jfk/jfk.wav")).expect("jfk");
    let got = vad.speech_probs(&samples);
    assert_eq!(got.len(), probs.len());
    for (i, (a, b)) in got.iter().zip(probs).enumerate() {
        let b = b.as_f64().expect("prob") as f32;
        assert!((a - b).abs() <= 1e-4, "row {i}: {a} vs {b}");
    }
}

#[test]
fn a_wrong_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("vkw-vad-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("not-a-model.onnx");
    std::fs::write(&bad, b"\x0a\x03abc").expect("write");
    let e = SileroVad::load(&bad)
        .expect_err("garbage must not load")
        .to_string();
    assert!(
        e.contains("not-a-model.onnx") && e.contains("models pull vad"),
        "{e}"
    );
    let missing = SileroVad::load(&dir.join("absent.onnx")).expect_err("missing");
    assert!(missing.to_string().contains("models pull vad"));
    std::fs::remove_dir_all(&dir).ok();
}
