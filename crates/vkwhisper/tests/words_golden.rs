//! Word timestamps (spec §7, §6.14) against faster-whisper 1.2.1:
//! `tiny.en.float32.beam5.words.json` covers all 60 golden files. Every
//! segment must have the golden tokens and bounds, and every word the golden
//! text, start and end within 0.02 s and probability within 1e-3.
//!
//! All divergences of all files are reported, not only the first.

use sha2::{Digest, Sha256};
use std::path::Path;
use vkw_testkit::fixtures;
use vkwhisper::{DecodeOptions, Engine, Segment, TranscribeOptions};

mod common;

/// Word start/end tolerance (the acceptance bound).
const TIME_TOL: f64 = 0.02;

/// The samples faster-whisper saw: the file itself or its golden PCM copy
/// (see `tests/fixtures/golden/README.md`), whichever hashes to
/// `samples_sha256`.
fn load_samples(rel: &str, want_sha: &str) -> Result<Vec<f32>, String> {
    let p = Path::new(rel);
    let set = p.parent().map(|s| s.to_path_buf()).unwrap_or_default();
    let stem = p.file_stem().unwrap().to_string_lossy().to_string();
    let name = p.file_name().unwrap().to_string_lossy().to_string();
    let candidates = [
        fixtures().join("data").join(rel),
        fixtures()
            .join("golden/pcm")
            .join(&set)
            .join(format!("{stem}.wav")),
        fixtures()
            .join("extra/pcm")
            .join(&set)
            .join(format!("{name}.wav")),
    ];
    for cand in &candidates {
        let Ok(samples) = vkw_audio::load_audio(cand) else {
            continue;
        };
        let mut h = Sha256::new();
        for x in &samples {
            h.update(x.to_le_bytes());
        }
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if got == want_sha {
            return Ok(samples);
        }
    }
    Err(format!(
        "{rel}: no input with faster-whisper's exact samples"
    ))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

/// Largest differences seen (start/end seconds, probability), for the log.
static MAX_DIFF: std::sync::Mutex<(f64, f64)> = std::sync::Mutex::new((0.0, 0.0));

/// Every divergence of one file; the number of words compared.
fn compare(rel: &str, want: &serde_json::Value, got: &[Segment], errs: &mut Vec<String>) -> usize {
    let segs = want["segments"].as_array().unwrap();
    let mut words = 0;
    if segs.len() != got.len() {
        errs.push(format!(
            "{rel}: {} segments, want {}",
            got.len(),
            segs.len()
        ));
    }
    for (i, (w, g)) in segs.iter().zip(got).enumerate() {
        if f(&w["temperature"]) > 0.0 {
            break; // sampled after a fallback: not reproducible
        }
        let wtok: Vec<u32> = w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        if wtok != g.tokens {
            errs.push(format!(
                "{rel}: segment {i}: tokens differ: {:?} vs {:?}",
                w["text"], g.text
            ));
            break; // everything after depends on the tokens
        }
        for (name, a, b) in [
            ("start", f(&w["start"]), g.start),
            ("end", f(&w["end"]), g.end),
        ] {
            if (a - b).abs() > TIME_TOL {
                errs.push(format!("{rel}: segment {i}: {name} want {a}, got {b}"));
            }
        }
        if w["seek"].as_u64().unwrap() as usize != g.seek {
            errs.push(format!(
                "{rel}: segment {i}: seek want {}, got {}",
                w["seek"], g.seek
            ));
        }
        let ww = w["words"].as_array().unwrap();
        let Some(gw) = g.words.as_ref() else {
            errs.push(format!("{rel}: segment {i}: no words"));
            continue;
        };
        if ww.len() != gw.len() {
            let list = |v: Vec<&str>| v.join("|");
            errs.push(format!(
                "{rel}: segment {i}: {} words, want {}:\n  want {}\n  got  {}",
                gw.len(),
                ww.len(),
                list(ww.iter().map(|x| x[2].as_str().unwrap()).collect()),
                list(gw.iter().map(|x| x.word.as_str()).collect()),
            ));
            continue;
        }
        for (k, (a, b)) in ww.iter().zip(gw).enumerate() {
            words += 1;
            let text = a[2].as_str().unwrap();
            if text != b.word {
                errs.push(format!(
                    "{rel}: segment {i} word {k}: {text:?} vs {:?}",
                    b.word
                ));
            }
            for (name, x, y, tol) in [
                ("start", f(&a[0]), b.start, TIME_TOL),
                ("end", f(&a[1]), b.end, TIME_TOL),
                ("probability", f(&a[3]), b.probability, 1e-3),
            ] {
                if let Ok(mut m) = MAX_DIFF.lock() {
                    let slot = if name == "probability" {
                        &mut m.1
                    } else {
                        &mut m.0
                    };
                    *slot = slot.max((x - y).abs());
                }
                if (x - y).abs() > tol + 1e-9 {
                    errs.push(format!(
                        "{rel}: segment {i} word {k} {text:?}: {name} want {x}, got {y}"
                    ));
                }
            }
        }
    }
    words
}

#[test]
fn golden_tiny_en_beam5_words() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let path = fixtures().join("golden/tiny.en.float32.beam5.words.json");
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let opts = TranscribeOptions::new(DecodeOptions {
        word_timestamps: true,
        ..Default::default()
    });
    let only = std::env::var("VKW_GOLDEN_ONLY").ok();
    let (mut files, mut words, mut errs) = (0, 0, Vec::new());
    for (rel, want) in g["files"].as_object().unwrap() {
        if only.as_deref().is_some_and(|o| !rel.contains(o)) {
            continue;
        }
        let samples = load_samples(rel, want["samples_sha256"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        engine
            .transcribe(&samples[..], &opts, &mut got)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let before = errs.len();
        words += compare(rel, want, &got, &mut errs);
        files += 1;
        if errs.len() > before {
            eprintln!("{rel}: {} divergences", errs.len() - before);
        }
    }
    let m = MAX_DIFF.lock().map(|m| *m).unwrap_or_default();
    eprintln!(
        "{files} files, {words} words compared, {} divergences; max |Δ| time {:.3} s, probability {:.1e}",
        errs.len(),
        m.0,
        m.1
    );
    assert!(files > 0 || only.is_some(), "no file compared");
    assert!(
        errs.is_empty(),
        "{} divergences:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// The word-timestamp cases of `tests/fixtures/extra/golden_options.json`
/// (recorded by `scripts/make_option_golden.py`): hallucination_silence_threshold
/// on espeak_07 (its anomalous first segment is dropped and the window
/// re-decoded from 1 s), no punctuation merging, greedy, German on base,
/// text-only windows on the long-form file, and Japanese and Thai on base
/// (words split on Unicode code points, §7.3).
#[test]
fn option_cases_with_words() {
    let text = std::fs::read_to_string(fixtures().join("extra/golden_options.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut engines: Vec<(String, Engine)> = Vec::new();
    let (mut cases, mut words, mut errs) = (0, 0, Vec::new());
    for case in golden["cases"].as_array().unwrap() {
        let kw = case["kwargs"].as_object().unwrap();
        if kw.get("word_timestamps").and_then(|v| v.as_bool()) != Some(true) {
            continue;
        }
        let name = case["model"].as_str().unwrap();
        if !engines.iter().any(|(n, _)| n == name) {
            let Some(engine) = common::engine(name) else {
                return;
            };
            engines.push((name.to_string(), engine));
        }
        let (_, engine) = engines.iter().find(|(n, _)| n == name).unwrap();
        let o = TranscribeOptions::new(common::fw_options(&case["kwargs"]));
        let rel = case["file"].as_str().unwrap();
        let samples = vkw_audio::load_audio(&fixtures().join(rel)).unwrap();
        let mut got = Vec::new();
        engine
            .transcribe(samples, &o, &mut got)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let label = format!("{} ({rel})", case["name"].as_str().unwrap());
        words += compare(&label, case, &got, &mut errs);
        cases += 1;
    }
    eprintln!(
        "{cases} cases, {words} words compared, {} divergences",
        errs.len()
    );
    assert!(cases >= 5, "only {cases} word cases in golden_options.json");
    assert!(
        errs.is_empty(),
        "{} divergences:\n{}",
        errs.len(),
        errs.join("\n")
    );
}
