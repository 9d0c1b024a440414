//! Stage tests against faster-whisper's intermediates for the first jfk window
//! (`tests/fixtures/golden/jfk.intermediates.json`): log-mel, encoder output,
//! and the first decoder step's logits.

use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::{Backend, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, max_abs_diff, model_dir};

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("golden/jfk.intermediates.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Each `[id, token, logit]` of a golden `top10` list within 2e-3 of ours.
fn assert_top10(logits: &[f32], golden: &serde_json::Value) {
    for entry in golden["top10"].as_array().unwrap() {
        let id = entry[0].as_u64().unwrap() as usize;
        let want = entry[2].as_f64().unwrap() as f32;
        assert!(
            (logits[id] - want).abs() < 2e-3,
            "logit {id}: {} vs {want}",
            logits[id]
        );
    }
}

struct Setup {
    backend: CpuBackend,
    window: Vec<f32>,
    g: serde_json::Value,
}

fn setup() -> Option<Setup> {
    let dir = model_dir("tiny.en")?;
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let backend = CpuBackend::new(model, 2).unwrap();
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let window = mel.window(0, mel.content_frames(), 3000);
    Some(Setup {
        backend,
        window,
        g: golden(),
    })
}

#[test]
fn mel_window_matches_golden() {
    let Some(s) = setup() else { return };
    let f = &s.g["features"];
    for (frame, key) in [(100usize, "100"), (500, "500"), (1000, "1000")] {
        let want = floats(&f["window_frames_selected"][key]);
        let got: Vec<f32> = (0..80).map(|m| s.window[m * 3000 + frame]).collect();
        let d = max_abs_diff(&got, &want);
        assert!(d < 1e-4, "mel frame {frame}: max diff {d}");
    }
}

#[test]
fn encoder_and_first_step_match_golden() {
    let Some(s) = setup() else { return };
    let enc = s.backend.encode(&s.window, 1).unwrap();
    let host = s.backend.encoded_to_host(&enc).unwrap();
    let e = &s.g["encoder"];
    assert_eq!(host.len(), 1500 * 384);
    let mut worst = 0f32;
    for frame in [0usize, 1, 750, 1499] {
        let want = floats(&e["frames_first8"][frame.to_string().as_str()]);
        let got = &host[frame * 384..frame * 384 + 8];
        worst = worst.max(max_abs_diff(got, &want));
    }
    // The golden README: an independent float64 implementation is 2e-5 away;
    // values reach 11.9, so allow f32 summation-order noise.
    eprintln!("encoder max diff vs CT2: {worst}");
    assert!(worst < 2e-3, "encoder max diff {worst}");
    let mean = host.iter().map(|&x| f64::from(x)).sum::<f64>() / host.len() as f64;
    assert!(
        (mean - e["stats"]["mean"].as_f64().unwrap()).abs() < 1e-4,
        "encoder mean {mean}"
    );

    // Step 0 at SOT: raw logits, no-speech probability.
    let step = &s.g["decoder_step0"];
    let mut st = s.backend.start(&enc, 0).unwrap();
    let mut logits = Vec::new();
    s.backend
        .decode(&mut st, &[50257], 1, LogitsAt::Last, &mut logits)
        .unwrap();
    assert_eq!(logits.len(), 51864);
    assert_top10(&logits, &step["raw_logits_at_sot"]);
    let max = logits.iter().cloned().fold(f32::MIN, f32::max);
    let lse = max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
    let no_speech = (logits[50361] - lse).exp();
    let want = step["no_speech_prob"].as_f64().unwrap() as f32;
    eprintln!("no_speech_prob {no_speech} vs {want}");
    assert!(
        (no_speech - want).abs() < 1e-4,
        "no_speech_prob {no_speech} vs {want}"
    );

    // After <|notimestamps|>: the exact CT2 logits.
    let mut st = s.backend.start(&enc, 0).unwrap();
    s.backend
        .decode(&mut st, &[50257, 50362], 2, LogitsAt::Last, &mut logits)
        .unwrap();
    assert_top10(&logits, &step["ct2_raw_logits_after_notimestamps"]);
    // The same two tokens fed one at a time through the cache give the same logits.
    let mut st2 = s.backend.start(&enc, 0).unwrap();
    let mut l2 = Vec::new();
    s.backend
        .decode(&mut st2, &[50257], 1, LogitsAt::Last, &mut l2)
        .unwrap();
    s.backend
        .decode(&mut st2, &[50362], 1, LogitsAt::Last, &mut l2)
        .unwrap();
    assert!(max_abs_diff(&logits, &l2) < 1e-3);
}
