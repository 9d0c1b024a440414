//! The Vulkan backend end to end: tokens identical to the CPU backend and to
//! faster-whisper's golden files (tiny.en, greedy and beam 5), the
//! `devices` listing, `--device` selection and the missing-driver error.
//! Runs on Mesa lavapipe in CI; skips locally without a Vulkan device or
//! the model, fails in CI (`CI=true`) for either.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::vulkan::{best_adapter, gpu, VulkanBackend};
use vkw_backend::Backend;
use vkw_decode::{TranscribeOptions, Transcriber};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, model_dir};

fn vulkan_index() -> Option<usize> {
    let list = gpu::enumerate();
    match best_adapter(&list) {
        Some(a) => Some(a.index),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no Vulkan device in CI: {}",
                vkw_backend::vulkan::no_device_message()
            );
            eprintln!("skipping: no Vulkan device");
            None
        }
    }
}

fn golden(name: &str) -> serde_json::Value {
    let path = fixtures().join("golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// faster-whisper's exact samples: the golden PCM where the input needed
/// decoding, else the original file.
fn samples(rel: &str) -> Vec<f32> {
    let p = std::path::Path::new(rel);
    let pcm = fixtures()
        .join("golden/pcm")
        .join(p.parent().unwrap())
        .join(format!("{}.wav", p.file_stem().unwrap().to_string_lossy()));
    let path = if pcm.is_file() {
        pcm
    } else {
        fixtures().join("data").join(rel)
    };
    vkw_audio::load_audio(&path).unwrap()
}

fn tokens<B: Backend>(
    b: &B,
    model: &WhisperModel,
    s: &[f32],
    opts: &TranscribeOptions,
) -> Vec<Vec<u32>> {
    let mel = vkw_audio::mel::LogMel::compute(s, model.hparams.n_mels);
    let t = Transcriber::new(b, model);
    let mut segs = Vec::new();
    t.transcribe(
        &mel.data,
        mel.n_mels,
        mel.n_frames,
        s.len() as f64 / 16000.0,
        opts,
        &mut |seg| segs.push(seg.tokens.clone()),
    )
    .unwrap();
    segs
}

fn golden_tokens(g: &serde_json::Value, rel: &str) -> Vec<Vec<u32>> {
    g["files"][rel]["segments"]
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

#[test]
fn vulkan_tokens_match_cpu_and_golden() {
    let Some(index) = vulkan_index() else { return };
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let cpu = CpuBackend::new(model.clone(), 2).unwrap();
    let vk = VulkanBackend::new(model.clone(), index).unwrap();
    let cases = [
        ("tiny.en.float32.greedy.json", 1, "jfk/jfk.wav"),
        ("tiny.en.float32.beam5.json", 5, "jfk/jfk.wav"),
        ("tiny.en.float32.beam5.json", 5, "ljspeech/LJ001-0002.flac"),
        ("tiny.en.float32.greedy.json", 1, "espeak/espeak_03.wav"),
    ];
    for (file, beam, rel) in cases {
        let g = golden(file);
        let opts = TranscribeOptions {
            beam_size: beam,
            ..Default::default()
        };
        let s = samples(rel);
        let t0 = std::time::Instant::now();
        let got = tokens(&vk, &model, &s, &opts);
        eprintln!(
            "{rel} beam {beam}: vulkan {:.1}s",
            t0.elapsed().as_secs_f64()
        );
        let want = golden_tokens(&g, rel);
        assert_eq!(got, want, "{rel} beam {beam}: Vulkan vs golden {file}");
        assert_eq!(
            tokens(&cpu, &model, &s, &opts),
            got,
            "{rel} beam {beam}: CPU vs Vulkan"
        );
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vkwhisper"))
}

#[test]
fn devices_lists_lavapipe_as_cpu_and_marks_auto() {
    if vulkan_index().is_none() {
        return;
    }
    let o = bin().arg("devices").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // One line per adapter with its index, type, backend and features.
    let list = gpu::enumerate();
    for a in &list {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("vulkan:{}", a.index)) && l.contains(&a.name))
            .unwrap_or_else(|| panic!("adapter {} missing from:\n{out}", a.name));
        assert!(line.contains(a.kind.name()), "{line}");
        if a.name.contains("llvmpipe") {
            assert!(
                line.contains(" cpu "),
                "lavapipe should be type cpu: {line}"
            );
        }
    }
    assert!(out.lines().any(|l| l.contains("cpu backend")), "{out}");
    assert_eq!(out.matches("<- auto").count(), 1, "{out}");
}

#[test]
fn missing_vulkan_driver_is_a_clear_error() {
    let o = bin()
        .args(["transcribe", "--device", "vulkan", "--model"])
        .arg(PathBuf::from("/nonexistent-model"))
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("VK_DRIVER_FILES", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no Vulkan driver"), "{err}");
    assert!(err.contains("mesa-vulkan-drivers"), "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    // `auto` falls back to the CPU backend with a one-line notice instead.
    let o = bin()
        .args(["devices"])
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("VK_DRIVER_FILES", "/nonexistent")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.contains("no Vulkan driver"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("cpu backend") && l.contains("<- auto")),
        "{out}"
    );
}

#[test]
fn device_errors_are_one_line() {
    let error_lines = |o: &std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let n = err.lines().filter(|l| l.starts_with("error")).count();
        assert_eq!(n, 1, "{err}");
        err
    };
    let o = bin()
        .args(["transcribe", "--device", "cuda", "/nonexistent.wav"])
        .output()
        .unwrap();
    assert!(error_lines(&o).contains("auto, cpu, vulkan or vulkan:N"));
    if vulkan_index().is_none() {
        return;
    }
    // Device discovery adds no stray `error:` lines to a run failing after
    // it (Mesa's device-select layer prints one per enumeration without a
    // display; vkwhisper disables it).
    if let Some(dir) = model_dir("tiny.en") {
        let o = bin()
            .args(["transcribe", "--model"])
            .arg(&dir)
            .arg("/nonexistent.wav")
            .output()
            .unwrap();
        assert!(error_lines(&o).contains("/nonexistent.wav"));
    }
    // A device index that does not exist fails before the model is loaded.
    let o = bin()
        .args([
            "transcribe",
            "--device",
            "vulkan:99",
            "--model",
            "/nonexistent-model",
        ])
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .output()
        .unwrap();
    assert!(error_lines(&o).contains("there is no Vulkan device 99"));
}

#[test]
fn device_vulkan_transcribes_and_auto_says_what_it_picked() {
    if vulkan_index().is_none() {
        return;
    }
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let o = bin()
        .args([
            "transcribe",
            "--device",
            "vulkan",
            "--beam-size",
            "1",
            "--compute-type",
            "int8",
            "--model",
        ])
        .arg(&dir)
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("ask not what your country can do for you"),
        "{out}"
    );
    // int8 compute is the CPU backend's: Vulkan says what it does instead.
    assert!(
        err.contains("--compute-type int8 applies to the CPU backend"),
        "{err}"
    );
    // auto on a machine whose only Vulkan device is software picks the CPU
    // backend; either way it says so on one stderr line.
    let o = bin()
        .args([
            "transcribe",
            "--device",
            "auto",
            "--max-new-tokens",
            "1",
            "--model",
        ])
        .arg(&dir)
        .arg(fixtures().join("data/jfk/jfk.wav"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("device auto:")).count(),
        1,
        "{err}"
    );
}
