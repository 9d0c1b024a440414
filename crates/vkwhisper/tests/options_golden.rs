//! Token parity with faster-whisper for options the shared golden files do
//! not cover: hotwords, prefix, clip_timestamps, max_new_tokens,
//! suppress_blank/suppress_tokens, max_initial_timestamp, repetition_penalty,
//! no_repeat_ngram_size, length_penalty/patience, beam width, text-only, and
//! an initial prompt without conditioning.
//!
//! The reference `tests/fixtures/extra/golden_options.json` was recorded with
//! faster-whisper 1.2.1 / ctranslate2 4.8.5 (float32, 2 threads) by
//! `scripts/make_option_golden.py`; all inputs are 16 kHz 16-bit WAV, read
//! bit-exactly. The multilingual cases (forced language, per-window detection,
//! several detection windows, translation) run the base model.

use vkw_testkit::fixtures;
use vkwhisper::{Engine, Segment, TranscribeOptions};

mod common;

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn option_parity_with_faster_whisper() {
    let mut engines: Vec<(&str, Engine)> = Vec::new();
    for name in ["tiny.en", "base"] {
        let Some(engine) = common::engine(name) else {
            return;
        };
        engines.push((name, engine));
    }
    let text = std::fs::read_to_string(fixtures().join("extra/golden_options.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut failures = Vec::new();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rel = case["file"].as_str().unwrap();
        let opts = common::fw_options(&case["kwargs"]);
        let wanted = case["model"].as_str().unwrap();
        let (_, engine) = engines.iter().find(|(n, _)| *n == wanted).unwrap();
        let audio = vkwhisper::decode_audio(fixtures().join(rel)).unwrap();
        let mut got: Vec<Segment> = Vec::new();
        let info = engine
            .transcribe(audio, &TranscribeOptions::new(opts), &mut got)
            .unwrap();
        let want = case["segments"].as_array().unwrap();
        let mismatch = (|| -> Result<(), String> {
            if info.language != case["language"].as_str().unwrap()
                || (info.language_probability - f(&case["language_probability"])).abs() > 1e-3
            {
                return Err(format!(
                    "language {} ({}) vs {} ({})",
                    info.language,
                    info.language_probability,
                    case["language"],
                    case["language_probability"]
                ));
            }
            for (i, w) in want.iter().enumerate() {
                let g = got.get(i).ok_or(format!("segment {} missing", i + 1))?;
                if f(&w["temperature"]) > 0.0 {
                    // Sampled after a fallback: only the fallback itself is comparable.
                    return if g.temperature > 0.0 {
                        Ok(())
                    } else {
                        Err(format!("segment {}: no fallback", i + 1))
                    };
                }
                let wt: Vec<u32> = w["tokens"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect();
                if let Some(k) =
                    (0..wt.len().max(g.tokens.len())).find(|&k| wt.get(k) != g.tokens.get(k))
                {
                    return Err(format!(
                        "segment {}: tokens differ at {k}: {:?} vs {:?}",
                        i + 1,
                        g.tokens,
                        wt
                    ));
                }
                for (what, a, b, tol) in [
                    ("start", g.start, f(&w["start"]), 0.01),
                    ("end", g.end, f(&w["end"]), 0.01),
                    ("avg_logprob", g.avg_logprob, f(&w["avg_logprob"]), 1e-3),
                    (
                        "no_speech_prob",
                        g.no_speech_prob,
                        f(&w["no_speech_prob"]),
                        1e-3,
                    ),
                ] {
                    if (a - b).abs() > tol {
                        return Err(format!("segment {}: {what} {a} vs {b}", i + 1));
                    }
                }
                if g.seek != w["seek"].as_u64().unwrap() as usize {
                    return Err(format!(
                        "segment {}: seek {} vs {}",
                        i + 1,
                        g.seek,
                        w["seek"]
                    ));
                }
            }
            if got.len() != want.len() {
                return Err(format!("{} segments vs {}", got.len(), want.len()));
            }
            Ok(())
        })();
        match mismatch {
            Ok(()) => eprintln!("{name}: {} segments match", want.len()),
            Err(e) => failures.push(format!("{name} ({rel}): {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "diverging cases:\n{}",
        failures.join("\n")
    );
}
