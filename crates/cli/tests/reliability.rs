//! The binary on hostile inputs (docs/RELIABILITY.md): the regression
//! fixtures of the fuzzing work and mutated real models each end in exactly
//! one `error:` line on stderr, a non-zero exit and no panic text, within a
//! time limit; and interrupted runs (SIGINT, SIGTERM, SIGHUP, SIGKILL) leave
//! no temporary file or directory behind once the next run has started.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use vkw_testkit::{fixtures, model_dir};

/// Separates the files of one multi-file fuzz input (fuzz/fuzz_targets/common.rs).
const SEP: &[u8] = b"\n\xff\xfeVKW-PART\xfe\xff\n";

/// The binary with no ffmpeg on PATH, so that the results do not depend on
/// whether the machine has one.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE")
        .env("PATH", "/nonexistent")
        .env("RUST_BACKTRACE", "1");
    c
}

/// Run with a time limit (a hang is a failure, not a stuck test).
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("no exit within {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Non-zero exit; stderr holds `expected_errors` lines starting `error: `
/// and nothing else but `vkwhisper:` notes; no panic or backtrace text.
fn assert_one_line_errors(o: &Output, expected_errors: usize) -> Vec<String> {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "exit 0; stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "panic text on stderr: {err}"
    );
    let errors: Vec<String> = err
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect();
    let other: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("error: ") && !l.starts_with("vkwhisper: "))
        .collect();
    assert!(other.is_empty(), "stray stderr lines {other:?} in: {err}");
    assert_eq!(errors.len(), expected_errors, "stderr: {err}");
    errors
}

struct Case {
    path: String,
    needle: String,
}

fn manifest(prefix: &str) -> Vec<Case> {
    std::fs::read_to_string(fixtures().join("fuzz/MANIFEST.tsv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                path: f[0].to_string(),
                needle: f[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn audio_regressions_are_one_line_errors_each() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let cases = manifest("audio/");
    let paths: Vec<PathBuf> = cases
        .iter()
        .map(|c| fixtures().join("fuzz").join(&c.path))
        .collect();
    // All in one run: one failing input does not stop the others.
    let o = run(
        bin()
            .args(["transcribe", "--device", "cpu", "--model"])
            .arg(&model)
            .args(&paths),
        Duration::from_secs(120),
    );
    let errors = assert_one_line_errors(&o, cases.len());
    for (case, path) in cases.iter().zip(&paths) {
        let line = errors
            .iter()
            .find(|l| l.starts_with(&format!("error: {}:", path.display())))
            .unwrap_or_else(|| panic!("no error line for {}: {errors:?}", case.path));
        assert!(line.contains(&case.needle), "{}: {line}", case.path);
    }
}

fn put(dir: &Path, name: &str, data: &[u8]) {
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    if !data.is_empty() {
        std::fs::write(p, data).unwrap();
    }
}

fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out.resize(n, &[]);
    out
}

/// The model directory a model fixture describes (around the small fixture
/// model of the fuzz targets).
fn model_from_fixture(case: &Case) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(fixtures().join("fuzz").join(&case.path)).unwrap();
    if case.path.starts_with("hf_checkpoint/") {
        let p = parts(&data, 4);
        for (name, part) in [
            ("config.json", p[0]),
            ("model.safetensors", p[1]),
            ("generation_config.json", p[2]),
            ("tokenizer.json", p[3]),
        ] {
            put(dir.path(), name, part);
        }
        return dir;
    }
    for name in [
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
        "config.json",
    ] {
        std::fs::copy(
            fixtures().join("fuzz/tiny-ct2").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    if case.path.starts_with("model_bin/") {
        put(dir.path(), "model.bin", &data);
    } else {
        let p = parts(&data, 3);
        put(dir.path(), "config.json", p[0]);
        put(dir.path(), "vocabulary.txt", &[]);
        match p[1].split_first() {
            Some((b'j', rest)) => put(dir.path(), "vocabulary.json", rest),
            Some((_, rest)) => put(dir.path(), "vocabulary.txt", rest),
            None => {}
        }
        put(dir.path(), "tokenizer.json", p[2]);
    }
    dir
}

#[test]
fn model_regressions_are_one_line_errors_naming_the_model() {
    let jfk = fixtures().join("data/jfk/jfk.wav");
    for prefix in ["model_bin/", "model_dir/", "hf_checkpoint/"] {
        for case in manifest(prefix) {
            let dir = model_from_fixture(&case);
            let o = run(
                bin()
                    .args(["transcribe", "--device", "cpu", "--model"])
                    .arg(dir.path())
                    .arg(&jfk),
                Duration::from_secs(30),
            );
            let errors = assert_one_line_errors(&o, 1);
            assert!(
                errors[0].starts_with(&format!("error: {}/", dir.path().display()))
                    && errors[0].contains(&case.needle),
                "{}: {}",
                case.path,
                errors[0]
            );
        }
    }
}

/// A writable copy of an installed model (the weights file copied, the
/// others linked).
fn copy_model(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dir.path().join(entry.file_name());
        if entry.file_name() == "model.bin" {
            std::fs::copy(entry.path(), to).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), to).unwrap();
        }
    }
    dir
}

/// Offset of the payload of variable `name` in a version-6 model.bin.
fn payload_of(bin: &[u8], name: &str) -> (usize, usize) {
    let mut key = (name.len() as u16 + 1).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    let at = bin.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let rank = bin[at] as usize;
    let dtype_at = at + 1 + 4 * rank;
    let size = u32::from_le_bytes(bin[dtype_at + 1..dtype_at + 5].try_into().unwrap()) as usize;
    (dtype_at + 5, size)
}

#[test]
fn mutated_real_models_fail_at_load_in_one_line() {
    let Some(tiny) = model_dir("tiny.en") else {
        return;
    };
    let jfk = fixtures().join("data/jfk/jfk.wav");
    let transcribe = |dir: &Path, extra: &[&str]| {
        run(
            bin()
                .args(["transcribe", "--device", "cpu", "--model"])
                .arg(dir)
                .arg(&jfk)
                .args(extra),
            Duration::from_secs(60),
        )
    };

    // The hang of the issue: decoder/layer_norm/gamma all NaN, with
    // --word-timestamps. Now refused at load, naming the variable.
    let m = copy_model(&tiny);
    let mut bin_bytes = std::fs::read(m.path().join("model.bin")).unwrap();
    let (at, len) = payload_of(&bin_bytes, "decoder/layer_norm/gamma");
    for b in bin_bytes[at..at + len].chunks_mut(2) {
        b.copy_from_slice(&half::f16::NAN.to_bits().to_le_bytes());
    }
    std::fs::write(m.path().join("model.bin"), &bin_bytes).unwrap();
    let e = assert_one_line_errors(&transcribe(m.path(), &["--word-timestamps"]), 1);
    assert!(
        e[0].contains("\"decoder/layer_norm/gamma\" holds NaN"),
        "{}",
        e[0]
    );

    // The garbage of the issue: a corrupted spec-name length prints binary.
    let m = copy_model(&tiny);
    let mut b = std::fs::read(m.path().join("model.bin")).unwrap();
    b[4..6].copy_from_slice(&60_000u16.to_le_bytes());
    std::fs::write(m.path().join("model.bin"), &b).unwrap();
    let e = assert_one_line_errors(&transcribe(m.path(), &[]), 1);
    assert!(e[0].len() < 400 && e[0].contains("model.bin"), "{}", e[0]);

    // <|notimestamps|> at id 0 (the decoder's wrapping subtraction).
    let m = copy_model(&tiny);
    let vocab_path = m.path().join("vocabulary.txt");
    let mut vocab: Vec<String> = std::fs::read_to_string(&vocab_path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let i = vocab.iter().position(|t| t == "<|notimestamps|>").unwrap();
    vocab.swap(0, i);
    std::fs::remove_file(&vocab_path).unwrap();
    std::fs::write(&vocab_path, vocab.join("\n") + "\n").unwrap();
    let e = assert_one_line_errors(&transcribe(m.path(), &[]), 1);
    assert!(
        e[0].contains("vocabulary.txt") && e[0].contains("<|notimestamps|>"),
        "{}",
        e[0]
    );

    // An alignment head outside the decoder: refused at load, naming
    // config.json (it used to fail during --word-timestamps, naming the audio).
    let m = copy_model(&tiny);
    let cfg_path = m.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["alignment_heads"] = serde_json::json!([[9, 0]]);
    std::fs::remove_file(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let e = assert_one_line_errors(&transcribe(m.path(), &["--word-timestamps"]), 1);
    assert!(
        e[0].contains("config.json") && e[0].contains("[9, 0]"),
        "{}",
        e[0]
    );
}

/// Start `cmd`, wait for the first line on `stdout` (or `stderr`) that
/// satisfies `ready`, send `signal`, and return the child's exit.
fn interrupt(
    cmd: &mut Command,
    from_stderr: bool,
    ready: impl Fn(&str) -> bool,
    signal: &str,
) -> std::process::ExitStatus {
    let mut child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe: Box<dyn std::io::Read + Send> = if from_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = BufReader::new(pipe).lines();
    let t0 = Instant::now();
    loop {
        match lines.next() {
            Some(Ok(l)) if ready(&l) => break,
            Some(Ok(_)) => {}
            _ => panic!("{cmd:?} ended before it was interrupted"),
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
    }
    let ok = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no exit after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn interrupted_transcriptions_leave_no_temporary_files() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    // Four minutes of speech: still running when the first segment is out.
    let long = fixtures().join("data/longform/ljspeech_LJ001_0001-0032.wav");
    let out = tempfile::tempdir().unwrap();
    let start = |signal: &str| {
        interrupt(
            bin()
                .args(["transcribe", "--device", "cpu", "-f", "all", "-o"])
                .arg(out.path())
                .arg("--model")
                .arg(&model)
                .arg(&long),
            false,
            |l| l.starts_with('['),
            signal,
        )
    };
    for signal in ["INT", "TERM", "HUP"] {
        let status = start(signal);
        assert_eq!(status.code(), Some(130), "SIG{signal}: {status:?}");
        assert!(
            names(out.path()).is_empty(),
            "SIG{signal} left {:?}",
            names(out.path())
        );
    }
    // SIGKILL cannot clean up: the temporary files stay...
    let status = start("KILL");
    assert!(!status.success());
    let left = names(out.path());
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(
        left.iter()
            .all(|n| n.ends_with(".tmp") && n.contains(".vkw")),
        "{left:?}"
    );
    // ...until the next run writing the same outputs removes them (it is
    // interrupted too, and removes its own).
    start("TERM");
    assert!(names(out.path()).is_empty(), "left {:?}", names(out.path()));
}

#[test]
fn interrupted_conversions_leave_no_temporary_directory() {
    // base converted to int8 takes a few seconds: long enough to interrupt
    // after its first progress line.
    let Some(model) = model_dir("base") else {
        return;
    };
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    let start = |signal: &str| {
        interrupt(
            bin()
                .arg("convert")
                .arg(&model)
                .arg(&out)
                .args(["--quantization", "int8"]),
            true,
            |l| l.contains("model.bin:"),
            signal,
        )
    };
    for signal in ["INT", "TERM", "HUP"] {
        let status = start(signal);
        assert_eq!(status.code(), Some(130), "SIG{signal}: {status:?}");
        assert!(
            names(parent.path()).is_empty(),
            "SIG{signal} left {:?}",
            names(parent.path())
        );
    }
    let status = start("KILL");
    assert!(!status.success());
    let left = names(parent.path());
    assert!(
        left.len() == 1 && left[0].starts_with(".out.vkwhisper-convert-"),
        "{left:?}"
    );
    // The next conversion removes the killed one's directory and completes.
    let o = run(
        bin()
            .arg("convert")
            .arg(&model)
            .arg(&out)
            .args(["--quantization", "int8", "-q"]),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(names(parent.path()), ["out"]);
}

#[test]
fn stdin_garbage_is_one_line() {
    let Some(model) = model_dir("tiny.en") else {
        return;
    };
    let mut child = bin()
        .args(["transcribe", "--device", "cpu", "--model"])
        .arg(&model)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&b"RIFF\xff\xff\xff\xffWAVEnot really".repeat(100));
    }
    let o = child.wait_with_output().unwrap();
    let e = assert_one_line_errors(&o, 1);
    assert!(e[0].starts_with("error: stdin: "), "{}", e[0]);
}

#[test]
fn convert_checks_its_input_before_creating_anything() {
    let parent = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("model.bin"), b"not a model").unwrap();
    let out = parent.path().join("a/b/out");
    let o = run(
        bin().arg("convert").arg(src.path()).arg(&out),
        Duration::from_secs(30),
    );
    assert_one_line_errors(&o, 1);
    assert!(
        names(parent.path()).is_empty(),
        "{:?}",
        names(parent.path())
    );
}
