//! The window loop every transcription runs, resumable one step at a time.
//!
//! [`Pipeline::new`] does what faster-whisper does before the first window
//! (spec §6.10, §6.13, §8.6, §9.3): the VAD cut or the batched pieces, the
//! log-mel source, the language; [`Pipeline::info`] is then known.
//! [`Pipeline::step`] decodes one window (sequential mode) or one batch of
//! windows (batched mode) and returns its segments, already on the original
//! timeline. Whoever drives the steps — a sink loop, a lazy iterator, a
//! server's scheduler — decides when to stop; [`Request::cancel`] stops a
//! step from another thread within one decoder step.

mod batched;
mod sequential;
mod window;

use crate::language::{detect, LanguageChoice};
use crate::logits::{suppressed_tokens, LogitRules, TimestampRules};
use crate::prompt::encode_context;
use crate::search::Rng;
use crate::{CancelToken, DecodeError, DecodeOptions};
use batched::{clip_pieces, vad_pieces, Batched, CHUNK_SECONDS};
use sequential::Sequential;
use std::sync::Arc;
use vkw_audio::mel::{Features, MelWindows};
use vkw_audio::{Pcm, Samples};
use vkw_backend::Backend;
use vkw_model::WhisperModel;
use vkw_segments::{Progress, Segment, TranscriptionInfo};
use vkw_vad::{SileroVad, SpeechChunk, SpeechTimestampsMap, VadOptions};

/// Frames per 30 s window (`nb_max_frames`).
pub const WINDOW_FRAMES: usize = 3000;

/// The most windows a batched step may decode together.
pub const MAX_BATCH: usize = 256;

/// Samples per second of the decoder's input.
pub(crate) const RATE: f64 = 16_000.0;

/// The Silero VAD and its options, for `vad_filter` and the batched pipeline.
#[derive(Clone)]
pub struct VadFilter {
    /// The loaded Silero VAD v6 network.
    pub model: Arc<SileroVad>,
    /// faster-whisper's `vad_parameters` (batched mode forces
    /// `max_speech_duration_s` to 30 s, as FW does).
    pub options: VadOptions,
}

/// One transcription: the decoding options, the mode, and its cancel token.
#[derive(Clone, Default)]
pub struct Request {
    /// faster-whisper's decoding options.
    pub options: DecodeOptions,
    /// Sequential mode: faster-whisper's `vad_filter` (speech only, applied
    /// with the default `clip_timestamps`). Batched mode: the VAD that cuts
    /// the pieces (required unless `clip_timestamps` is given).
    pub vad: Option<VadFilter>,
    /// `Some(n)`: faster-whisper's `BatchedInferencePipeline` with
    /// `batch_size = n`.
    pub batch_size: Option<usize>,
    /// Stops the transcription from another thread.
    pub cancel: CancelToken,
}

/// What every window of a run shares.
pub(crate) struct Run {
    pub opts: DecodeOptions,
    /// §6.3 rules without timestamp rules.
    pub rules: LogitRules,
    /// The same with §6.5's timestamp rules (sequential mode's
    /// `max_initial_timestamp`).
    pub rules_with_timestamps: LogitRules,
    pub timestamp_rules: TimestampRules,
    /// Encoded hotwords (§6.1), if any.
    pub hotwords: Option<Vec<u32>>,
    /// Encoded prefix of the first window (§6.1), if any.
    pub prefix: Option<Vec<u32>>,
    pub rng: Rng,
    pub cancel: CancelToken,
    /// Concatenated speech → original time, when the VAD cut the input.
    pub map: Option<SpeechTimestampsMap>,
    /// The last segment id given out.
    pub last_id: usize,
}

impl Run {
    fn new(
        model: &WhisperModel,
        opts: DecodeOptions,
        cancel: CancelToken,
    ) -> Result<Self, DecodeError> {
        let tk = &model.tokenizer;
        let sp = tk.special;
        let rules = LogitRules {
            repetition_penalty: opts.repetition_penalty,
            no_repeat_ngram_size: opts.no_repeat_ngram_size,
            suppress: suppressed_tokens(opts.suppress_tokens.as_deref(), &sp, || {
                tk.non_speech_tokens()
            }),
            suppress_begin: if opts.suppress_blank {
                model.config.suppress_ids_begin.clone()
            } else {
                Vec::new()
            },
            timestamps: None,
        };
        // §6.9: max_initial_timestamp_index = round(max_initial_timestamp / 0.02).
        let max_init_index = (opts.max_initial_timestamp / 0.02)
            .round_ties_even()
            .clamp(0.0, f64::from(u32::MAX)) as u32;
        let timestamp_rules = TimestampRules {
            eot: sp.eot,
            no_timestamps: sp.no_timestamps,
            begin: sp.timestamp_begin,
            end: sp.timestamp_end,
            max_initial: sp.timestamp_begin.saturating_add(max_init_index),
        };
        let mut rules_with_timestamps = rules.clone();
        rules_with_timestamps.timestamps = Some(timestamp_rules);
        let nonempty =
            |s: &Option<String>| s.as_deref().filter(|t| !t.is_empty()).map(str::to_string);
        let hotwords = nonempty(&opts.hotwords)
            .map(|h| encode_context(tk, &h))
            .transpose()?;
        let prefix = nonempty(&opts.prefix)
            .map(|p| encode_context(tk, &p))
            .transpose()?;
        Ok(Self {
            rng: Rng::new(opts.seed),
            opts,
            rules,
            rules_with_timestamps,
            timestamp_rules,
            hotwords,
            prefix,
            cancel,
            map: None,
            last_id: 0,
        })
    }

    /// The next segment record of the run: numbered, and on the original
    /// timeline (see [`window::segment`]).
    pub fn segment(
        &mut self,
        s: crate::words::WindowSegment,
        text: String,
        facts: &window::WindowFacts,
        tokenizer: &vkw_model::Tokenizer,
    ) -> Segment {
        self.last_id += 1;
        window::segment(
            self.last_id,
            s,
            text,
            facts,
            &self.opts,
            tokenizer,
            self.map.as_ref(),
        )
    }
}

/// What one step of a mode's window loop gives: the segments of the window
/// (or batch of windows) just decoded, `None` once the input is done.
pub(crate) type Step = Result<Option<Vec<Segment>>, DecodeError>;

/// A mode's window loop: sequential windows, or batches of pieces.
pub(crate) trait Windows {
    /// Decode the next window (or batch); its segments come numbered by the
    /// run and on the original timeline.
    fn step<B: Backend>(&mut self, b: &B, model: &WhisperModel, run: &mut Run) -> Step;

    /// Fraction of the input decoded so far.
    fn fraction(&self) -> f64;
}

/// Sequential or batched.
enum Mode<'a> {
    Sequential(Box<Sequential<'a>>),
    Batched(Box<Batched<'a>>),
}

/// A transcription in progress over `audio` (owned or borrowed for `'a`).
pub struct Pipeline<'a, B: Backend> {
    backend: Arc<B>,
    model: Arc<WhisperModel>,
    run: Run,
    mode: Mode<'a>,
    info: TranscriptionInfo,
    /// The VAD's speech chunks (samples of the input), when the VAD ran.
    speech: Option<Vec<SpeechChunk>>,
    done: bool,
}

impl<'a, B: Backend> Pipeline<'a, B> {
    /// Prepare the transcription of 16 kHz mono `audio`: check the options,
    /// run the VAD or cut the batched pieces, and choose the language (which
    /// may run the encoder on the first windows). No transcript window is
    /// decoded yet.
    pub fn new(
        backend: Arc<B>,
        model: Arc<WhisperModel>,
        audio: Pcm<'a>,
        request: Request,
    ) -> Result<Self, DecodeError> {
        let Request {
            options,
            vad,
            batch_size,
            cancel,
        } = request;
        options.validate()?;
        let n_mels = backend.hparams().n_mels;
        if n_mels != model.hparams.n_mels {
            return Err(DecodeError::InvalidInput(format!(
                "the backend expects {n_mels} mel bins, the model {}",
                model.hparams.n_mels
            )));
        }
        let duration = audio.len() as f64 / RATE;
        let mut run = Run::new(&model, options, cancel)?;
        let b = &*backend;
        let mut speech_chunks = None;
        let (mode, choice, map, duration_after_vad) = match batch_size {
            Some(n) if n == 0 || n > MAX_BATCH => {
                return Err(DecodeError::InvalidOption(format!(
                    "batch_size must be between 1 and {MAX_BATCH}, got {n}"
                )))
            }
            Some(n) => {
                let (pieces, map) = if run.opts.clip_timestamps != [0.0] {
                    (clip_pieces(&run.opts.clip_timestamps, audio.len())?, None)
                } else {
                    let vad = vad.ok_or_else(|| {
                        DecodeError::InvalidOption(
                            "batched transcription needs the Silero VAD model (or clip_timestamps)"
                                .into(),
                        )
                    })?;
                    let mut o = vad.options.clone();
                    o.max_speech_duration_s = CHUNK_SECONDS;
                    let speech = vad
                        .model
                        .speech_timestamps(&audio, &o)
                        .map_err(|e| DecodeError::Vad(e.to_string()))?;
                    let cut = (vad_pieces(&speech), Some(SpeechTimestampsMap::new(&speech)));
                    speech_chunks = Some(speech);
                    cut
                };
                let speech_s: f64 = pieces.iter().map(|p| p.duration).sum();
                // No speech at all: FW has no features and decodes nothing.
                let pieces = if speech_s > 0.0 { pieces } else { Vec::new() };
                let (batched, choice) = Batched::new(b, &model, audio, pieces, n, &run)?;
                (Mode::Batched(Box::new(batched)), choice, map, speech_s)
            }
            None => {
                let cut = match &vad {
                    // FW applies vad_filter only with the default clip_timestamps (§8.6).
                    Some(v) if run.opts.clip_timestamps == [0.0] => Some(
                        v.model
                            .speech_timestamps(&audio, &v.options)
                            .map_err(|e| DecodeError::Vad(e.to_string()))?,
                    ),
                    _ => None,
                };
                let (speech, map, speech_s) = match cut {
                    Some(chunks) => {
                        let ranges: Vec<_> = chunks.iter().map(|c| c.start..c.end).collect();
                        // FW restores times only when there were speech chunks.
                        let map = (!chunks.is_empty()).then(|| SpeechTimestampsMap::new(&chunks));
                        // Owned input is compacted in place (no second copy).
                        let speech = audio.keep_ranges(&ranges);
                        let speech_s = speech.len() as f64 / RATE;
                        speech_chunks = Some(chunks);
                        (speech, map, speech_s)
                    }
                    None => (audio, None, duration),
                };
                // The log-mel of what is transcribed (FW computes its
                // features after the cut), one window at a time.
                let mel = MelWindows::from_pcm(speech, n_mels);
                let (seq, choice) = Sequential::new(b, &model, mel, &run)?;
                (Mode::Sequential(Box::new(seq)), choice, map, speech_s)
            }
        };
        let LanguageChoice {
            language,
            probability,
            all,
        } = choice;
        let info = TranscriptionInfo {
            language,
            language_probability: probability,
            duration,
            duration_after_vad,
            all_language_probs: all,
        };
        run.map = map;
        Ok(Self {
            backend,
            model,
            run,
            mode,
            info,
            speech: speech_chunks,
            done: false,
        })
    }

    /// The speech chunks the VAD found (in samples of the input), when it
    /// ran: faster-whisper's `get_speech_timestamps` result, which its
    /// batched pipeline reports as `clip_timestamps`.
    pub fn speech_chunks(&self) -> Option<&[SpeechChunk]> {
        self.speech.as_deref()
    }

    /// The transcription's facts (language, duration), known before the
    /// first window.
    pub fn info(&self) -> &TranscriptionInfo {
        &self.info
    }

    /// How far decoding has got; ends at the input's duration.
    pub fn progress(&self) -> Progress {
        let total_s = self.info.duration;
        let fraction = if self.done {
            1.0
        } else {
            match &self.mode {
                Mode::Sequential(s) => s.as_ref().fraction(),
                Mode::Batched(b) => b.as_ref().fraction(),
            }
        };
        Progress {
            done_s: (fraction * total_s).min(total_s),
            total_s,
        }
    }

    /// Whether every window has been decoded.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decode the next window (or batch of windows) and return its segments
    /// on the original timeline (possibly none: silence, a skipped
    /// hallucination); `None` once the input is done.
    pub fn step(&mut self) -> Result<Option<Vec<Segment>>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        let (b, model, run) = (&*self.backend, &self.model, &mut self.run);
        let window = match &mut self.mode {
            Mode::Sequential(s) => s.step(b, model, run),
            Mode::Batched(s) => s.step(b, model, run),
        }?;
        self.done = window.is_none();
        Ok(window)
    }
}

/// Language probabilities of one `[n_mels, 3000]` log-mel window, best
/// first (§6.13).
pub(crate) fn detect_mel<B: Backend>(
    backend: &B,
    model: &WhisperModel,
    window_mel: &[f32],
) -> Result<Vec<(String, f32)>, DecodeError> {
    let n_mels = backend.hparams().n_mels;
    if window_mel.len() != n_mels * WINDOW_FRAMES {
        return Err(DecodeError::InvalidInput(format!(
            "a language-detection window is {n_mels}x{WINDOW_FRAMES} values, got {}",
            window_mel.len()
        )));
    }
    let enc = backend.encode(window_mel, 1)?;
    detect(backend, model, &enc, 0)
}

/// The detected language of `audio`, as faster-whisper's
/// `WhisperModel.detect_language(audio, vad_filter, vad_parameters,
/// language_detection_segments, language_detection_threshold)` (§6.13): the
/// log-mel of the first `segments · 30 s` (of the speech, with a VAD) only.
pub fn detect_language<B: Backend>(
    backend: &B,
    model: &WhisperModel,
    audio: Pcm<'_>,
    vad: Option<&VadFilter>,
    segments: usize,
    threshold: f64,
    cancel: &CancelToken,
) -> Result<LanguageOutcome, DecodeError> {
    if !model.tokenizer.special.multilingual {
        return Err(DecodeError::InvalidOption(
            "language detection needs a multilingual model (this one is English-only)".into(),
        ));
    }
    if segments == 0 || segments > 10_000 {
        return Err(DecodeError::InvalidOption(
            "language_detection_segments must be between 1 and 10000".into(),
        ));
    }
    let audio = match vad {
        Some(v) => {
            let chunks = v
                .model
                .speech_timestamps(&audio, &v.options)
                .map_err(|e| DecodeError::Vad(e.to_string()))?;
            let ranges: Vec<_> = chunks.iter().map(|c| c.start..c.end).collect();
            audio.keep_ranges(&ranges)
        }
        None => audio,
    };
    let keep = segments * WINDOW_FRAMES * 160;
    let audio = if audio.len() > keep {
        audio.keep_ranges(std::slice::from_ref(&(0..keep)))
    } else {
        audio
    };
    let mel = MelWindows::from_pcm(audio, backend.hparams().n_mels);
    let opts = DecodeOptions {
        language_detection_segments: segments,
        language_detection_threshold: threshold,
        ..DecodeOptions::default()
    };
    let end = mel.n_frames().min(segments * WINDOW_FRAMES);
    let choice = crate::language::choose_language(
        &model.tokenizer,
        &opts,
        |k| {
            let i = k * WINDOW_FRAMES;
            Ok((i < end).then(|| mel.window(i, WINDOW_FRAMES.min(end - i), WINDOW_FRAMES)))
        },
        |w| {
            cancel.check()?;
            detect_mel(backend, model, w)
        },
    )?;
    Ok(LanguageOutcome {
        language: choice.language,
        probability: choice.probability,
        all: choice.all.unwrap_or_default(),
    })
}

/// The result of [`detect_language`].
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageOutcome {
    /// Language code.
    pub language: String,
    /// Its probability.
    pub probability: f64,
    /// Every language's probability in the last window examined, best first.
    pub all: Vec<(String, f64)>,
}
