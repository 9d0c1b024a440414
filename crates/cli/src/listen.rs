//! `vkwhisper listen`: live transcription from the microphone, raw PCM on
//! stdin, or a file (in real time, or as fast as possible on a virtual
//! clock). Committed text goes to stdout as it is committed; the tentative
//! tail is shown on the terminal line (stderr, only on a terminal).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{IsTerminal, Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vkwhisper::live::{
    run_virtual, CommitPolicy, ComputeClock, LiveEvent, LiveSink, Stream, StreamOptions,
};
use vkwhisper::output::{open_outputs_with, parse_formats, MultiSink, Sink, SubtitleOptions};
use vkwhisper::{
    ComputeType, DecodeOptions, Device, Engine, EngineConfig, Segment, Task, TranscriptionInfo,
    VadOptions, Word,
};

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// `-` reads raw PCM from stdin (see --format and --rate); without it, the microphone.
    #[arg(value_name = "SOURCE")]
    source: Option<String>,
    /// Transcribe a file as if it were live (as fast as possible on a virtual clock, or with --realtime at its own pace).
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    file: Option<PathBuf>,
    /// With --file: play it at real-time speed.
    #[arg(long, requires = "file")]
    realtime: bool,
    /// With --file on the virtual clock: charge decoding time as elapsed time (wall), as this process's CPU time (cpu: not inflated by other processes' load; use with --threads 1), or not at all (zero: results independent of the machine, for tests).
    #[arg(
        long,
        default_value = "wall",
        requires = "file",
        conflicts_with = "realtime"
    )]
    clock: ComputeClock,
    /// Raw PCM format on stdin.
    #[arg(long, default_value = "s16le", value_parser = ["s16le", "f32le"])]
    format: String,
    /// Sample rate of raw PCM on stdin (mono).
    #[arg(long, default_value_t = 16_000)]
    rate: u32,
    /// Microphone (a PulseAudio/PipeWire source name; see --list-inputs).
    #[arg(long, value_name = "NAME")]
    input: Option<String>,
    /// List the microphones and exit.
    #[arg(long)]
    list_inputs: bool,
    /// One JSON line per event on stdout: {"type":"committed"|"tentative","text","start","end","emitted_at"}.
    #[arg(long)]
    json_events: bool,
    /// Write the final transcript in these formats (txt,srt,vtt,tsv,json,all) at the end (Ctrl-C ends cleanly).
    #[arg(short = 'f', long, value_name = "FORMATS")]
    output_format: Option<String>,
    /// Directory for --output-format files.
    #[arg(short, long, default_value = ".")]
    output_dir: PathBuf,
    /// When words become final: alignatt (attention on the audio's end; lower latency) or local-agreement (two passes agree).
    #[arg(long, default_value = "alignatt")]
    policy: CommitPolicy,
    /// Re-decode after this many seconds of new audio.
    #[arg(long, default_value_t = 1.0)]
    min_chunk: f64,
    /// Speech probability that starts speech.
    #[arg(long, default_value_t = 0.5)]
    vad_threshold: f32,
    /// A pause this long (ms) ends an utterance.
    #[arg(long, default_value_t = 500)]
    vad_min_silence_duration_ms: u32,
    /// Audio kept before speech starts (ms).
    #[arg(long, default_value_t = 300)]
    vad_speech_pad_ms: u32,
    /// Model name or directory.
    #[arg(short, long, default_value = "tiny.en", env = "VKWHISPER_MODEL")]
    model: String,
    /// Device: auto, cpu, vulkan or vulkan:N.
    #[arg(long, default_value = "auto", env = "VKWHISPER_DEVICE")]
    device: Device,
    /// CTranslate2 compute type (auto = the fastest: int8 on most CPUs).
    #[arg(long, default_value = "auto")]
    compute_type: String,
    /// CPU threads (0 = all cores).
    #[arg(short, long, default_value_t = 0)]
    threads: usize,
    /// Language code (multilingual models; default: detected per pass).
    #[arg(short, long)]
    language: Option<String>,
    /// Transcribe or translate.
    #[arg(long, default_value = "transcribe", value_parser = ["transcribe", "translate"])]
    task: String,
    /// Beam size of each pass (2: as early as greedy, nearly beam 5's accuracy; an utterance's
    /// final pass uses at least 5; docs/LIVE.md).
    #[arg(long, default_value_t = 2)]
    beam_size: usize,
}

/// Set by SIGINT/SIGTERM: finish cleanly.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(a: ListenArgs) -> Result<ExitCode> {
    if a.list_inputs {
        return list_inputs();
    }
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    let formats = match &a.output_format {
        Some(f) => parse_formats(f)?,
        None => Vec::new(),
    };
    if a.rate < 1000 || a.rate > 768_000 {
        bail!("--rate {} is outside 1000–768000 Hz", a.rate);
    }
    if let Some(l) = &a.language {
        if !vkwhisper::LANGUAGES.contains(&l.as_str()) {
            bail!("--language '{l}' is not a Whisper language code");
        }
    }
    let ct: ComputeType = a.compute_type.parse().map_err(|_| {
        anyhow::anyhow!(
            "--compute-type '{}' is unknown: use {}",
            a.compute_type,
            ComputeType::NAMES.join(", ")
        )
    })?;
    let config = EngineConfig::default()
        .with_device(a.device)
        .with_threads(a.threads)
        .with_compute_type(ct)
        .with_download_progress(crate::models::report);
    let engine =
        Engine::load(&a.model, &config).map_err(|e| crate::transcribe::cli_error(e, None))?;
    let decoding = DecodeOptions {
        language: a.language.clone(),
        task: if a.task == "translate" {
            Task::Translate
        } else {
            Task::Transcribe
        },
        beam_size: a.beam_size,
        temperatures: vec![0.0],
        ..DecodeOptions::default()
    };
    let mut opts = StreamOptions::default()
        .with_policy(a.policy)
        .with_decoding(decoding);
    opts.min_chunk_s = a.min_chunk;
    opts.clock = a.clock;
    opts.vad = VadOptions {
        threshold: a.vad_threshold,
        min_silence_duration_ms: a.vad_min_silence_duration_ms,
        speech_pad_ms: a.vad_speech_pad_ms,
        ..VadOptions::default()
    };
    let mut stream = engine
        .stream(opts)
        .map_err(|e| crate::transcribe::cli_error(e, None))?;
    let mut out = Output::new(a.json_events);
    let name = match (&a.file, a.source.as_deref()) {
        (Some(f), _) => {
            let audio = decode_f32(f)?;
            if a.realtime {
                feed_realtime(&mut stream, &audio, &mut out)?;
            } else {
                run_virtual(&mut stream, &audio, 0.05, &mut out)
                    .map_err(|e| crate::transcribe::cli_error(e, None))?;
            }
            f.clone()
        }
        (None, Some("-")) => {
            let rx = reader(Box::new(std::io::stdin()), a.format == "f32le");
            feed_channel(&mut stream, rx, a.rate, &mut out)?;
            PathBuf::from("stdin")
        }
        (None, Some(other)) => bail!("'{other}' is not a source: use - for stdin, --file FILE, or nothing for the microphone"),
        (None, None) => {
            let mut child = microphone(a.input.as_deref())?;
            let stdout = child.stdout.take().context("the recorder has no output")?;
            let rx = reader(Box::new(stdout), false);
            let r = feed_channel(&mut stream, rx, 16_000, &mut out);
            let _ = child.kill();
            let _ = child.wait();
            r?;
            PathBuf::from("microphone")
        }
    };
    out.end_line();
    if !formats.is_empty() {
        let mut files = MultiSink::new(open_outputs_with(
            &a.output_dir,
            &name,
            &formats,
            &SubtitleOptions::default(),
        )?);
        for s in &out.segments {
            files.write_segment(s).context("writing the output files")?;
        }
        let info = TranscriptionInfo {
            language: a.language.clone().unwrap_or_else(|| "en".into()),
            language_probability: 1.0,
            duration: stream.clock(),
            duration_after_vad: stream.clock(),
            all_language_probs: None,
        };
        files.finish(&info).context("writing the output files")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A file as 16 kHz f32 samples.
fn decode_f32(path: &std::path::Path) -> Result<Vec<f32>> {
    match vkwhisper::decode_audio(path).map_err(|e| crate::transcribe::cli_error(e, None))? {
        vkwhisper::Audio::S16(s) => Ok(s.iter().map(|&v| f32::from(v) / 32768.0).collect()),
        vkwhisper::Audio::F32(s) => Ok(s.into_owned()),
    }
}

/// Play `audio` at its own pace: what has "arrived" is what the wall clock
/// says; decoding time is real time here.
fn feed_realtime(stream: &mut Stream, audio: &[f32], out: &mut Output) -> Result<()> {
    let t0 = Instant::now();
    let mut fed = 0usize;
    while fed < audio.len() && !STOP.load(Ordering::SeqCst) {
        let avail = ((t0.elapsed().as_secs_f64() * 16_000.0) as usize).min(audio.len());
        if avail > fed {
            stream
                .push(&audio[fed..avail], out)
                .map_err(|e| crate::transcribe::cli_error(e, None))?;
            fed = avail;
        }
        stream
            .poll(out)
            .map_err(|e| crate::transcribe::cli_error(e, None))?;
        std::thread::sleep(Duration::from_millis(20));
    }
    stream
        .finish(out)
        .map_err(|e| crate::transcribe::cli_error(e, None))
}

/// Raw PCM from a reader, as f32 chunks on a channel (a thread reads, so
/// decoding never holds up the audio).
fn reader(mut r: Box<dyn Read + Send>, f32le: bool) -> mpsc::Receiver<Vec<f32>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let width = if f32le { 4 } else { 2 };
        let mut buf = vec![0u8; 4096 * width];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            carry.extend_from_slice(&buf[..n]);
            let whole = carry.len() / width * width;
            let samples: Vec<f32> = carry[..whole]
                .chunks_exact(width)
                .map(|b| {
                    if f32le {
                        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    } else {
                        f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0
                    }
                })
                .collect();
            carry.drain(..whole);
            if tx.send(samples).is_err() {
                break;
            }
        }
    });
    rx
}

/// Push what arrives on `rx` (at `rate` Hz), poll between arrivals, and
/// finish at the end of the input or on Ctrl-C.
fn feed_channel(
    stream: &mut Stream,
    rx: mpsc::Receiver<Vec<f32>>,
    rate: u32,
    out: &mut Output,
) -> Result<()> {
    let mut resampler = if rate == 16_000 {
        None
    } else {
        Some(
            vkwhisper::StreamResampler::new(rate)
                .map_err(|e| anyhow::anyhow!("--rate {rate}: {e}"))?,
        )
    };
    let err = |e| crate::transcribe::cli_error(e, None);
    loop {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                let chunk = match &mut resampler {
                    Some(r) => r
                        .push(&chunk)
                        .map_err(|e| anyhow::anyhow!("resampling: {e}"))?,
                    None => chunk,
                };
                stream.push(&chunk, out).map_err(err)?;
                // Take everything already queued before decoding: a pass
                // always covers all the audio that has arrived.
                while let Ok(more) = rx.try_recv() {
                    let more = match &mut resampler {
                        Some(r) => r
                            .push(&more)
                            .map_err(|e| anyhow::anyhow!("resampling: {e}"))?,
                        None => more,
                    };
                    stream.push(&more, out).map_err(err)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        stream.poll(out).map_err(err)?;
    }
    if let Some(r) = resampler {
        let tail = r.finish().map_err(|e| anyhow::anyhow!("resampling: {e}"))?;
        stream.push(&tail, out).map_err(err)?;
    }
    stream.finish(out).map_err(err)
}

/// The microphone through PulseAudio/PipeWire's recorder (`parec`, or ALSA's
/// `arecord`), 16 kHz mono 16-bit on its stdout.
fn microphone(input: Option<&str>) -> Result<std::process::Child> {
    let mut parec = std::process::Command::new("parec");
    parec.args([
        "--format=s16le",
        "--rate=16000",
        "--channels=1",
        "--latency-msec=50",
    ]);
    if let Some(i) = input {
        parec.arg(format!("--device={i}"));
    }
    match parec.stdout(Stdio::piped()).stderr(Stdio::null()).spawn() {
        Ok(c) => return Ok(c),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("cannot start parec (PulseAudio/PipeWire recorder)")
        }
        Err(_) => {}
    }
    let mut arecord = std::process::Command::new("arecord");
    arecord.args(["-q", "-f", "S16_LE", "-r", "16000", "-c", "1", "-t", "raw"]);
    if let Some(i) = input {
        arecord.args(["-D", i]);
    }
    arecord
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("no microphone recorder: install pulseaudio-utils (parec) or alsa-utils (arecord), or pipe raw PCM into `vkwhisper listen -`")
}

/// `--list-inputs`: PulseAudio/PipeWire sources (or ALSA capture devices).
fn list_inputs() -> Result<ExitCode> {
    if let Ok(o) = std::process::Command::new("pactl")
        .args(["list", "short", "sources"])
        .output()
    {
        if o.status.success() {
            println!("NAME (use with --input)");
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if let Some(name) = line.split('\t').nth(1) {
                    println!("{name}");
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
    let o = std::process::Command::new("arecord")
        .arg("-L")
        .output()
        .context(
            "no audio system found: install pulseaudio-utils (pactl) or alsa-utils (arecord)",
        )?;
    print!("{}", String::from_utf8_lossy(&o.stdout));
    Ok(ExitCode::SUCCESS)
}

/// Where events go: stdout text (or JSON lines), the tentative tail on a
/// terminal, and the utterances for the final files.
struct Output {
    json: bool,
    tty: bool,
    /// Whether tentative text is shown on stderr now.
    shown: bool,
    segments: Vec<Segment>,
    words: Vec<Word>,
}

impl Output {
    fn new(json: bool) -> Self {
        Self {
            json,
            tty: std::io::stderr().is_terminal(),
            shown: false,
            segments: Vec::new(),
            words: Vec::new(),
        }
    }

    fn clear_tentative(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }

    fn end_line(&mut self) {
        self.clear_tentative();
        if !self.json && !self.segments.is_empty() {
            println!();
        }
    }
}

impl LiveSink for Output {
    fn event(&mut self, e: &LiveEvent) -> ControlFlow<()> {
        let mut stdout = std::io::stdout().lock();
        match e {
            LiveEvent::Committed {
                words,
                text,
                emitted_at,
                ..
            } => {
                self.words.extend(words.iter().map(|w| Word {
                    start: w.start,
                    end: w.end,
                    word: w.text.clone(),
                    probability: 1.0,
                }));
                if self.json {
                    let line = serde_json::json!({
                        "type": "committed",
                        "text": text,
                        "start": words.first().map(|w| w.start),
                        "end": words.last().map(|w| w.end),
                        "emitted_at": emitted_at,
                        "words": words,
                    });
                    let _ = writeln!(stdout, "{line}");
                } else {
                    self.clear_tentative();
                    let _ = write!(stdout, "{text}");
                }
            }
            LiveEvent::Tentative {
                text, emitted_at, ..
            } => {
                if self.json {
                    let line = serde_json::json!({"type": "tentative", "text": text, "emitted_at": emitted_at});
                    let _ = writeln!(stdout, "{line}");
                } else if self.tty {
                    let _ = stdout.flush();
                    eprint!("\r\x1b[2K\x1b[2m{}\x1b[0m", text.trim_start());
                    self.shown = !text.is_empty();
                }
            }
            // An utterance that said nothing after all has no segment.
            LiveEvent::UtteranceEnd { text, .. } if text.trim().is_empty() => {}
            LiveEvent::UtteranceEnd {
                text, start, end, ..
            } => {
                let id = self.segments.len() + 1;
                self.segments.push(Segment {
                    id,
                    seek: 0,
                    start: *start,
                    end: *end,
                    text: text.clone(),
                    tokens: Vec::new(),
                    temperature: 0.0,
                    avg_logprob: 0.0,
                    compression_ratio: 0.0,
                    no_speech_prob: 0.0,
                    words: Some(std::mem::take(&mut self.words)),
                    token_logprobs: None,
                });
                if !self.json {
                    self.clear_tentative();
                    let _ = writeln!(stdout);
                }
            }
            LiveEvent::SpeechStarted { .. } | LiveEvent::SpeechStopped { .. } => {}
        }
        let _ = stdout.flush();
        ControlFlow::Continue(())
    }
}
