//! Bring-your-own checkpoint: tiny.en's CTranslate2 weights written as a
//! transformers checkpoint (the inverse mapping of vkw-model's
//! examples/export_hf), transcribed directly, converted back with
//! `vkwhisper convert`, and transcribed again — golden faster-whisper tokens
//! both times; the float16 round trip reproduces the original model.bin.

#[path = "../../model/examples/export_hf/inverse.rs"]
#[allow(dead_code)]
mod inverse;

use inverse::{export_hf, ExportOptions};
use std::path::Path;
use std::process::{Command, Output};
use vkw_model::{ModelBin, ModelFormat, WhisperModel};
use vkw_testkit::{fixtures, model_dir};
use vkwhisper::{Device, Engine, EngineConfig, TranscribeOptions};

/// Golden tokens of jfk/jfk.wav, tiny.en, beam 5, per segment.
fn golden_tokens() -> Vec<Vec<u32>> {
    let path = fixtures().join("golden/tiny.en.float32.beam5.json");
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    g["files"]["jfk/jfk.wav"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

/// Transcribe jfk.wav with the model in `dir` (faster-whisper's defaults).
fn jfk_tokens(dir: &Path) -> (ModelFormat, Vec<Vec<u32>>) {
    let format = WhisperModel::load(dir).unwrap().format;
    let config = EngineConfig::default()
        .with_device(Device::Cpu)
        .with_threads(2)
        .offline();
    let engine = Engine::load(dir, &config).unwrap();
    let audio = vkwhisper::decode_audio(fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mut segs = Vec::new();
    engine
        .transcribe(audio, &TranscribeOptions::default(), &mut segs)
        .unwrap();
    (format, segs.into_iter().map(|s| s.tokens).collect())
}

fn convert(args: &[&str], input: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vkwhisper"))
        .arg("convert")
        .arg(input)
        .arg(output)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn hf_checkpoint_transcribes_and_converts_back_with_golden_tokens() {
    let Some(ct2) = model_dir("tiny.en") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let hf = work.path().join("hf");
    export_hf(
        &ct2,
        &hf,
        &ExportOptions {
            shards: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let golden = golden_tokens();

    // Directly from the transformers directory.
    let (format, tokens) = jfk_tokens(&hf);
    assert_eq!(format, ModelFormat::HuggingFace);
    assert_eq!(tokens, golden);

    // And through the binary: `--model DIR` resolves a transformers directory.
    let o = Command::new(env!("CARGO_BIN_EXE_vkwhisper"))
        .args(["transcribe", "--model"])
        .arg(&hf)
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .env_remove("VKWHISPER_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("ask not what your country can do for you"),
        "{stdout}"
    );

    // Back to CTranslate2 float16: the original model.bin, byte for byte
    // (same variables, order, dtypes, shapes, values and alias).
    let out = work.path().join("ct2");
    let o = convert(&["--quantization", "float16"], &hf, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("148/148 variables"), "progress: {err}");
    assert_eq!(
        std::fs::read(out.join("model.bin")).unwrap(),
        std::fs::read(ct2.join("model.bin")).unwrap()
    );
    let (format, tokens) = jfk_tokens(&out);
    assert_eq!(format, ModelFormat::Ct2);
    assert_eq!(tokens, golden);

    // No temporary directory is left next to the output.
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // An existing output is refused without --force and replaced with it;
    // CT2 → CT2 re-quantises (int8: per-row scales beside every weight).
    let o = convert(&["--quantization", "int8"], &out, &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    let out8 = work.path().join("ct2");
    let o = convert(&["--quantization", "int8", "--force", "-q"], &hf, &out8);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = ModelBin::open(&out8.join("model.bin")).unwrap();
    let w = m.get("decoder/layer_0/ffn/linear_0/weight").unwrap();
    assert_eq!(w.data.dtype(), vkw_model::DType::I8);
    assert!(m.contains("decoder/layer_0/ffn/linear_0/weight_scale"));
    assert_eq!(
        m.get("decoder/layer_0/ffn/linear_0/bias")
            .unwrap()
            .data
            .dtype(),
        vkw_model::DType::F32,
        "int8 keeps the source's other tensors (float32 here)"
    );
    let o = convert(
        &["--quantization", "float16", "-q"],
        &out8,
        &work.path().join("re"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Converting a model onto itself is refused even with --force.
    let o = convert(&["--force"], &out8, &out8);
    assert!(!o.status.success());
    assert!(out8.join("model.bin").is_file());
}
