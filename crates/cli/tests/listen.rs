//! `vkwhisper listen` end to end on the real tiny.en model: a file on the
//! virtual clock with `--json-events`, and raw s16le PCM on stdin, both
//! give the jfk text; the final files are written.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use vkw_testkit::{fixtures, model_dir, vad_model, wer_words};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// The jfk speech, within a few words: live passes run at moments that
/// depend on the machine's speed, and a pass that hears only the start of a
/// phrase can settle its first word wrongly ("Like" for "What").
fn assert_jfk(text: &str) {
    let wer = vkw_testkit::wer(JFK, text);
    assert!(wer <= 15.0, "not the jfk text (WER {wer:.1} %): {text:?}");
    assert!(
        words(text).contains("ask what you can do for your country"),
        "{text:?}"
    );
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE");
    c
}

fn jfk() -> std::path::PathBuf {
    fixtures().join("data/jfk/jfk.wav")
}

/// The `data` chunk of a PCM WAV.
fn wav_data(wav: &[u8]) -> &[u8] {
    let mut at = 12;
    while at + 8 <= wav.len() {
        let len = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        if &wav[at..at + 4] == b"data" {
            return &wav[at + 8..(at + 8 + len).min(wav.len())];
        }
        at += 8 + len + (len & 1);
    }
    panic!("no data chunk");
}

fn words(s: &str) -> String {
    wer_words(s).join(" ")
}

/// The committed text of `--json-events` output, checking every line.
fn committed_text(stdout: &str) -> String {
    let mut text = String::new();
    let mut tentative = 0;
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match v["type"].as_str() {
            Some("committed") => {
                let (start, end, at) = (
                    v["start"].as_f64().expect("start"),
                    v["end"].as_f64().expect("end"),
                    v["emitted_at"].as_f64().expect("emitted_at"),
                );
                // Nothing is committed before its audio has arrived.
                assert!(start <= end && end <= at + 1e-6, "{line}");
                text.push_str(v["text"].as_str().expect("text"));
            }
            Some("tentative") => tentative += 1,
            other => panic!("unexpected event {other:?}: {line}"),
        }
    }
    assert!(
        tentative > 0 || text.is_empty(),
        "tentative events on a file: {stdout}"
    );
    text
}

#[test]
fn file_on_the_virtual_clock_and_stdin_give_the_jfk_text() {
    let (Some(model), Some(_)) = (model_dir("tiny.en"), vad_model()) else {
        return;
    };
    let out = tempfile::tempdir().expect("tempdir");
    let o = bin()
        .args([
            "listen",
            "--json-events",
            "--device",
            "cpu",
            "-f",
            "txt",
            "-o",
        ])
        .arg(out.path())
        .arg("--model")
        .arg(&model)
        .arg("--file")
        .arg(jfk())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let file_text = committed_text(&String::from_utf8_lossy(&o.stdout));
    assert_jfk(&file_text);
    let txt = std::fs::read_to_string(out.path().join("jfk.txt")).expect("jfk.txt");
    assert_eq!(
        words(&txt),
        words(&file_text),
        "the txt file is the committed text"
    );

    // Raw s16le on stdin (what a recorder pipes in).
    let pcm = wav_data(&std::fs::read(jfk()).expect("jfk.wav")).to_vec();
    let mut child = bin()
        .args([
            "listen",
            "-",
            "--json-events",
            "--device",
            "cpu",
            "--format",
            "s16le",
            "--rate",
            "16000",
            "--model",
        ])
        .arg(&model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        stdin.write_all(&pcm).expect("write");
    });
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdin_text = committed_text(&String::from_utf8_lossy(&o.stdout));
    assert_jfk(&stdin_text);
    // The same speech: at most a word or two apart (the passes differ with timing).
    let wer = vkw_testkit::wer(&file_text, &stdin_text);
    assert!(
        wer <= 15.0,
        "file {file_text:?} vs stdin {stdin_text:?}: WER {wer:.1} %"
    );
}

#[test]
fn bad_sources_fail_with_one_line() {
    let o = bin().args(["listen", "nonsense"]).output().expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let o = bin()
        .args(["listen", "-", "--rate", "5"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rate"));
}
