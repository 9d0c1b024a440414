//! End-to-end tests of the `vkwhisper` binary: outputs, and error paths that
//! must end in one clear line and a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vkw_testkit::{fixtures, model_dir};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE");
    c
}

fn jfk() -> PathBuf {
    fixtures().join("data/jfk/jfk.wav")
}

/// `vkwhisper transcribe --model MODEL INPUTS...`, run to completion.
fn transcribe(model: &Path, inputs: &[&Path]) -> Output {
    bin()
        .args(["transcribe", "--model"])
        .arg(model)
        .args(inputs)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed run: non-zero exit, a one-line `error:` message mentioning
/// `needle`, and no panic.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(
        lines[0].contains(needle),
        "error line lacks '{needle}': {err}"
    );
}

/// A copy of a model directory (files linked, not copied) for tampering.
fn model_copy(src: &Path, skip: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).unwrap();
    }
    dir
}

#[test]
fn writes_every_format_atomically() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["transcribe", "--model"])
        .arg(&model)
        .arg(jfk())
        .args(["-f", "all", "-o"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("[00:00.000 --> 00:08.000]  And so, my fellow Americans"),
        "{stdout}"
    );
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["jfk.json", "jfk.srt", "jfk.tsv", "jfk.txt", "jfk.vtt"]
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("jfk.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["text"].as_str().unwrap().trim(),
        "And so, my fellow Americans ask not what your country can do for you ask what you can do for your country."
    );
    assert_eq!(json["language"], "en");
    assert_eq!(json["duration"].as_f64(), Some(11.0));
    let seg = &json["segments"][0];
    for key in [
        "id",
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    ] {
        assert!(!seg[key].is_null(), "segment lacks {key}: {seg}");
    }
    let srt = std::fs::read_to_string(out.path().join("jfk.srt")).unwrap();
    assert!(
        srt.starts_with("1\n00:00:00,000 --> 00:00:08,000\n"),
        "{srt}"
    );
}

#[test]
fn reads_stdin() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let o = bin()
        .args(["transcribe", "--model"])
        .arg(&model)
        .arg("-")
        .stdin(std::fs::File::open(jfk()).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ask what you can do for your country."));
}

#[test]
fn unknown_output_format_is_an_error() {
    let o = bin()
        .args(["transcribe", "--model", "/nonexistent", "-f", "docx"])
        .arg(jfk())
        .output()
        .unwrap();
    assert_clean_failure(&o, "docx");
}

#[test]
fn missing_model_dir_is_an_error() {
    let o = bin()
        .args(["transcribe", "--model", "/nonexistent/model"])
        .arg(jfk())
        .output()
        .unwrap();
    assert_clean_failure(&o, "/nonexistent/model");
}

#[test]
fn corrupt_and_truncated_model_bin_are_errors() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    // Random bytes.
    let dir = model_copy(&model, &["model.bin"]);
    std::fs::write(
        dir.path().join("model.bin"),
        b"this is not a model at all, just text",
    )
    .unwrap();
    let o = transcribe(dir.path(), &[&jfk()]);
    assert_clean_failure(&o, "model.bin");
    // The first 10 MB of the real file.
    let dir = model_copy(&model, &["model.bin"]);
    let bytes = std::fs::read(model.join("model.bin")).unwrap();
    std::fs::write(dir.path().join("model.bin"), &bytes[..10_000_000]).unwrap();
    let o = transcribe(dir.path(), &[&jfk()]);
    assert_clean_failure(&o, "model.bin");
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}

#[test]
fn model_without_tokenizer_is_an_error() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let dir = model_copy(&model, &["tokenizer.json"]);
    let o = transcribe(dir.path(), &[&jfk()]);
    assert_clean_failure(&o, "tokenizer.json");
}

#[test]
fn bad_audio_inputs_are_errors_and_other_files_still_run() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.wav");
    std::fs::write(
        &text,
        "hello, this is a text file and not audio\n".repeat(20),
    )
    .unwrap();
    let o = transcribe(&model, &[&text]);
    assert_clean_failure(&o, "notes.wav");
    // A WAV cut inside its header.
    let cut = tmp.path().join("cut.wav");
    std::fs::write(&cut, &std::fs::read(jfk()).unwrap()[..30]).unwrap();
    let o = transcribe(&model, &[&cut]);
    assert_clean_failure(&o, "cut.wav");
    // A WAV cut in the middle of its data.
    let half = tmp.path().join("half.wav");
    let bytes = std::fs::read(jfk()).unwrap();
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let o = transcribe(&model, &[&half]);
    assert_clean_failure(&o, "truncated");
    // A missing file among good ones: the good one is still transcribed.
    let o = transcribe(&model, &[&tmp.path().join("absent.wav"), &jfk()]);
    assert_clean_failure(&o, "absent.wav");
    assert!(String::from_utf8_lossy(&o.stdout).contains("And so, my fellow Americans"));
}

#[test]
fn int8_model_transcribes_jfk() {
    use vkw_model::writer::{is_quantizable, quantize_int8, write_model_bin};
    use vkw_model::ModelBin;
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    // Quantise every weight of tiny.en by the spec's rule (§2.6) into a new model.bin.
    let src = ModelBin::open(&model.join("model.bin")).unwrap();
    let alias_names: Vec<&str> = src.aliases.iter().map(|(a, _)| a.as_str()).collect();
    let vars: Vec<(String, vkw_model::Tensor)> = src
        .names()
        .filter(|n| !alias_names.contains(n) && !n.ends_with("_scale"))
        .map(|n| {
            let t = src.get(n).unwrap();
            let t = if is_quantizable(n) {
                quantize_int8(t)
            } else {
                t.clone()
            };
            (n.to_string(), t)
        })
        .collect();
    let dir = model_copy(&model, &["model.bin"]);
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("model.bin")).unwrap());
    write_model_bin(
        &mut f,
        &src.spec_name,
        src.spec_revision,
        &vars,
        &src.aliases,
    )
    .unwrap();
    drop(f);
    let q = ModelBin::open(&dir.path().join("model.bin")).unwrap();
    assert!(matches!(
        q.get("decoder/projection/weight").unwrap().data,
        vkw_model::TensorData::I8(_)
    ));
    let o = transcribe(dir.path(), &[&jfk()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text: String = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split_once("]  ").map_or("", |x| x.1))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        text,
        "And so, my fellow Americans ask not what your country can do for you ask what you can do for your country."
    );
}

#[test]
fn ctrl_c_leaves_no_partial_output() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["transcribe", "-q", "-f", "json", "-o"])
        .arg(out.path())
        .arg("--model")
        .arg(&model)
        .arg(fixtures().join("data/longform/ljspeech_LJ001_0001-0032.wav"))
        .spawn()
        .unwrap();
    // Wait until the output's temporary file exists, then interrupt.
    let start = std::time::Instant::now();
    while std::fs::read_dir(out.path()).unwrap().count() == 0 {
        assert!(start.elapsed().as_secs() < 60, "no output file was started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn batched_clip_timestamps_must_be_increasing() {
    let o = bin()
        .args([
            "transcribe",
            "--model",
            "/nonexistent",
            "--batch-size",
            "4",
            "--clip-timestamps",
            "0,10,5,20",
        ])
        .arg(jfk())
        .output()
        .unwrap();
    assert_clean_failure(&o, "--clip-timestamps '0,10,5,20' must be increasing");
}

/// `--batch-size` with `--clip-timestamps`: FW's pipeline with
/// `clip_timestamps` (golden `…batched8.clips.json`), and a warning for the
/// flag that batched mode ignores.
#[test]
fn batched_clips_through_the_cli() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["transcribe", "--model"])
        .arg(&model)
        .args(["--device", "cpu", "-q", "-f", "json", "--batch-size", "2"])
        .args(["--clip-timestamps", "1,9.5"])
        .args(["--hallucination-silence-threshold", "2", "-o"])
        .arg(out.path())
        .arg(jfk())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--hallucination-silence-threshold has no effect"));
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("jfk.json")).unwrap())
            .unwrap();
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            fixtures().join("golden/tiny.en.float32.beam5.batched8.clips.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let want = &golden["files"]["jfk/jfk.wav"]["segments"];
    let segs = got["segments"].as_array().unwrap();
    assert_eq!(segs.len(), want.as_array().unwrap().len());
    for (g, w) in segs.iter().zip(want.as_array().unwrap()) {
        assert_eq!(g["tokens"], w["tokens"]);
        assert_eq!(g["start"].as_f64(), w["start"].as_f64());
        assert_eq!(g["end"].as_f64(), w["end"].as_f64());
    }
}

/// `export-ggml` (the device check's whisper.cpp anchor): tiny.en becomes
/// a whisper.cpp file of the size whisper.cpp's own float16 tiny.en has
/// (the file that whisper.cpp transcribed jfk with, docs/BENCHMARKS.md), and
/// wrong input ends in one error line with nothing left behind.
#[test]
fn export_ggml_writes_a_whisper_cpp_file() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ggml-tiny.en.bin");
    // `vkwhisper export-ggml MODEL OUT [EXTRA...]`
    let export = |model: &Path, out: &Path, extra: &[&str]| {
        bin()
            .arg("export-ggml")
            .arg(model)
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = export(&model, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 77_704_715);
    let word = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(word(0) as u32, 0x6767_6d6c);
    // vocabulary, audio ctx, width, heads, layers, text ctx, width, heads, layers, mels, ftype
    let header: Vec<i32> = (1..12).map(word).collect();
    assert_eq!(header, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);

    assert_clean_failure(&export(&model, &out, &[]), "exists");
    let x = dir.path().join("x.bin");
    assert_clean_failure(&export(&model, &x, &["--dtype", "int4"]), "unknown dtype");
    let no_model = dir.path().join("no-model");
    assert_clean_failure(&export(&no_model, &x, &[]), "no-model");
    let unwritable = dir.path().join("no-dir/z.bin");
    assert_clean_failure(&export(&model, &unwritable, &[]), "z.bin");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("ggml-tiny.en.bin")]);
}

#[test]
fn english_only_model_says_language_and_translate_have_no_effect() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let o = bin()
        .args(["transcribe", "--model"])
        .arg(&model)
        .arg(jfk())
        .args(["--language", "de", "--task", "translate"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ask what you can do for your country."),
        "{err}"
    );
    assert!(err.contains("--language de has no effect"), "{err}");
    assert!(err.contains("--task translate has no effect"), "{err}");
    // English asked of an English model is no cause for a warning.
    let o = bin()
        .args(["transcribe", "--model"])
        .arg(&model)
        .arg(jfk())
        .args(["--language", "en"])
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
