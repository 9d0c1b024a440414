//! The window loop (faster-whisper `transcribe` / `generate_segments`,
//! spec §6.10–§6.13).

use crate::fallback::{generate_with_fallback, WindowResult};
use crate::greedy::Rng;
use crate::language::{choose, detect};
use crate::logits::{suppressed_tokens, LogitRules, TimestampRules};
use crate::options::{clip_frames, TranscribeOptions};
use crate::prompt::{build_prompt, encode_context, PromptParts, MAX_LENGTH};
use crate::words::{
    add_word_timestamps, adjust_window, find_alignment, AlignInput, WindowOutcome, WindowPlace,
    WindowSegment,
};
use crate::DecodeError;
use vkw_audio::mel::{Features, MelSlice};
use vkw_backend::Backend;
use vkw_model::WhisperModel;
use vkw_segments::{split_by_timestamps, Segment, TranscriptionInfo};

/// Language, its probability, and all probabilities when detected.
type LanguageChoice = (String, f64, Option<Vec<(String, f64)>>);

/// Frames per 30 s window (`nb_max_frames`).
pub const WINDOW_FRAMES: usize = 3000;

/// Runs faster-whisper's sequential transcription on a [`Backend`].
pub struct Transcriber<'a, B: Backend> {
    pub(crate) backend: &'a B,
    pub(crate) model: &'a WhisperModel,
}

/// `features[:, start..start+len]` as a zero-padded `[n_mels, 3000]` window
/// (spec §4.3: padding is 0.0 in the normalised log-mel domain). Windows are
/// taken one at a time, so a [`MelWindows`](vkw_audio::mel::MelWindows)
/// source computes only the frames in use (bounded memory on long inputs).
fn window_mel(features: &dyn Features, start: usize, len: usize) -> Vec<f32> {
    features.window(start, len.min(WINDOW_FRAMES), WINDOW_FRAMES)
}

impl<'a, B: Backend> Transcriber<'a, B> {
    /// A transcriber decoding with `backend` and `model`'s tokenizer and config.
    pub fn new(backend: &'a B, model: &'a WhisperModel) -> Self {
        Self { backend, model }
    }

    /// Language probabilities of one `[n_mels, 3000]` window, best first (§6.13).
    pub fn detect_language(&self, window_mel: &[f32]) -> Result<Vec<(String, f32)>, DecodeError> {
        let n_mels = self.backend.hparams().n_mels;
        if window_mel.len() != n_mels * WINDOW_FRAMES {
            return Err(DecodeError::InvalidInput(format!(
                "a language-detection window is {n_mels}x{WINDOW_FRAMES} values, got {}",
                window_mel.len()
            )));
        }
        let enc = self.backend.encode(window_mel, 1)?;
        detect(self.backend, self.model, &enc, 0)
    }

    /// FW's language choice at the start of `transcribe` (§6.13).
    fn choose_language(
        &self,
        features: &dyn Features,
        opts: &TranscribeOptions,
    ) -> Result<LanguageChoice, DecodeError> {
        let tk = &self.model.tokenizer;
        if let Some(lang) = &opts.language {
            if !tk.special.multilingual {
                // FW replaces any language by "en" on English-only models.
                return Ok(("en".into(), 1.0, None));
            }
            if tk.language_token(lang).is_none() {
                return Err(DecodeError::InvalidOption(format!(
                    "unknown language '{lang}'"
                )));
            }
            return Ok((lang.clone(), 1.0, None));
        }
        if !tk.special.multilingual {
            return Ok(("en".into(), 1.0, None));
        }
        // Start at the first clip start if it lies inside the content.
        let n_frames = features.n_frames();
        let content_frames = n_frames.saturating_sub(1);
        let first = opts.clip_timestamps.first().copied().unwrap_or(0.0) * 100.0;
        let start = if first < content_frames as f64 {
            first as usize
        } else {
            0
        };
        let end = n_frames.min(start + WINDOW_FRAMES * opts.language_detection_segments.max(1));
        let mut windows = Vec::new();
        let mut i = start;
        while i < end {
            let len = WINDOW_FRAMES.min(end - i);
            let mel = window_mel(features, i, len);
            let probs = self.detect_language(&mel)?;
            let stop = probs
                .first()
                .is_some_and(|(_, p)| f64::from(*p) > opts.language_detection_threshold);
            windows.push(probs);
            if stop {
                break;
            }
            i += WINDOW_FRAMES;
        }
        let d = choose(windows, opts.language_detection_threshold).ok_or_else(|| {
            DecodeError::InvalidInput("no audio to detect the language from".into())
        })?;
        let all = d.all.into_iter().map(|(l, p)| (l, f64::from(p))).collect();
        Ok((d.language, f64::from(d.probability), Some(all)))
    }

    /// Transcribe a whole input. `features` is its log-mel `[n_mels, n_frames]`
    /// (row-major, `n_frames = samples / 160 + 1`), `duration` its length in
    /// seconds. Segments are passed to `on_segment` as each window finishes.
    pub fn transcribe(
        &self,
        features: &[f32],
        n_mels: usize,
        n_frames: usize,
        duration: f64,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        if features.len() != n_mels * n_frames {
            return Err(DecodeError::InvalidInput(format!(
                "features hold {} values, expected {n_mels}x{n_frames}",
                features.len()
            )));
        }
        let mel = MelSlice {
            data: features,
            n_mels,
            n_frames,
        };
        self.transcribe_features(&mel, duration, opts, on_segment)
    }

    /// [`Transcriber::transcribe`] over any [`Features`] source: with
    /// [`MelWindows`](vkw_audio::mel::MelWindows) the log-mel is computed one
    /// window at a time instead of for the whole input (same values).
    pub fn transcribe_features(
        &self,
        features: &dyn Features,
        duration: f64,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        opts.validate()?;
        let (n_mels, n_frames) = (features.n_mels(), features.n_frames());
        let hp = self.backend.hparams();
        if n_mels != hp.n_mels {
            return Err(DecodeError::InvalidInput(format!(
                "the model expects {} mel bins, got {n_mels}",
                hp.n_mels
            )));
        }
        let tk = &self.model.tokenizer;
        let sp = tk.special;
        let (language, language_probability, all_language_probs) =
            self.choose_language(features, opts)?;
        let info = TranscriptionInfo {
            language: language.clone(),
            language_probability,
            duration,
            duration_after_vad: duration,
            all_language_probs,
        };

        let multilingual_per_window = opts.multilingual && sp.multilingual;
        let mut window_language = language;
        let rules_base = LogitRules {
            repetition_penalty: opts.repetition_penalty,
            no_repeat_ngram_size: opts.no_repeat_ngram_size,
            suppress: suppressed_tokens(opts.suppress_tokens.as_deref(), &sp, || {
                tk.non_speech_tokens()
            }),
            suppress_begin: if opts.suppress_blank {
                self.model.config.suppress_ids_begin.clone()
            } else {
                Vec::new()
            },
            timestamps: None,
        };
        // §6.9: max_initial_timestamp_index = round(max_initial_timestamp / 0.02).
        let max_init_index = (opts.max_initial_timestamp / 0.02)
            .round_ties_even()
            .max(0.0) as u32;
        let ts_rules = TimestampRules {
            eot: sp.eot,
            no_timestamps: sp.no_timestamps,
            begin: sp.timestamp_begin,
            end: sp.timestamp_end,
            max_initial: sp.timestamp_begin.saturating_add(max_init_index),
        };
        let nonempty =
            |s: &Option<String>| s.as_deref().filter(|t| !t.is_empty()).map(str::to_string);
        let hotwords = match nonempty(&opts.hotwords) {
            Some(h) => Some(encode_context(tk, &h)?),
            None => None,
        };
        let prefix = match nonempty(&opts.prefix) {
            Some(p) => Some(encode_context(tk, &p)?),
            None => None,
        };

        let content_frames = n_frames.saturating_sub(1);
        let clips = clip_frames(&opts.clip_timestamps, content_frames);
        let mut all_tokens: Vec<u32> = match &opts.initial_prompt {
            Some(p) => tk
                .encode(&format!(" {}", p.trim()))
                .map_err(DecodeError::Tokenizer)?,
            None => Vec::new(),
        };
        let mut prompt_reset_since = 0usize;
        // End of the last word so far (word timestamps, §6.14, §7.4).
        let mut last_speech_timestamp = 0.0f64;
        let mut rng = Rng::new(opts.seed);
        let mut idx = 0usize;
        let mut clip_idx = 0usize;
        let mut seek = clips[0].0;
        while clip_idx < clips.len() {
            let (clip_start, clip_end) = clips[clip_idx];
            let clip_end = clip_end.min(content_frames);
            if seek < clip_start {
                seek = clip_start;
            }
            if seek >= clip_end {
                clip_idx += 1;
                if let Some(c) = clips.get(clip_idx) {
                    seek = c.0;
                }
                continue;
            }
            let time_offset = seek as f64 * 0.01;
            let segment_size = WINDOW_FRAMES
                .min(content_frames - seek)
                .min(clip_end - seek);
            let segment_duration = segment_size as f64 * 0.01;
            let mel = window_mel(features, seek, segment_size);
            let enc = self.backend.encode(&mel, 1)?;
            if multilingual_per_window {
                if let Some((lang, _)) = detect(self.backend, self.model, &enc, 0)?
                    .into_iter()
                    .next()
                {
                    window_language = lang;
                }
            }
            let sot_sequence = tk.sot_sequence(Some(&window_language), opts.task);
            let prompt = build_prompt(
                &sp,
                &sot_sequence,
                &PromptParts {
                    previous_tokens: &all_tokens[prompt_reset_since.min(all_tokens.len())..],
                    hotwords: hotwords.as_deref(),
                    prefix: if seek == 0 { prefix.as_deref() } else { None },
                    without_timestamps: opts.without_timestamps,
                },
            );
            // §6.2: FW's max_length is 448 or len(prompt) + max_new_tokens.
            let max_length = match opts.max_new_tokens {
                Some(n) => prompt.len() + n,
                None => MAX_LENGTH,
            };
            if max_length > MAX_LENGTH {
                return Err(DecodeError::InvalidOption(format!(
                    "the prompt ({} tokens) plus max_new_tokens exceeds {MAX_LENGTH}",
                    prompt.len()
                )));
            }
            // The timestamp rules apply unless the task prefix ends with <|notimestamps|>.
            let mut rules = rules_base.clone();
            if !opts.without_timestamps {
                rules.timestamps = Some(ts_rules);
            }
            let r: WindowResult = generate_with_fallback(
                self.backend,
                &enc,
                &prompt,
                tk,
                &rules,
                opts,
                max_length,
                &mut rng,
            )?;

            if let Some(thr) = opts.no_speech_threshold {
                let mut skip = r.no_speech_prob > thr;
                if opts.log_prob_threshold.is_some_and(|lp| r.avg_logprob > lp) {
                    skip = false;
                }
                if skip {
                    seek += segment_size;
                    continue;
                }
            }

            let previous_seek = seek;
            let split = split_by_timestamps(
                &r.tokens,
                sp.timestamp_begin,
                time_offset,
                segment_size,
                segment_duration,
                seek,
            );
            seek = split.seek;
            let mut window: Vec<WindowSegment> = split
                .segments
                .into_iter()
                .map(|s| WindowSegment {
                    start: s.start,
                    end: s.end,
                    tokens: s.tokens,
                    words: Vec::new(),
                })
                .collect();
            if opts.word_timestamps {
                // §7: words of all the window's segments, then §6.14.
                let text_tokens: Vec<u32> = window
                    .iter()
                    .flat_map(|s| s.tokens.iter().copied().filter(|&t| t < sp.eot))
                    .collect();
                let input = AlignInput {
                    sot_sequence: &sot_sequence,
                    text_tokens: &text_tokens,
                    num_frames: segment_size,
                    language: &window_language,
                    window: 0,
                };
                let alignment = find_alignment(self.backend, self.model, &enc, &input)?;
                add_word_timestamps(
                    &mut window,
                    alignment,
                    previous_seek,
                    sp.eot,
                    &opts.prepend_punctuations,
                    &opts.append_punctuations,
                    last_speech_timestamp,
                );
                let place = WindowPlace {
                    time_offset,
                    window_end_time: (previous_seek + WINDOW_FRAMES) as f64 * 0.01,
                    segment_duration,
                    previous_seek,
                    seek,
                    single_timestamp_ending: split.single_timestamp_ending,
                    content_frames,
                };
                match adjust_window(
                    &mut window,
                    &place,
                    opts.hallucination_silence_threshold,
                    &mut last_speech_timestamp,
                ) {
                    WindowOutcome::Emit { seek: next } => seek = next,
                    // Leading silence before a hallucination: emit nothing
                    // (the prompt is not reset either, as in FW).
                    WindowOutcome::Abandon { seek: next } => {
                        // Word times are multiples of 0.01 s, so FW's seek
                        // always moves here; the guard only rules out a loop
                        // on a degenerate rounding.
                        seek = next.max(previous_seek + 1);
                        continue;
                    }
                }
            }
            for s in window {
                let text = tk.decode(&s.tokens);
                if s.start == s.end || text.trim().is_empty() {
                    continue;
                }
                all_tokens.extend_from_slice(&s.tokens);
                idx += 1;
                on_segment(&Segment {
                    id: idx,
                    seek: previous_seek,
                    start: s.start,
                    end: s.end,
                    text,
                    tokens: s.tokens,
                    temperature: r.temperature as f32,
                    avg_logprob: r.avg_logprob,
                    compression_ratio: r.compression_ratio,
                    no_speech_prob: r.no_speech_prob,
                    words: opts.word_timestamps.then_some(s.words),
                });
            }
            if !opts.condition_on_previous_text || r.temperature > opts.prompt_reset_on_temperature
            {
                prompt_reset_since = all_tokens.len();
            }
        }
        Ok(info)
    }
}
