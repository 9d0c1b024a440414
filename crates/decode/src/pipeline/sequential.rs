//! Sequential transcription, one 30 s window per step: faster-whisper's
//! `generate_segments` (spec §6.10–§6.14), with `vad_filter` (§8.6) as a
//! cut of the input before the log-mel.
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`WhisperModel.transcribe`, `WhisperModel.generate_segments`).

use super::window::{align_words, split_window, WindowFacts, WindowPlace, WordsInput};
use super::{detect_mel, Run, Step, Windows, WINDOW_FRAMES};
use crate::fallback::generate_with_fallback;
use crate::language::{choose_language, detect, LanguageChoice};
use crate::options::clip_frames;
use crate::prompt::{build_prompt, PromptParts, MAX_LENGTH};
use crate::words::{adjust_window, WindowOutcome, WindowPlace as SilencePlace};
use crate::DecodeError;
use vkw_audio::mel::{Features, MelWindows};
use vkw_backend::Backend;
use vkw_model::WhisperModel;

/// The window loop's position and the state carried between windows.
pub(crate) struct Sequential<'a> {
    /// The log-mel of what is transcribed (the input, or its speech),
    /// computed one window at a time.
    mel: MelWindows<'a>,
    content_frames: usize,
    clips: Vec<(usize, usize)>,
    clip_idx: usize,
    seek: usize,
    /// Every emitted segment's tokens (the previous-text prompt, §6.11).
    all_tokens: Vec<u32>,
    prompt_reset_since: usize,
    /// The language of the current window's prompt (per-window detection
    /// changes it).
    window_language: String,
    /// End of the last word so far (word timestamps, §6.14, §7.4).
    last_speech_timestamp: f64,
}

/// `features[:, start..start+len]` as a zero-padded `[n_mels, 3000]` window
/// (spec §4.3: padding is 0.0 in the normalised log-mel domain).
fn window_mel(features: &dyn Features, start: usize, len: usize) -> Vec<f32> {
    features.window(start, len.min(WINDOW_FRAMES), WINDOW_FRAMES)
}

impl<'a> Sequential<'a> {
    /// Start over `mel` and choose the run's language from it (§6.13).
    pub fn new<B: Backend>(
        backend: &B,
        model: &WhisperModel,
        mel: MelWindows<'a>,
        run: &Run,
    ) -> Result<(Self, LanguageChoice), DecodeError> {
        let opts = &run.opts;
        let n_frames = mel.n_frames();
        let content_frames = n_frames.saturating_sub(1);
        // Detection starts at the first clip start if it lies inside the content.
        let first = opts.clip_timestamps.first().copied().unwrap_or(0.0) * 100.0;
        let start = if first < content_frames as f64 {
            first as usize
        } else {
            0
        };
        let end =
            n_frames
                .min(start.saturating_add(
                    WINDOW_FRAMES.saturating_mul(opts.language_detection_segments),
                ));
        let choice = choose_language(
            &model.tokenizer,
            opts,
            |k| {
                let i = start + k * WINDOW_FRAMES;
                Ok((i < end).then(|| window_mel(&mel, i, WINDOW_FRAMES.min(end - i))))
            },
            |w| {
                run.cancel.check()?;
                detect_mel(backend, model, w)
            },
        )?;
        let clips = clip_frames(&opts.clip_timestamps, content_frames);
        let all_tokens = match (&opts.initial_prompt_tokens, &opts.initial_prompt) {
            (Some(ids), _) => {
                let vocab = model.tokenizer.vocab_size();
                if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
                    return Err(DecodeError::InvalidOption(format!(
                        "initial_prompt: token id {bad} is outside the vocabulary (size {vocab})"
                    )));
                }
                ids.clone()
            }
            (None, Some(p)) => model
                .tokenizer
                .encode(&format!(" {}", p.trim()))
                .map_err(DecodeError::Tokenizer)?,
            (None, None) => Vec::new(),
        };
        let seek = clips[0].0;
        Ok((
            Self {
                mel,
                content_frames,
                clips,
                clip_idx: 0,
                seek,
                all_tokens,
                prompt_reset_since: 0,
                window_language: choice.language.clone(),
                last_speech_timestamp: 0.0,
            },
            choice,
        ))
    }

    /// The next window start and content length, moving through the clips;
    /// `None` when every clip is done.
    fn next_window(&mut self) -> Option<(usize, usize)> {
        while self.clip_idx < self.clips.len() {
            let (clip_start, clip_end) = self.clips[self.clip_idx];
            let clip_end = clip_end.min(self.content_frames);
            if self.seek < clip_start {
                self.seek = clip_start;
            }
            if self.seek >= clip_end {
                self.clip_idx += 1;
                if let Some(c) = self.clips.get(self.clip_idx) {
                    self.seek = c.0;
                }
                continue;
            }
            let size = WINDOW_FRAMES
                .min(self.content_frames - self.seek)
                .min(clip_end - self.seek);
            return Some((self.seek, size));
        }
        None
    }
}

impl Windows for Sequential<'_> {
    fn fraction(&self) -> f64 {
        if self.clip_idx >= self.clips.len() || self.content_frames == 0 {
            1.0
        } else {
            (self.seek as f64 / self.content_frames as f64).min(1.0)
        }
    }

    /// Decode the next window; its segments may be none (silence, an
    /// abandoned hallucination).
    fn step<B: Backend>(&mut self, backend: &B, model: &WhisperModel, run: &mut Run) -> Step {
        let Some((seek, segment_size)) = self.next_window() else {
            return Ok(None);
        };
        run.cancel.check()?;
        // Owned, so the run can number segments while the options are read.
        let opts = run.opts.clone();
        let tk = &model.tokenizer;
        let sp = tk.special;
        let time_offset = seek as f64 * 0.01;
        let segment_duration = segment_size as f64 * 0.01;
        let mel = window_mel(&self.mel, seek, segment_size);
        let enc = backend.encode(&mel, 1)?;
        drop(mel);
        if opts.multilingual && sp.multilingual {
            if let Some((lang, _)) = detect(backend, model, &enc, 0)?.into_iter().next() {
                self.window_language = lang;
            }
        }
        let sot_sequence = tk.sot_sequence(Some(&self.window_language), opts.task);
        let previous = &self.all_tokens[self.prompt_reset_since.min(self.all_tokens.len())..];
        let prompt = build_prompt(
            &sp,
            &sot_sequence,
            &PromptParts {
                previous_tokens: previous,
                hotwords: run.hotwords.as_deref(),
                prefix: if seek == 0 {
                    run.prefix.as_deref()
                } else {
                    None
                },
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
        let rules = if opts.without_timestamps {
            &run.rules
        } else {
            &run.rules_with_timestamps
        };
        let r = generate_with_fallback(
            backend,
            &enc,
            &prompt,
            tk,
            rules,
            &opts,
            max_length,
            &mut run.rng,
            &run.cancel,
        )?;

        if let Some(thr) = opts.no_speech_threshold {
            let mut skip = r.no_speech_prob > thr;
            if opts.log_prob_threshold.is_some_and(|lp| r.avg_logprob > lp) {
                skip = false;
            }
            if skip {
                self.seek += segment_size;
                return Ok(Some(Vec::new()));
            }
        }

        let previous_seek = seek;
        let place = WindowPlace {
            time_offset,
            segment_size,
            segment_duration,
            seek,
        };
        let (mut window, split) =
            split_window(&r.tokens, &r.token_logprobs, sp.timestamp_begin, &place);
        self.seek = split.seek;
        if opts.word_timestamps {
            // §7: words of all the window's segments (FW ignores the end of
            // speech add_word_timestamps returns here), then §6.14.
            align_words(
                backend,
                model,
                &enc,
                &mut window,
                &WordsInput {
                    sot_sequence: &sot_sequence,
                    language: &self.window_language,
                    window: 0,
                    segment_size,
                    seek: previous_seek,
                    last_speech_timestamp: self.last_speech_timestamp,
                },
                &opts,
            )?;
            let silence = SilencePlace {
                time_offset,
                window_end_time: (previous_seek + WINDOW_FRAMES) as f64 * 0.01,
                segment_duration,
                previous_seek,
                seek: self.seek,
                single_timestamp_ending: split.single_timestamp_ending,
                content_frames: self.content_frames,
            };
            match adjust_window(
                &mut window,
                &silence,
                opts.hallucination_silence_threshold,
                &mut self.last_speech_timestamp,
            ) {
                WindowOutcome::Emit { seek: next } => self.seek = next,
                // Leading silence before a hallucination: emit nothing
                // (the prompt is not reset either, as in FW).
                WindowOutcome::Abandon { seek: next } => {
                    // Word times are multiples of 0.01 s, so FW's seek always
                    // moves here; the guard only rules out a loop on a
                    // degenerate rounding.
                    self.seek = next.max(previous_seek + 1);
                    return Ok(Some(Vec::new()));
                }
            }
        }
        if self.seek <= previous_seek {
            // A window must move the loop on. Real models always do (a
            // window ends at its last timestamp or its end); corrupt weights
            // can produce a timestamp at 0 for ever: FW would loop, we go on
            // after the window (docs/SPEC.md §12).
            self.seek = previous_seek + segment_size;
        }
        let facts = WindowFacts {
            seek: previous_seek,
            temperature: r.temperature,
            avg_logprob: r.avg_logprob,
            compression_ratio: Some(r.compression_ratio),
            no_speech_prob: r.no_speech_prob,
        };
        let mut out = Vec::new();
        for s in window {
            let text = tk.decode(&s.tokens);
            if s.start == s.end || text.trim().is_empty() {
                continue;
            }
            self.all_tokens.extend_from_slice(&s.tokens);
            out.push(run.segment(s, text, &facts, tk));
        }
        if !opts.condition_on_previous_text || r.temperature > opts.prompt_reset_on_temperature {
            self.prompt_reset_since = self.all_tokens.len();
        }
        Ok(Some(out))
    }
}
