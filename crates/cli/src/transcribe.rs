//! `vkwhisper transcribe`: load the engine once, then for each file decode
//! the audio and stream its transcription to stdout and the output files.

use crate::args::{with_flag_names, TranscribeArgs};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use vkwhisper::output::{
    console_line, open_outputs_with, parse_formats, MultiSink, OutputFormat, Sink, SubtitleOptions,
};
use vkwhisper::{
    ControlFlow, Device, Engine, EngineConfig, Error, ErrorKind, Progress, Segment, SegmentSink,
    TranscribeOptions,
};

/// Files longer than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_SECONDS: f64 = 60.0;

/// Say on stderr that a named model is about to be downloaded (once).
fn announce_download(name: &str) {
    if let Ok(r) = vkwhisper::models::resolve(name) {
        if let (false, Some(spec)) = (r.installed, r.spec) {
            eprintln!(
                "vkwhisper: model '{}' is not installed yet; downloading it to {} (once)",
                spec.name,
                r.dir.display()
            );
        }
    }
}

/// The engine the flags describe (downloading the model if needed).
pub fn load_engine(a: &TranscribeArgs) -> Result<Engine> {
    announce_download(&a.model);
    let config = EngineConfig::default()
        .with_device(a.device)
        .with_threads(a.threads)
        .with_compute_type(a.compute_type()?)
        .with_download_progress(crate::models::report);
    Engine::load(&a.model, &config).map_err(|e| cli_error(e, None))
}

/// A library error with this command's hints: flag names for options, and
/// the flag that avoids a device problem.
pub fn cli_error(e: Error, file: Option<&Path>) -> anyhow::Error {
    let mut msg = e.to_string();
    match e.kind() {
        ErrorKind::InvalidOption => msg = with_flag_names(&msg),
        ErrorKind::OutOfMemory => msg.push_str("; try a smaller model or --device cpu"),
        ErrorKind::Unsupported if matches!(e, Error::Backend(_)) => {
            msg.push_str(" (or use --device cpu)")
        }
        _ => {}
    }
    match file {
        Some(f) if !matches!(e, Error::Audio(_)) => anyhow::anyhow!("{}: {msg}", f.display()),
        _ => anyhow::anyhow!(msg),
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
    let engine = load_engine(&a)?;
    let info = engine.info();
    // One stderr line saying what `auto` picked (and why, for a fallback),
    // or which GPU and compute type an explicit Vulkan request got.
    if a.device != Device::Cpu && !a.quiet {
        let asked = if a.device == Device::Auto {
            "auto"
        } else {
            "vulkan"
        };
        eprintln!("vkwhisper: device {asked}: {}", info.device);
    }
    if !info.multilingual && !a.quiet {
        warn_english_only(&a);
    }
    let load_s = started.elapsed().as_secs_f64();
    let mut failed = 0usize;
    let mut audio_s = 0.0;
    let work = Instant::now();
    for file in &a.files {
        match transcribe_file(&engine, file, &opts, &a, &formats) {
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
        if let Some(steps) = engine.step_stats() {
            eprintln!("vkwhisper-steps: {steps}");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An English-only model transcribes English whatever `--language` and
/// `--task` say (faster-whisper only logs it, spec §6.13); say so on stderr
/// rather than let the flags look effective.
fn warn_english_only(a: &TranscribeArgs) {
    if let Some(lang) = a.language.as_deref().filter(|l| *l != "en") {
        eprintln!(
            "vkwhisper: warning: the model is English-only, so --language {lang} has no effect (it transcribes English; use a multilingual model such as base)"
        );
    }
    if a.task == "translate" {
        eprintln!(
            "vkwhisper: warning: the model is English-only, so --task translate has no effect (it transcribes; use a multilingual model such as base)"
        );
    }
}

/// Inputs with the same file stem (`talk.wav`, `talk.mp3`) write the same
/// output files; say so before the later one silently replaces the earlier.
fn warn_colliding_outputs(files: &[PathBuf], dir: &Path, formats: &[OutputFormat]) {
    let Some(&format) = formats.first() else {
        return;
    };
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for file in files {
        let Ok(out) = vkwhisper::output::output_path(dir, &output_stem(file), format) else {
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

/// Where a file's transcription goes: stdout lines, the progress bar, and
/// the output files (whose write errors stop decoding).
struct Console<'a> {
    quiet: bool,
    bar: Option<ProgressBar>,
    stdout: StdoutLock<'a>,
    files: MultiSink,
}

impl SegmentSink for Console<'_> {
    fn segment(&mut self, seg: &Segment) -> ControlFlow<()> {
        if !self.quiet {
            let line = console_line(seg);
            let stdout = &mut self.stdout;
            match &self.bar {
                Some(b) => b.suspend(|| writeln!(stdout, "{line}")),
                None => writeln!(stdout, "{line}"),
            }
            .ok();
        }
        self.files.segment(seg)
    }

    fn progress(&mut self, p: Progress) -> ControlFlow<()> {
        if let Some(b) = &self.bar {
            b.set_position(p.done_s as u64);
        }
        ControlFlow::Continue(())
    }
}

fn transcribe_file(
    engine: &Engine,
    file: &Path,
    opts: &TranscribeOptions,
    a: &TranscribeArgs,
    formats: &[OutputFormat],
) -> Result<f64> {
    // 16-bit PCM: half the memory of f32 on long inputs, the same values.
    let audio = vkwhisper::decode_audio(file).map_err(|e| cli_error(e, Some(file)))?;
    let duration = audio.duration();
    // Outputs are opened before decoding so a bad --output-dir fails early;
    // they only appear on disk once complete.
    let subtitles = SubtitleOptions {
        max_line_width: a.max_line_width,
        max_line_count: a.max_line_count,
        highlight_words: a.highlight_words,
    };
    let files = MultiSink::new(open_outputs_with(
        &a.output_dir,
        &output_stem(file),
        formats,
        &subtitles,
    )?);
    let mut out = Console {
        quiet: a.quiet,
        bar: progress_bar(duration, a.quiet),
        stdout: std::io::stdout().lock(),
        files,
    };
    let result = engine.transcribe(audio, opts, &mut out);
    if let Some(b) = out.bar.take() {
        b.finish_and_clear();
    }
    let info = match result {
        Ok(info) => info,
        // Only the output files stop a transcription here.
        Err(Error::Stopped) => {
            let why = out
                .files
                .error()
                .map_or_else(|| "stopped".to_string(), ToString::to_string);
            return Err(anyhow::anyhow!(why)).context("writing the output files");
        }
        Err(e) => return Err(cli_error(e, Some(file))),
    };
    out.files
        .finish(&info)
        .context("writing the output files")?;
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
