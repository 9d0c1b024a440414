//! The regression inputs of the fuzzing work (`tests/fixtures/fuzz`, listed
//! with their expected errors in `MANIFEST.tsv`), replayed through
//! `WhisperModel::load`: each must end in its typed error, in one line that
//! names the model's file, quickly (the huge sizes must be refused before
//! anything is allocated from them).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vkw_model::{ModelError, WhisperModel};
use vkw_testkit::fixtures;

/// Separates the files of one multi-file input (fuzz/fuzz_targets/common.rs).
const SEP: &[u8] = b"\n\xff\xfeVKW-PART\xfe\xff\n";

struct Case {
    path: String,
    variant: String,
    needle: String,
}

fn manifest(prefix: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("fuzz/MANIFEST.tsv")).unwrap();
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                path: f[0].to_string(),
                variant: f[1].to_string(),
                needle: f[2].to_string(),
            }
        })
        .filter(|c| c.path.starts_with(prefix))
        .collect();
    assert!(!cases.is_empty(), "no {prefix} cases in MANIFEST.tsv");
    cases
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

fn put(dir: &Path, name: &str, data: &[u8]) {
    if !data.is_empty() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// The fixture model directory of the fuzz targets, copied to a new
/// temporary directory.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
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
    dir
}

/// Load `dir` and check the error against the case.
fn expect(case: &Case, dir: &Path) {
    let t0 = Instant::now();
    let err = match WhisperModel::load(dir) {
        Ok(_) => panic!("{}: loaded without an error", case.path),
        Err(e) => e,
    };
    let elapsed = t0.elapsed();
    let msg = err.to_string();
    println!("{}: {msg}", case.path);
    assert!(
        format!("{err:?}").starts_with(&case.variant),
        "{}: expected {}, got {err:?}",
        case.path,
        case.variant
    );
    assert!(
        !msg.chars().any(char::is_control) && msg.len() < 600,
        "{}: not one short line: {msg:?}",
        case.path
    );
    assert!(msg.contains(&case.needle), "{}: {msg}", case.path);
    assert!(
        msg.starts_with(&dir.display().to_string()),
        "{}: the message does not name the model's file: {msg}",
        case.path
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "{}: {elapsed:?}",
        case.path
    );
}

fn read(case: &Case) -> Vec<u8> {
    std::fs::read(fixtures().join("fuzz").join(&case.path)).unwrap()
}

#[test]
fn fixture_model_loads_with_the_documented_layout() {
    let dir = tiny_copy();
    let m = WhisperModel::load(dir.path()).unwrap();
    let sp = m.tokenizer.special;
    assert_eq!(
        (sp.eot, sp.sot, sp.no_timestamps, sp.timestamp_end),
        (10, 11, 19, 29)
    );
    assert_eq!(sp.num_languages, 2);
    assert_eq!(m.alignment_heads(), vec![(0, 0), (0, 1)]);
}

#[test]
fn model_bin_regressions() {
    for case in manifest("model_bin/") {
        let dir = tiny_copy();
        std::fs::write(dir.path().join("model.bin"), read(&case)).unwrap();
        expect(&case, dir.path());
    }
}

#[test]
fn model_dir_regressions() {
    for case in manifest("model_dir/") {
        let data = read(&case);
        let p = parts(&data, 3);
        let dir = tiny_copy();
        for name in ["config.json", "vocabulary.txt"] {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        put(dir.path(), "config.json", p[0]);
        match p[1].split_first() {
            Some((b'j', rest)) => put(dir.path(), "vocabulary.json", rest),
            Some((_, rest)) => put(dir.path(), "vocabulary.txt", rest),
            None => {}
        }
        put(dir.path(), "tokenizer.json", p[2]);
        expect(&case, dir.path());
    }
}

#[test]
fn hf_checkpoint_regressions() {
    for case in manifest("hf_checkpoint/") {
        let data = read(&case);
        let p = parts(&data, 4);
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "config.json", p[0]);
        put(dir.path(), "model.safetensors", p[1]);
        put(dir.path(), "generation_config.json", p[2]);
        put(dir.path(), "tokenizer.json", p[3]);
        expect(&case, dir.path());
    }
}

#[test]
fn non_finite_weights_are_named_at_load() {
    // The NaN model of the issue, with the name of the variable.
    let case = &manifest("model_bin/nan")[0];
    let dir = tiny_copy();
    std::fs::write(dir.path().join("model.bin"), read(case)).unwrap();
    match WhisperModel::load(dir.path()) {
        Err(ModelError::NonFinite { name, what, .. }) => {
            assert_eq!((name.as_str(), what), ("decoder/layer_norm/gamma", "NaN"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_fixture_is_listed_in_the_manifest() {
    let listed: Vec<PathBuf> = [
        "audio/",
        "model_bin/",
        "model_dir/",
        "hf_checkpoint/",
        "vad_onnx/",
    ]
    .iter()
    .flat_map(|p| manifest(p))
    .map(|c| PathBuf::from(c.path))
    .collect();
    for kind in [
        "audio",
        "model_bin",
        "model_dir",
        "hf_checkpoint",
        "vad_onnx",
    ] {
        for entry in std::fs::read_dir(fixtures().join("fuzz").join(kind)).unwrap() {
            let rel = Path::new(kind).join(entry.unwrap().file_name());
            assert!(
                listed.contains(&rel),
                "{} is not in MANIFEST.tsv",
                rel.display()
            );
        }
    }
}
