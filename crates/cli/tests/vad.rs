//! `vkwhisper transcribe --vad-filter` end to end: silence is skipped and
//! times stay in the original audio; bad `--vad-*` values are one clear line.

use std::path::Path;
use std::process::Command;
use vkw_testkit::{fixtures, model_dir, vad_model};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE");
    c
}

/// A 16 kHz mono 16-bit WAV of `samples`.
fn write_wav(path: &Path, samples: &[f32]) {
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    let mut w = Vec::with_capacity(44 + data.len());
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&16_000u32.to_le_bytes());
    w.extend_from_slice(&32_000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    std::fs::write(path, w).expect("write wav");
}

#[test]
fn bad_vad_values_fail_early_with_one_line() {
    let o = bin()
        .args([
            "transcribe",
            "--vad-filter",
            "--vad-threshold",
            "1.5",
            "x.wav",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("threshold") && lines[0].contains("--vad-"),
        "{err}"
    );
}

#[test]
fn vad_filter_skips_silence_and_keeps_original_times() {
    let (Some(model), Some(_)) = (model_dir("tiny.en"), vad_model()) else {
        return;
    };
    let vkwhisper::Audio::S16(jfk) =
        vkwhisper::decode_audio(fixtures().join("data/jfk/jfk.wav")).expect("jfk")
    else {
        panic!("decode_audio gives 16-bit samples");
    };
    let jfk: Vec<f32> = jfk.iter().map(|&v| f32::from(v) / 32768.0).collect();
    // 7 s of silence, jfk, 4 s of silence.
    let mut samples = vec![0f32; 7 * 16_000];
    samples.extend_from_slice(&jfk);
    samples.extend(std::iter::repeat_n(0f32, 4 * 16_000));
    let dir = tempfile::tempdir().expect("tmp");
    let wav = dir.path().join("padded.wav");
    write_wav(&wav, &samples);
    let o = bin()
        .args(["transcribe", "--vad-filter", "-f", "json", "-q", "--model"])
        .arg(&model)
        .arg("-o")
        .arg(dir.path())
        .arg(&wav)
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("padded.json")).expect("json output"),
    )
    .expect("json");
    let segs = json["segments"].as_array().expect("segments");
    let text: String = segs.iter().filter_map(|s| s["text"].as_str()).collect();
    assert!(text.contains("ask not what your country"), "{text}");
    let start = segs[0]["start"].as_f64().expect("start");
    let end = segs[segs.len() - 1]["end"].as_f64().expect("end");
    // jfk's speech begins about 0.3 s in (7.3 s here) and the VAD pads by
    // 0.4 s; without the filter the first window would start at 0.
    assert!(
        (6.5..7.6).contains(&start),
        "first segment starts at {start}"
    );
    assert!(
        end > 7.0 + 10.0 && end <= 22.0 + 0.01,
        "last segment ends at {end}"
    );
    assert!((json["duration"].as_f64().expect("duration") - 22.0).abs() < 1e-6);
}
