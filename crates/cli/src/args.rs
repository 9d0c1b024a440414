//! Flags of `vkwhisper transcribe`, named after faster-whisper's
//! `WhisperModel.transcribe` options in kebab-case, and their mapping onto
//! the library's [`TranscribeOptions`].

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};
use std::path::PathBuf;
use vkwhisper::{
    parse_clip_timestamps, ComputeType, DecodeOptions, Device, Task, TranscribeOptions,
};

/// `--device`: auto, cpu, vulkan or vulkan:N.
fn parse_device(s: &str) -> Result<Device, String> {
    s.parse()
}

/// A library message about an option (faster-whisper's snake_case names,
/// as whole words) with the names spelled as this command's flags.
pub fn with_flag_names(msg: &str) -> String {
    const VAD: [&str; 6] = [
        "threshold",
        "neg_threshold",
        "min_speech_duration_ms",
        "max_speech_duration_s",
        "min_silence_duration_ms",
        "speech_pad_ms",
    ];
    const DECODING: [&str; 25] = [
        "beam_size",
        "best_of",
        "patience",
        "length_penalty",
        "repetition_penalty",
        "no_repeat_ngram_size",
        "compression_ratio_threshold",
        "log_prob_threshold",
        "no_speech_threshold",
        "condition_on_previous_text",
        "prompt_reset_on_temperature",
        "initial_prompt",
        "hotwords",
        "suppress_tokens",
        "without_timestamps",
        "max_initial_timestamp",
        "max_new_tokens",
        "clip_timestamps",
        "language_detection_threshold",
        "language_detection_segments",
        "prepend_punctuations",
        "append_punctuations",
        "hallucination_silence_threshold",
        "batch_size",
        "temperatures",
    ];
    let flag = |word: &str| -> Option<String> {
        if word == "temperatures" {
            Some("--temperature".into())
        } else if DECODING.contains(&word) {
            Some(format!("--{}", word.replace('_', "-")))
        } else if VAD.contains(&word) && word.contains('_') {
            Some(format!("--vad-{}", word.replace('_', "-")))
        } else {
            None
        }
    };
    let mut out = String::with_capacity(msg.len() + 16);
    let mut word = String::new();
    let is_word = |c: char| c.is_ascii_lowercase() || c == '_';
    for c in msg.chars().chain(std::iter::once('\0')) {
        if is_word(c) {
            word.push(c);
            continue;
        }
        match flag(&word) {
            Some(f) => out.push_str(&f),
            None => out.push_str(&word),
        }
        word.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Audio or video files (WAV, FLAC, MP3, Ogg, M4A/AAC, ALAC; others through ffmpeg). `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Model name (tiny.en, base, small, large-v3, ...; pulled on first use) or a model directory (CTranslate2, or a transformers Whisper checkpoint with safetensors).
    #[arg(
        short,
        long,
        default_value = "tiny.en",
        env = "VKWHISPER_MODEL",
        help_heading = "Model and device"
    )]
    pub model: String,

    /// Device to run on: auto (a Vulkan GPU, else the CPU), cpu, vulkan, or vulkan:N (see `vkwhisper devices`).
    #[arg(
        long,
        default_value = "auto",
        env = "VKWHISPER_DEVICE",
        value_parser = parse_device,
        help_heading = "Model and device"
    )]
    pub device: Device,

    /// Compute type, as CTranslate2 names them: default (as faster-whisper's default: float32 compute on the stored weights, the same transcript), auto (fastest: int8 where the CPU has int8 SIMD), int8, int8_float32, int8_float16, int8_bfloat16, float16, bfloat16, float32.
    #[arg(long, default_value = "default", help_heading = "Model and device")]
    pub compute_type: String,

    /// CPU threads (0 = all cores).
    #[arg(short, long, default_value_t = 0, help_heading = "Model and device")]
    pub threads: usize,

    /// Output formats written to --output-dir: txt, srt, vtt, tsv, json, lrc, or all (txt,vtt,srt,tsv,json; comma-separated). Default: stdout only.
    #[arg(short = 'f', long, value_name = "FORMATS", help_heading = "Output")]
    pub output_format: Option<String>,

    /// Directory for the output files (created if needed; files are named after the input).
    #[arg(
        short,
        long,
        value_name = "DIR",
        default_value = ".",
        help_heading = "Output"
    )]
    pub output_dir: PathBuf,

    /// Print no segments to stdout and no progress.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,

    /// Print load and transcription times to stderr (for benchmarks).
    #[arg(long, hide = true)]
    pub timings: bool,

    /// Language code (en, de, fr, ...); detected when omitted (multilingual models).
    #[arg(short, long, help_heading = "Language")]
    pub language: Option<String>,

    /// transcribe, or translate to English (multilingual models).
    #[arg(long, default_value = "transcribe", value_parser = ["transcribe", "translate"], help_heading = "Language")]
    pub task: String,

    /// Beam width (1 = greedy).
    #[arg(long, default_value_t = 5, help_heading = "Decoding")]
    pub beam_size: usize,

    /// Batched mode, as faster-whisper's BatchedInferencePipeline: speech found by the VAD is packed into 30 s pieces and N pieces are decoded together (faster on long audio). Uses the first temperature only, no previous-text conditioning, no timestamps unless --without-timestamps=false. 0 = sequential.
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = "Decoding")]
    pub batch_size: usize,

    /// Samples drawn per fallback temperature.
    #[arg(long, default_value_t = 5, help_heading = "Decoding")]
    pub best_of: usize,

    /// Beam search patience.
    #[arg(long, default_value_t = 1.0, help_heading = "Decoding")]
    pub patience: f32,

    /// Exponent of the length normalisation of beam scores.
    #[arg(long, default_value_t = 1.0, help_heading = "Decoding")]
    pub length_penalty: f32,

    /// Penalty for repeating earlier tokens (1 = off).
    #[arg(long, default_value_t = 1.0, help_heading = "Decoding")]
    pub repetition_penalty: f32,

    /// Forbid repeating n-grams of this size (0 = off).
    #[arg(long, default_value_t = 0, help_heading = "Decoding")]
    pub no_repeat_ngram_size: usize,

    /// Temperatures tried in turn when a window fails the thresholds (comma-separated).
    #[arg(
        long,
        default_value = "0.0,0.2,0.4,0.6,0.8,1.0",
        value_name = "LIST",
        help_heading = "Fallback (retry a window that looks wrong)"
    )]
    pub temperature: String,

    /// Retry at a higher temperature when the text compresses better than this (repetitive). `none` disables.
    #[arg(
        long,
        default_value = "2.4",
        help_heading = "Fallback (retry a window that looks wrong)"
    )]
    pub compression_ratio_threshold: String,

    /// Retry when the average log-probability is below this. `none` disables.
    #[arg(
        long,
        default_value = "-1.0",
        allow_hyphen_values = true,
        help_heading = "Fallback (retry a window that looks wrong)"
    )]
    pub log_prob_threshold: String,

    /// Treat a window as silence when the no-speech probability is above this (and log-prob is low). `none` disables.
    #[arg(
        long,
        default_value = "0.6",
        help_heading = "Fallback (retry a window that looks wrong)"
    )]
    pub no_speech_threshold: String,

    /// Use the previous window's text as prompt (true/false).
    #[arg(long, default_value = "true", action = ArgAction::Set, value_name = "BOOL", help_heading = "Prompting")]
    pub condition_on_previous_text: bool,

    /// Reset the prompt after a window decoded above this temperature.
    #[arg(long, default_value_t = 0.5, help_heading = "Prompting")]
    pub prompt_reset_on_temperature: f64,

    /// Text given to the model as preceding context (names, spelling, style).
    #[arg(long, help_heading = "Prompting")]
    pub initial_prompt: Option<String>,

    /// Text the first window's transcript is forced to start with.
    #[arg(long, help_heading = "Prompting")]
    pub prefix: Option<String>,

    /// Words to bias decoding towards (ignored when --prefix is given).
    #[arg(long, help_heading = "Prompting")]
    pub hotwords: Option<String>,

    /// Suppress a blank or end-of-text first token (true/false).
    #[arg(long, default_value = "true", action = ArgAction::Set, value_name = "BOOL", help_heading = "Decoding")]
    pub suppress_blank: bool,

    /// Token ids to suppress, comma-separated; -1 = non-speech symbols; empty = none.
    #[arg(
        long,
        default_value = "-1",
        allow_hyphen_values = true,
        help_heading = "Decoding"
    )]
    pub suppress_tokens: String,

    /// Decode text only, without timestamp tokens (default: false; true with --batch-size).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL", help_heading = "Decoding")]
    pub without_timestamps: Option<bool>,

    /// Latest time (s) the first timestamp may take.
    #[arg(long, default_value_t = 1.0, help_heading = "Decoding")]
    pub max_initial_timestamp: f64,

    /// Most tokens generated per window.
    #[arg(long, help_heading = "Decoding")]
    pub max_new_tokens: Option<usize>,

    /// Only transcribe these parts: "start,end,start,end,..." in seconds (a missing last end = to the end). With --batch-size the clips replace the VAD, one piece each, in order and not overlapping; a clip over 30 s is split into 30 s pieces.
    #[arg(long, default_value = "0", help_heading = "Decoding")]
    pub clip_timestamps: String,

    /// Detect the language of every window (multilingual models).
    #[arg(long, help_heading = "Language")]
    pub multilingual: bool,

    /// Stop language detection at the first window above this probability.
    #[arg(long, default_value_t = 0.5, help_heading = "Language")]
    pub language_detection_threshold: f64,

    /// Windows language detection may examine.
    #[arg(long, default_value_t = 1, help_heading = "Language")]
    pub language_detection_segments: usize,

    /// Seed of the sampling fallback.
    #[arg(
        long,
        default_value_t = 1234,
        help_heading = "Fallback (retry a window that looks wrong)"
    )]
    pub seed: u64,

    /// Skip non-speech: transcribe only the speech Silero VAD finds, times kept in the original audio (ignored with --clip-timestamps, as in faster-whisper).
    #[arg(long, help_heading = "Voice activity detection")]
    pub vad_filter: bool,

    /// Speech probability at or above which speech starts [default: 0.5].
    #[arg(long, value_name = "P", help_heading = "Voice activity detection")]
    pub vad_threshold: Option<f32>,

    /// Probability below which speech ends [default: threshold - 0.15, at least 0.01].
    #[arg(long, value_name = "P", help_heading = "Voice activity detection")]
    pub vad_neg_threshold: Option<f32>,

    /// Drop speech segments this short [default: 0].
    #[arg(long, value_name = "MS", help_heading = "Voice activity detection")]
    pub vad_min_speech_duration_ms: Option<u32>,

    /// Split longer speech segments [default: inf; 30 with --batch-size].
    #[arg(long, value_name = "S", help_heading = "Voice activity detection")]
    pub vad_max_speech_duration_s: Option<f64>,

    /// Silence that ends a speech segment [default: 2000; 160 with --batch-size and no other --vad-* value].
    #[arg(long, value_name = "MS", help_heading = "Voice activity detection")]
    pub vad_min_silence_duration_ms: Option<u32>,

    /// Padding kept on each side of a speech segment [default: 400].
    #[arg(long, value_name = "MS", help_heading = "Voice activity detection")]
    pub vad_speech_pad_ms: Option<u32>,

    /// Word-level timestamps: words (with probabilities) in the json output, and the srt/vtt line options below.
    #[arg(long, help_heading = "Word timestamps")]
    pub word_timestamps: bool,

    /// With --word-timestamps: punctuation merged into the following word.
    #[arg(
        long,
        default_value = "\"'“¿([{-",
        value_name = "CHARS",
        allow_hyphen_values = true,
        help_heading = "Word timestamps"
    )]
    pub prepend_punctuations: String,

    /// With --word-timestamps: punctuation merged into the previous word.
    #[arg(
        long,
        default_value = "\"'.。,，!！?？:：”)]}、",
        value_name = "CHARS",
        help_heading = "Word timestamps"
    )]
    pub append_punctuations: String,

    /// With --word-timestamps: skip silent periods longer than this (seconds) around likely hallucinations.
    #[arg(long, value_name = "S", help_heading = "Word timestamps")]
    pub hallucination_silence_threshold: Option<f64>,

    /// srt/vtt: break subtitle lines at this many characters (needs --word-timestamps).
    #[arg(long, value_name = "N", help_heading = "Word timestamps")]
    pub max_line_width: Option<usize>,

    /// srt/vtt: at most this many lines per subtitle, with --max-line-width (needs --word-timestamps).
    #[arg(long, value_name = "N", help_heading = "Word timestamps")]
    pub max_line_count: Option<usize>,

    /// srt/vtt: underline each word as it is spoken (needs --word-timestamps).
    #[arg(long, help_heading = "Word timestamps")]
    pub highlight_words: bool,
}

fn opt_f64(name: &str, v: &str) -> Result<Option<f64>> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .with_context(|| format!("--{name}: '{v}' is not a number (or 'none')"))
}

impl TranscribeArgs {
    /// The library options these flags describe: faster-whisper's
    /// `transcribe` defaults, or the batched pipeline's with `--batch-size`,
    /// overridden by the flags given.
    pub fn options(&self) -> Result<TranscribeOptions> {
        let temperatures = self
            .temperature
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .with_context(|| format!("--temperature: '{t}' is not a number"))
            })
            .collect::<Result<Vec<_>>>()?;
        let suppress_tokens = if self.suppress_tokens.trim().is_empty() {
            Some(Vec::new())
        } else {
            Some(
                self.suppress_tokens
                    .split(',')
                    .map(|t| {
                        t.trim()
                            .parse::<i64>()
                            .with_context(|| format!("--suppress-tokens: '{t}' is not a token id"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        let mut opts = if self.batch_size > 0 {
            TranscribeOptions::batched(self.batch_size)
        } else {
            TranscribeOptions::default()
        };
        let o = DecodeOptions {
            language: self.language.clone(),
            task: if self.task == "translate" {
                Task::Translate
            } else {
                Task::Transcribe
            },
            beam_size: self.beam_size,
            best_of: self.best_of,
            patience: self.patience,
            length_penalty: self.length_penalty,
            repetition_penalty: self.repetition_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            temperatures,
            compression_ratio_threshold: opt_f64(
                "compression-ratio-threshold",
                &self.compression_ratio_threshold,
            )?,
            log_prob_threshold: opt_f64("log-prob-threshold", &self.log_prob_threshold)?,
            no_speech_threshold: opt_f64("no-speech-threshold", &self.no_speech_threshold)?,
            condition_on_previous_text: self.condition_on_previous_text,
            prompt_reset_on_temperature: self.prompt_reset_on_temperature,
            initial_prompt: self.initial_prompt.clone(),
            initial_prompt_tokens: None,
            prefix: self.prefix.clone(),
            hotwords: self.hotwords.clone(),
            suppress_blank: self.suppress_blank,
            suppress_tokens,
            without_timestamps: self
                .without_timestamps
                .unwrap_or(opts.decoding.without_timestamps),
            max_initial_timestamp: self.max_initial_timestamp,
            max_new_tokens: self.max_new_tokens,
            clip_timestamps: parse_clip_timestamps(&self.clip_timestamps)?,
            multilingual: self.multilingual,
            language_detection_threshold: self.language_detection_threshold,
            language_detection_segments: self.language_detection_segments,
            seed: self.seed,
            word_timestamps: self.word_timestamps,
            prepend_punctuations: self.prepend_punctuations.clone(),
            append_punctuations: self.append_punctuations.clone(),
            hallucination_silence_threshold: self.hallucination_silence_threshold,
            token_logprobs: false,
        };
        o.validate()
            .map_err(|e| anyhow::anyhow!(with_flag_names(&e.to_string())))?;
        // As openai-whisper's CLI: the subtitle line options work on words.
        if !self.word_timestamps {
            for (set, flag) in [
                (self.max_line_width.is_some(), "--max-line-width"),
                (self.max_line_count.is_some(), "--max-line-count"),
                (self.highlight_words, "--highlight-words"),
            ] {
                if set {
                    bail!("{flag} needs word timings: add --word-timestamps");
                }
            }
        }
        if let Some(lang) = &self.language {
            if !vkwhisper::LANGUAGES.contains(&lang.as_str()) {
                bail!(
                    "--language '{lang}' is not a Whisper language code: use one of {}",
                    vkwhisper::LANGUAGES.join(", ")
                );
            }
        }
        if self.batch_size > 0 && o.clip_timestamps.windows(2).any(|w| w[1] < w[0]) {
            bail!(
                "--clip-timestamps '{}' must be increasing with --batch-size (clips in order, not overlapping)",
                self.clip_timestamps
            );
        }
        self.compute_type()?;
        // Bad --vad-* values fail before any model is loaded.
        opts.vad = crate::vad::options(self)?;
        opts.decoding = o;
        Ok(opts)
    }
}

impl TranscribeArgs {
    /// `--compute-type` parsed (CTranslate2's names; int16 has no CPU kernels).
    pub fn compute_type(&self) -> Result<ComputeType> {
        let ct: ComputeType = self.compute_type.parse().map_err(|_| {
            anyhow::anyhow!(
                "--compute-type '{}' is unknown: use {}",
                self.compute_type,
                ComputeType::NAMES.join(", ")
            )
        })?;
        if ct == ComputeType::Int16 {
            bail!("--compute-type int16 has no kernels in vkwhisper: use int8 or float32");
        }
        Ok(ct)
    }
}
