//! `vkwhisper transcribe`: resolve the model, then for each file decode the
//! audio, compute the log-mel, run the decoding loop and stream segments to
//! stdout and to the output sinks.

use crate::args::TranscribeArgs;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vkw_backend::any::AnyBackend;
use vkw_decode::{TranscribeOptions, Transcriber};
use vkw_model::WhisperModel;
use vkw_writers::{
    console_line, open_outputs_with, parse_formats, MultiSink, OutputFormat, Sink, SubtitleOptions,
};

/// Files longer than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_SECONDS: f64 = 60.0;

/// Find the model directory, pulling a known model on first use.
fn model_dir(name: &str) -> Result<PathBuf> {
    let resolved = vkw_hub::resolve(name)?;
    if resolved.installed {
        return Ok(resolved.dir);
    }
    match resolved.spec {
        Some(spec) => {
            eprintln!(
                "vkwhisper: model '{}' is not installed yet; downloading it to {} (once)",
                spec.name,
                resolved.dir.display()
            );
            crate::models::pull_model(spec.name)
        }
        None => Ok(resolved.require_installed()?.to_path_buf()),
    }
}

pub fn run(a: TranscribeArgs) -> Result<ExitCode> {
    let opts = a.options()?;
    let formats = match &a.output_format {
        Some(f) => parse_formats(f)?,
        None => Vec::new(),
    };
    warn_colliding_outputs(&a.files, &a.output_dir, &formats);
    if a.batch_size > 0 && a.hallucination_silence_threshold.is_some() {
        // FW's batched pipeline drops it too (spec §9.3); say so rather than
        // let the flag look effective.
        eprintln!(
            "vkwhisper: warning: --hallucination-silence-threshold has no effect with --batch-size (sequential mode only)"
        );
    }
    let started = Instant::now();
    // An explicit Vulkan request fails before any model download when there
    // is no loader, driver or device.
    vkw_backend::any::check_request(a.device).map_err(anyhow::Error::msg)?;
    let dir = model_dir(&a.model)?;
    let model = Arc::new(WhisperModel::load(&dir)?);
    // `--threads 0` means all cores, which is also CpuBackend's meaning of 0.
    // The backend gets the only reference, so int8 compute can free the
    // float weights it no longer needs; the model is read back from it.
    let opened = AnyBackend::open(model, a.device, a.threads, a.compute_type()?)?;
    // One stderr line saying what `auto` picked (and why, for a fallback).
    if a.device == vkw_backend::any::DeviceRequest::Auto && !a.quiet {
        eprintln!("vkwhisper: device auto: {}", opened.picked);
    }
    let backend = opened.backend;
    if backend.is_gpu() && !a.quiet {
        use vkw_backend::ComputeType as C;
        let ct = a.compute_type()?;
        if !matches!(ct, C::Default | C::Auto | C::Float32 | C::Float16) {
            // The Vulkan kernels compute in float32 on float16/float32 weights; say
            // so rather than let the flag look effective (docs/GPU.md).
            eprintln!(
                "vkwhisper: note: --compute-type {ct} applies to the CPU backend; Vulkan computes in float32 (float16 weights stay float16 where the GPU reads them, int8 weights are dequantised)"
            );
        }
    }
    let model = backend.model().clone();
    let load_s = started.elapsed().as_secs_f64();
    let transcriber = Transcriber::new(&backend, &model);
    let mut failed = 0usize;
    let mut audio_s = 0.0;
    let work = Instant::now();
    for file in &a.files {
        match transcribe_file(&transcriber, &model, file, &opts, &a, &formats) {
            Ok(seconds) => audio_s += seconds,
            Err(e) => {
                failed += 1;
                crate::report_error(&e);
            }
        }
    }
    if a.timings {
        eprintln!(
            "vkwhisper-timings: load_s={load_s:.3} transcribe_s={:.3} audio_s={audio_s:.3}",
            work.elapsed().as_secs_f64()
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Inputs with the same file stem (`talk.wav`, `talk.mp3`) write the same
/// output files; say so before the later one silently replaces the earlier.
fn warn_colliding_outputs(files: &[PathBuf], dir: &Path, formats: &[OutputFormat]) {
    let Some(&format) = formats.first() else {
        return;
    };
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for file in files {
        let Ok(out) = vkw_writers::output_path(dir, &output_stem(file), format) else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(o, _)| *o == out) {
            eprintln!(
                "vkwhisper: warning: {} and {} write the same output files ({}); the later one replaces the earlier",
                first.display(),
                file.display(),
                out.with_extension("*").display()
            );
        } else {
            seen.push((out, file));
        }
    }
}

/// The name outputs are derived from (`-` is stdin).
fn output_stem(file: &Path) -> PathBuf {
    if file == Path::new("-") {
        PathBuf::from("stdin")
    } else {
        file.to_path_buf()
    }
}

fn transcribe_file(
    t: &Transcriber<'_, AnyBackend>,
    model: &WhisperModel,
    file: &Path,
    opts: &TranscribeOptions,
    a: &TranscribeArgs,
    formats: &[OutputFormat],
) -> Result<f64> {
    // Every path keeps the PCM in 16 bits (half the memory of f32 on long
    // inputs; the same values, read as v / 32768).
    let samples = vkw_audio::load_audio_s16(file)?;
    let duration = samples.len() as f64 / f64::from(vkw_audio::SAMPLE_RATE);
    // Outputs are opened before decoding so a bad --output-dir fails early;
    // they only appear on disk once complete.
    let subtitles = SubtitleOptions {
        max_line_width: a.max_line_width,
        max_line_count: a.max_line_count,
        highlight_words: a.highlight_words,
    };
    let mut sinks = MultiSink::new(open_outputs_with(
        &a.output_dir,
        &output_stem(file),
        formats,
        &subtitles,
    )?);
    let bar = progress_bar(duration, a.quiet);
    let mut stdout = std::io::stdout().lock();
    let mut sink_error: Option<std::io::Error> = None;
    let mut on_segment = |seg: &vkw_segments::Segment| {
        if !a.quiet {
            let line = console_line(seg);
            match &bar {
                Some(b) => b.suspend(|| writeln!(stdout, "{line}")),
                None => writeln!(stdout, "{line}"),
            }
            .ok();
        }
        if let Some(b) = &bar {
            b.set_position(seg.end.min(duration) as u64);
        }
        if sink_error.is_none() {
            if let Err(e) = sinks.segment(seg) {
                sink_error = Some(e);
            }
        }
    };
    let info = if a.batch_size > 0 && opts.clip_timestamps != [0.0] {
        // FW's pipeline with clip_timestamps: the clips replace the VAD.
        t.transcribe_batched_clips(&samples, a.batch_size, opts, &mut on_segment)
    } else if a.batch_size > 0 {
        // Batched mode otherwise always runs the VAD, as FW's pipeline does (§9.3).
        let vad = crate::vad::model()?;
        let vad_opts = crate::vad::options(a, true)?;
        let filter = vkw_decode::VadFilter {
            model: &vad,
            options: &vad_opts,
        };
        t.transcribe_batched_samples(&samples, filter, a.batch_size, opts, &mut on_segment)
    } else if a.vad_filter {
        // Sequential with faster-whisper's vad_filter (§8.6).
        let vad = crate::vad::model()?;
        let vad_opts = crate::vad::options(a, false)?;
        let filter = vkw_decode::VadFilter {
            model: &vad,
            options: &vad_opts,
        };
        // By value: the speech is concatenated in place (no second copy).
        t.transcribe_samples_s16(samples, Some(filter), opts, &mut on_segment)
    } else {
        // The log-mel one window at a time: a long input never has its
        // whole spectrogram in memory (same values as the whole-input pass).
        let mel = vkw_audio::mel::MelWindows::from_s16(&samples, model.hparams.n_mels);
        t.transcribe_features(&mel, duration, opts, &mut on_segment)
    }
    .with_context(|| file.display().to_string())?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = sink_error {
        return Err(e).context("writing the output files");
    }
    sinks.finish(&info).context("writing the output files")?;
    Ok(duration)
}

fn progress_bar(duration: f64, quiet: bool) -> Option<ProgressBar> {
    if quiet || duration < PROGRESS_MIN_SECONDS || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(duration as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} s  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
