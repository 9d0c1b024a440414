//! The CPU alignment pass (spec §7.1): logits equal the decoder's, the pass
//! is causal (a prefix gives the same rows), the requested heads' scores are
//! pre-softmax, and the token probabilities match CTranslate2's `align` on
//! the jfk window (golden intermediates).

use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::{Backend, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, max_abs_diff, model_dir};

#[test]
fn align_matches_decoder_and_golden_probabilities() {
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let backend = CpuBackend::new(model.clone(), 2).unwrap();
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let enc = backend
        .encode(&mel.window(0, mel.content_frames(), 3000), 1)
        .unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("golden/jfk.intermediates.json")).unwrap(),
    )
    .unwrap();
    let al = &golden["alignment_window0_beam5"];
    let text: Vec<u32> = al["text_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let sp = model.tokenizer.special;
    let mut tokens = vec![sp.sot, sp.no_timestamps];
    tokens.extend(&text);
    tokens.push(sp.eot);
    let heads = model.alignment_heads();
    let a = backend.align(&enc, 0, &tokens, &heads).unwrap();
    let (n, v, frames) = (
        tokens.len(),
        model.hparams.n_vocab,
        model.hparams.n_audio_ctx,
    );
    assert_eq!(a.scores.len(), heads.len() * n * frames);
    assert_eq!(a.logits.len(), n * v);

    // Logits: the same as the cached decoder's.
    let mut st = backend.start(&enc, 0).unwrap();
    let mut logits = Vec::new();
    backend
        .decode(&mut st, &tokens, n, LogitsAt::All, &mut logits)
        .unwrap();
    let d = max_abs_diff(&a.logits, &logits);
    assert!(d < 1e-3, "align logits differ from decode by {d}");

    // Token probabilities (softmax over [0, eot) at position 1 + t) as CT2's.
    let want = al["text_token_probs"].as_array().unwrap();
    for (t, w) in want.iter().enumerate() {
        let row = &a.logits[(1 + t) * v..(2 + t) * v][..sp.eot as usize];
        let m = row.iter().cloned().fold(f32::MIN, f32::max);
        let z: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
        let p = f64::from(row[text[t] as usize] - m).exp() / z;
        let w = w.as_f64().unwrap();
        assert!((p - w).abs() < 1e-3, "token {t}: probability {p}, CT2 {w}");
    }

    // Pre-softmax: rows are not probability distributions.
    let row = &a.scores[..frames];
    assert!(row.iter().any(|&x| !(0.0..=1.0).contains(&x)));
    // Causal: the first k tokens alone give the same rows.
    let k = 5;
    let p = backend.align(&enc, 0, &tokens[..k], &heads).unwrap();
    for h in 0..heads.len() {
        let full = &a.scores[h * n * frames..][..k * frames];
        let part = &p.scores[h * k * frames..][..k * frames];
        let d = max_abs_diff(full, part);
        assert!(d < 1e-3, "head {h}: prefix scores differ by {d}");
    }
    // Bad heads and tokens are errors, not panics.
    assert!(backend.align(&enc, 0, &tokens, &[(99, 0)]).is_err());
    assert!(backend.align(&enc, 0, &[], &heads).is_err());
    assert!(backend.align(&enc, 3, &tokens, &heads).is_err());
}
