//! Token-exact parity with faster-whisper 1.2.1 on the golden outputs of
//! `tests/fixtures/golden` (see its README for the comparison rules).
//!
//! Each test runs one golden configuration over all of its files and reports
//! the first divergence per file (file, segment, token index).

mod common;

use sha2::{Digest, Sha256};
use std::path::Path;
use vkw_testkit::fixtures;
use vkwhisper::{DecodeOptions, Engine, Segment, Task, TranscribeOptions, TranscriptionInfo};

fn golden(name: &str) -> serde_json::Value {
    let path = fixtures().join("golden").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The exact samples faster-whisper saw: the original file or
/// `golden/pcm/<set>/<stem>.wav`, whichever hashes to the golden
/// `samples_sha256` (sha256 of the float32 little-endian samples), or
/// `extra/pcm/<set>/<file>.wav` where the golden PCM name collides. `Err`
/// when none does.
fn load_samples(rel: &str, want_sha: Option<&str>) -> Result<Vec<f32>, String> {
    let p = Path::new(rel);
    let set = p.parent().map(|s| s.to_path_buf()).unwrap_or_default();
    let stem = p.file_stem().unwrap().to_string_lossy().to_string();
    let pcm = fixtures()
        .join("golden/pcm")
        .join(&set)
        .join(format!("{stem}.wav"));
    let orig = fixtures().join("data").join(rel);
    // Where the golden pcm/ name collides (jfk.flac and jfk.mp3 both map to
    // pcm/jfk/jfk.wav), tests/fixtures/extra/pcm holds the FLAC's samples.
    let extra = fixtures()
        .join("extra/pcm")
        .join(&set)
        .join(format!("{}.wav", p.file_name().unwrap().to_string_lossy()));
    let mut tried = Vec::new();
    for cand in [orig, pcm, extra] {
        let Ok(samples) = vkw_audio::load_audio(&cand) else {
            continue;
        };
        let Some(want) = want_sha else {
            return Ok(samples);
        };
        let mut h = Sha256::new();
        for x in &samples {
            h.update(x.to_le_bytes());
        }
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if got == want {
            return Ok(samples);
        }
        tried.push(cand.display().to_string());
    }
    Err(format!(
        "{rel}: no input with faster-whisper's exact samples (tried {tried:?})"
    ))
}

/// Transcribe through the engine, as any caller would.
fn transcribe(
    engine: &Engine,
    rel: &str,
    samples: &[f32],
    opts: &DecodeOptions,
) -> (TranscriptionInfo, Vec<Segment>) {
    let mut segs = Vec::new();
    let info = engine
        .transcribe(samples, &TranscribeOptions::new(opts.clone()), &mut segs)
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    (info, segs)
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

/// Compare one file; `Err` describes the first divergence. Returns the number
/// of segments matched.
fn compare(rel: &str, want: &serde_json::Value, got: &[Segment]) -> Result<usize, String> {
    let segs = want["segments"].as_array().unwrap();
    for (i, w) in segs.iter().enumerate() {
        let wt = f(&w["temperature"]);
        let Some(g) = got.get(i) else {
            return Err(format!(
                "{rel}: segment {i}: missing (got {} segments, want {})",
                got.len(),
                segs.len()
            ));
        };
        if wt > 0.0 {
            // Sampled after a fallback: only check that we fell back too.
            if g.temperature <= 0.0 {
                return Err(format!(
                    "{rel}: segment {i}: golden fell back to T={wt}, we did not"
                ));
            }
            return Ok(i);
        }
        let wtok: Vec<u32> = w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        if let Some(k) =
            (0..wtok.len().max(g.tokens.len())).find(|&k| wtok.get(k) != g.tokens.get(k))
        {
            return Err(format!(
                "{rel}: segment {i} (seek {}): first token difference at index {k}: want {:?}, got {:?}\n  want text {:?}\n  got  text {:?}",
                w["seek"], wtok.get(k), g.tokens.get(k), w["text"].as_str().unwrap(), g.text
            ));
        }
        let checks = [
            ("start", f(&w["start"]), g.start, 0.01),
            ("end", f(&w["end"]), g.end, 0.01),
            ("avg_logprob", f(&w["avg_logprob"]), g.avg_logprob, 1e-3),
            (
                "no_speech_prob",
                f(&w["no_speech_prob"]),
                g.no_speech_prob,
                1e-3,
            ),
            (
                "compression_ratio",
                f(&w["compression_ratio"]),
                g.compression_ratio,
                1e-9,
            ),
            ("temperature", wt, f64::from(g.temperature), 1e-6),
        ];
        for (name, a, b, tol) in checks {
            if (a - b).abs() > tol {
                return Err(format!("{rel}: segment {i}: {name} want {a}, got {b}"));
            }
        }
        if w["seek"].as_u64().unwrap() as usize != g.seek
            || w["id"].as_u64().unwrap() as usize != g.id
        {
            return Err(format!(
                "{rel}: segment {i}: seek/id want {}/{}, got {}/{}",
                w["seek"], w["id"], g.seek, g.id
            ));
        }
        if w["text"].as_str().unwrap() != g.text {
            return Err(format!("{rel}: segment {i}: text differs"));
        }
    }
    if got.len() != segs.len() {
        return Err(format!(
            "{rel}: {} extra segments, first: {:?}",
            got.len() - segs.len(),
            got[segs.len()].text
        ));
    }
    Ok(segs.len())
}

/// Run a whole golden configuration and fail with every file's first divergence.
fn run_config(file: &str, model: &str, opts: &DecodeOptions) {
    let Some(engine) = common::engine(model) else {
        return;
    };
    let g = golden(file);
    let files = g["files"].as_object().unwrap();
    let only = std::env::var("VKW_GOLDEN_ONLY").ok();
    let (mut ok_files, mut ok_segs, mut total_segs) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for (rel, want) in files {
        if only.as_deref().is_some_and(|o| !rel.contains(o)) {
            continue;
        }
        let t0 = std::time::Instant::now();
        let samples = match load_samples(rel, want["samples_sha256"].as_str()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{file}: skipped: {e}");
                skipped.push(e);
                continue;
            }
        };
        let (info, got) = transcribe(&engine, rel, &samples, opts);
        let n = want["segments"].as_array().unwrap().len();
        total_segs += n;
        let mut res = compare(rel, want, &got);
        if res.is_ok() && info.language != want["language"].as_str().unwrap() {
            res = Err(format!(
                "{rel}: language {} vs {}",
                info.language, want["language"]
            ));
        }
        if res.is_ok()
            && (info.language_probability - f(&want["language_probability"])).abs() > 1e-3
        {
            res = Err(format!(
                "{rel}: language probability {} vs {}",
                info.language_probability, want["language_probability"]
            ));
        }
        match res {
            Ok(m) => {
                ok_files += 1;
                ok_segs += m;
            }
            Err(e) => failures.push(e),
        }
        eprintln!("{file}: {rel} done in {:.1}s", t0.elapsed().as_secs_f64());
    }
    let n_files = failures.len() + ok_files;
    eprintln!(
        "{file}: {ok_files}/{n_files} files match ({ok_segs}/{total_segs} segments of compared files); {} skipped for input samples",
        skipped.len()
    );
    // Every input has faster-whisper's exact samples in the fixtures: a skip
    // would hide a decoding bug.
    assert!(skipped.is_empty(), "{file}: inputs skipped: {skipped:?}");
    assert!(n_files > 0 || only.is_some(), "{file}: no file compared");
    assert!(
        failures.is_empty(),
        "{file}: {} of {n_files} files diverge:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn jfk_window0_greedy_and_beam5() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let g = golden("jfk.intermediates.json");
    for (key, beam) in [("greedy", 1), ("beam5", 5)] {
        let w = &g["window0"][key];
        let opts = DecodeOptions {
            beam_size: beam,
            temperatures: vec![0.0],
            ..Default::default()
        };
        let samples = load_samples("jfk/jfk.wav", None).unwrap();
        let (_, segs) = transcribe(&engine, "jfk/jfk.wav", &samples, &opts);
        let tokens: Vec<u32> = segs.iter().flat_map(|s| s.tokens.clone()).collect();
        let want: Vec<u32> = w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tokens, want, "window0 {key}");
        let avg = segs[0].avg_logprob;
        assert!(
            (avg - f(&w["avg_logprob"])).abs() < 1e-3,
            "{key}: avg_logprob {avg} vs {}",
            w["avg_logprob"]
        );
        assert!((segs[0].no_speech_prob - f(&w["no_speech_prob"])).abs() < 1e-4);
    }
}

#[test]
fn golden_tiny_en_beam5() {
    run_config(
        "tiny.en.float32.beam5.json",
        "tiny.en",
        &DecodeOptions::default(),
    );
}

#[test]
fn golden_tiny_en_greedy() {
    let opts = DecodeOptions {
        beam_size: 1,
        ..Default::default()
    };
    run_config("tiny.en.float32.greedy.json", "tiny.en", &opts);
}

#[test]
fn golden_tiny_en_beam5_nocond_notimestamps() {
    let opts = DecodeOptions {
        condition_on_previous_text: false,
        without_timestamps: true,
        ..Default::default()
    };
    run_config(
        "tiny.en.float32.beam5.nocond.notimestamps.json",
        "tiny.en",
        &opts,
    );
}

#[test]
fn golden_tiny_en_beam5_prompt() {
    let opts = DecodeOptions {
        initial_prompt: Some("Kennedy. Americans. Country.".into()),
        ..Default::default()
    };
    run_config("tiny.en.float32.beam5.prompt.json", "tiny.en", &opts);
}

#[test]
fn golden_base_beam5_autolang() {
    run_config(
        "base.float32.beam5.autolang.json",
        "base",
        &DecodeOptions::default(),
    );
}

#[test]
fn golden_base_beam5_translate() {
    let opts = DecodeOptions {
        task: Task::Translate,
        ..Default::default()
    };
    run_config("base.float32.beam5.translate.json", "base", &opts);
}

#[test]
fn golden_base_detect_language() {
    let Some(engine) = common::engine("base") else {
        return;
    };
    let g = golden("base.detect_language.json");
    let shas = golden("base.float32.beam5.autolang.json");
    for (rel, want) in g["files"].as_object().unwrap() {
        let sha = shas["files"][rel]["samples_sha256"].as_str();
        let samples = match load_samples(rel, sha) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        // WhisperModel.detect_language(audio): log-mel of the first 30 s only.
        let d = engine
            .detect_language(&samples[..], &TranscribeOptions::default())
            .unwrap();
        let top5 = want["detect_language"]["top5"].as_array().unwrap();
        assert_eq!(d.language, top5[0][0].as_str().unwrap(), "{rel}");
        assert!((d.probability - f(&top5[0][1])).abs() < 1e-3, "{rel}");
        for (i, w) in top5.iter().enumerate() {
            let (code, p) = (w[0].as_str().unwrap(), f(&w[1]));
            assert_eq!(d.all[i].0, code, "{rel}: rank {i}");
            assert!(
                (d.all[i].1 - p).abs() < 1e-3,
                "{rel}: {code} {} vs {p}",
                d.all[i].1
            );
        }
    }
}

/// The original-audio variant: every golden input that faster-whisper decoded through FFmpeg's
/// decoder and resampler (FLAC at 22.05 and 44.1 kHz, the stereo 24-bit jfk.flac, MP3 at 16
/// and 24 kHz) is decoded here from its original file by vkw-audio, never from `golden/pcm/`,
/// and must give the golden tokens. Lossless inputs decode to faster-whisper's exact samples
/// (their hash is checked here; `run_config` above then transcribes them from the original);
/// MP3s differ by ±1 LSB on a few hundred samples (MP3 float decoding,
/// `crates/audio/tests/original_audio.rs`) and are transcribed here.
#[test]
fn golden_from_original_audio() {
    let configs = [
        (
            "tiny.en.float32.beam5.json",
            "tiny.en",
            DecodeOptions::default(),
        ),
        (
            "base.float32.beam5.autolang.json",
            "base",
            DecodeOptions::default(),
        ),
    ];
    let mut failures = Vec::new();
    let mut compared = 0;
    for (file, model, opts) in configs {
        let g = golden(file);
        let mut engine = None;
        for (rel, want) in g["files"].as_object().unwrap() {
            if rel.ends_with(".wav") {
                continue;
            }
            let orig = fixtures().join("data").join(rel);
            let samples = vkw_audio::load_audio(&orig).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                samples.len() as u64,
                want["num_samples"].as_u64().unwrap(),
                "{rel}: sample count"
            );
            if rel.ends_with(".flac") {
                let mut h = Sha256::new();
                for x in &samples {
                    h.update(x.to_le_bytes());
                }
                let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(
                    Some(got.as_str()),
                    want["samples_sha256"].as_str(),
                    "{rel}: not faster-whisper's samples"
                );
                continue;
            }
            let engine = match &mut engine {
                Some(e) => e,
                None => match common::engine(model) {
                    Some(e) => engine.insert(e),
                    None => return,
                },
            };
            let (info, got) = transcribe(engine, rel, &samples, &opts);
            let mut res = compare(rel, want, &got);
            if res.is_ok() && info.language != want["language"].as_str().unwrap() {
                res = Err(format!("{rel}: language {}", info.language));
            }
            compared += 1;
            if let Err(e) = res {
                failures.push(format!("{file}: {e}"));
            }
        }
    }
    eprintln!("original audio: {compared} lossy inputs transcribed");
    assert!(compared >= 2, "no lossy input compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
