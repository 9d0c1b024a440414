//! The Vulkan device from the command line: the `devices` listing,
//! `--device` selection and the missing-driver error. (Tokens on Vulkan
//! against the CPU and the golden files: crates/vkwhisper/tests/vulkan.rs.)
//! Runs on Mesa lavapipe in CI; skips locally without a Vulkan device or
//! the model, fails in CI (`CI=true`) for either.

use std::path::PathBuf;
use std::process::Command;
use vkw_testkit::{fixtures, model_dir};
use vkwhisper::devices::{vulkan_adapters, AdapterDesc};

fn adapters() -> Option<Vec<AdapterDesc>> {
    match vulkan_adapters() {
        Ok(list) => Some(list),
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no Vulkan device in CI: {why}"
            );
            eprintln!("skipping: no Vulkan device");
            None
        }
    }
}

fn vulkan_index() -> Option<usize> {
    adapters().and_then(|l| l.first().map(|a| a.index))
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
    let list = adapters().unwrap_or_default();
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
    // int8 runs on Vulkan too (int8 weights with row scales in the GPU's
    // matmuls): no note that it is the CPU backend's.
    assert!(!err.contains("applies to the CPU backend"), "{err}");
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
