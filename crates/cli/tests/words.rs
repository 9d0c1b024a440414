//! `vkwhisper transcribe --word-timestamps` end to end: words in the json
//! output, srt lines from words with --max-line-width/--max-line-count, and
//! the line options refused without word timings (as openai-whisper's CLI),
//! and words in batched mode (`--batch-size`).

use std::process::Command;
use vkw_testkit::{fixtures, model_dir};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE");
    c
}

#[test]
fn line_options_need_word_timestamps() {
    for args in [
        &["--max-line-width", "20"][..],
        &["--max-line-count", "2"][..],
        &["--highlight-words"][..],
    ] {
        let o = bin()
            .arg("transcribe")
            .args(args)
            .arg("x.wav")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(args[0]) && lines[0].contains("--word-timestamps"),
            "{err}"
        );
    }
}

#[test]
fn words_in_json_and_srt_lines() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["transcribe", "--device", "cpu", "-q", "--model"])
        .arg(&model)
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .args([
            "--word-timestamps",
            "--max-line-width",
            "20",
            "--max-line-count",
            "2",
            "-f",
            "json,srt",
            "-o",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("jfk.json")).unwrap())
            .unwrap();
    let mut all = Vec::new();
    for seg in json["segments"].as_array().unwrap() {
        let words = seg["words"].as_array().expect("segment without words");
        for w in words {
            for key in ["start", "end", "word", "probability"] {
                assert!(!w[key].is_null(), "word lacks {key}: {w}");
            }
            all.push(w["word"].as_str().unwrap().to_string());
        }
        // The words spell the segment's text.
        let joined: String = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(joined, seg["text"].as_str().unwrap());
    }
    assert_eq!(all.len(), 22, "{all:?}");
    let srt = std::fs::read_to_string(out.path().join("jfk.srt")).unwrap();
    let text_lines: Vec<&str> = srt
        .lines()
        .filter(|l| !l.is_empty() && !l.contains("-->") && l.parse::<u32>().is_err())
        .collect();
    assert!(text_lines.iter().all(|l| l.chars().count() <= 20), "{srt}");
    // Cues of at most two lines each, the words in order.
    for cue in srt.split("\n\n").filter(|c| !c.trim().is_empty()) {
        assert!(cue.lines().count() <= 4, "{cue}");
    }
    let words_in_srt: Vec<&str> = text_lines.iter().flat_map(|l| l.split(' ')).collect();
    let trimmed: Vec<&str> = all.iter().map(|w| w.trim()).collect();
    assert_eq!(words_in_srt, trimmed);
}

#[test]
fn words_in_batched_mode() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    if vkw_testkit::vad_model().is_none() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["transcribe", "--device", "cpu", "-q", "--model"])
        .arg(&model)
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .args(["--batch-size", "8", "--word-timestamps", "-f", "json", "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("jfk.json")).unwrap())
            .unwrap();
    // faster-whisper's BatchedInferencePipeline words (recorded by
    // scripts/record-batched-golden.py).
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            fixtures().join("golden/tiny.en.float32.beam5.batched8.words.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let want: Vec<&serde_json::Value> = golden["files"]["jfk/jfk.wav"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["words"].as_array().unwrap())
        .collect();
    let got: Vec<&serde_json::Value> = json["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["words"].as_array().expect("segment without words"))
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["word"], w[2]);
        for (key, i) in [("start", 0), ("end", 1)] {
            let (a, b) = (g[key].as_f64().unwrap(), w[i].as_f64().unwrap());
            assert!((a - b).abs() <= 0.02 + 1e-9, "{g} vs {w}");
        }
    }
}
