//! Transcription options with faster-whisper 1.2.1 defaults (spec §9.1).

pub use vkw_model::Task;

use crate::DecodeError;

/// The most beams and sampled candidates a window may use: faster-whisper's
/// users never need more than a few dozen, and each one costs a KV cache.
pub const MAX_BEAMS: usize = 64;

/// The decoding options of one transcription: faster-whisper 1.2.1's
/// `WhisperModel.transcribe` keyword arguments with its defaults (spec §9.1),
/// except the VAD and batching, which the request carries
/// ([`crate::Request`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Language code; `None` detects it (multilingual models) or uses "en".
    pub language: Option<String>,
    /// Transcribe or translate.
    pub task: Task,
    /// Beam width for temperature 0 (1 = greedy).
    pub beam_size: usize,
    /// Independent samples per temperature > 0 attempt.
    pub best_of: usize,
    /// Beam search patience: stop after `round(beam_size · patience)` finished hypotheses.
    pub patience: f32,
    /// Exponent of the length normalisation of hypothesis scores.
    pub length_penalty: f32,
    /// Penalty applied to already generated tokens (1 = off).
    pub repetition_penalty: f32,
    /// Ban repeating n-grams of this size (0 = off).
    pub no_repeat_ngram_size: usize,
    /// Temperatures tried in order by the fallback (spec §6.9).
    pub temperatures: Vec<f64>,
    /// Fall back when the compression ratio exceeds this.
    pub compression_ratio_threshold: Option<f64>,
    /// Fall back when the average log-probability is below this.
    pub log_prob_threshold: Option<f64>,
    /// Treat a window as silence when the no-speech probability exceeds this.
    pub no_speech_threshold: Option<f64>,
    /// Use the previous windows' text as prompt (spec §6.11).
    pub condition_on_previous_text: bool,
    /// Reset the prompt after a window decoded above this temperature.
    pub prompt_reset_on_temperature: f64,
    /// Text prepended as previous context for the first window.
    pub initial_prompt: Option<String>,
    /// Token ids prepended as previous context for the first window instead
    /// of `initial_prompt` (faster-whisper's `initial_prompt` given as an
    /// iterable of ids; sequential mode).
    pub initial_prompt_tokens: Option<Vec<u32>>,
    /// Text forced at the start of the first window's transcript.
    pub prefix: Option<String>,
    /// Words given to the model as previous context (when there is no prefix).
    pub hotwords: Option<String>,
    /// Suppress blank and end-of-text at the first sampled step.
    pub suppress_blank: bool,
    /// Token ids to suppress; `-1` means the non-speech symbol set (spec §6.4).
    pub suppress_tokens: Option<Vec<i64>>,
    /// Decode text only, each window as one segment.
    pub without_timestamps: bool,
    /// Latest allowed first timestamp, in seconds.
    pub max_initial_timestamp: f64,
    /// Limit of generated tokens per window (prompt excluded).
    pub max_new_tokens: Option<usize>,
    /// Clips to transcribe: `start,end,start,end,…` in seconds (see
    /// [`parse_clip_timestamps`]); the default `[0.0]` means the whole input.
    pub clip_timestamps: Vec<f64>,
    /// Detect the language of every window (multilingual models).
    pub multilingual: bool,
    /// Language detection stops at the first window whose top probability exceeds this.
    pub language_detection_threshold: f64,
    /// Number of 30 s windows language detection may look at.
    pub language_detection_segments: usize,
    /// Seed of the sampling random generator (temperature > 0).
    pub seed: u64,
    /// Word-level timestamps (spec §7): segments carry `words`, and `seek`
    /// moves to the last word's end (§6.14).
    pub word_timestamps: bool,
    /// With word timestamps: marks merged into the following word.
    pub prepend_punctuations: String,
    /// With word timestamps: marks merged into the previous word.
    pub append_punctuations: String,
    /// With word timestamps: skip silent stretches longer than this many
    /// seconds around likely hallucinations (§6.14); `None` = off.
    pub hallucination_silence_threshold: Option<f64>,
    /// vkwhisper's extension: segments carry each token's text and
    /// log-probability (`Segment::token_logprobs`, OpenAI's `logprobs`).
    pub token_logprobs: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: None,
            task: Task::Transcribe,
            beam_size: 5,
            best_of: 5,
            patience: 1.0,
            length_penalty: 1.0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: Some(2.4),
            log_prob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
            condition_on_previous_text: true,
            prompt_reset_on_temperature: 0.5,
            initial_prompt: None,
            initial_prompt_tokens: None,
            prefix: None,
            hotwords: None,
            suppress_blank: true,
            suppress_tokens: Some(vec![-1]),
            without_timestamps: false,
            max_initial_timestamp: 1.0,
            max_new_tokens: None,
            clip_timestamps: vec![0.0],
            multilingual: false,
            language_detection_threshold: 0.5,
            language_detection_segments: 1,
            seed: 0,
            word_timestamps: false,
            prepend_punctuations: "\"'“¿([{-".into(),
            append_punctuations: "\"'.。,，!！?？:：”)]}、".into(),
            hallucination_silence_threshold: None,
            token_logprobs: false,
        }
    }
}

impl DecodeOptions {
    /// Check value ranges that would make decoding impossible.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let bad = |m: &str| Err(DecodeError::InvalidOption(m.to_string()));
        if self.beam_size == 0 || self.beam_size > MAX_BEAMS {
            return Err(DecodeError::InvalidOption(format!(
                "beam_size must be between 1 and {MAX_BEAMS}, got {}",
                self.beam_size
            )));
        }
        if self.best_of == 0 || self.best_of > MAX_BEAMS {
            return Err(DecodeError::InvalidOption(format!(
                "best_of must be between 1 and {MAX_BEAMS}, got {}",
                self.best_of
            )));
        }
        if !self.patience.is_finite() || self.patience <= 0.0 || self.patience > MAX_BEAMS as f32 {
            return bad("patience must be > 0 and at most 64");
        }
        if !self.length_penalty.is_finite() {
            return bad("length_penalty must be finite");
        }
        if self.temperatures.len() > MAX_BEAMS {
            return bad("at most 64 temperatures");
        }
        if self
            .max_new_tokens
            .is_some_and(|n| n == 0 || n > crate::MAX_LENGTH)
        {
            return bad("max_new_tokens must be between 1 and 448");
        }
        if self.no_repeat_ngram_size > crate::MAX_LENGTH {
            return bad("no_repeat_ngram_size must be at most 448");
        }
        if self.language_detection_segments == 0 || self.language_detection_segments > 10_000 {
            return bad("language_detection_segments must be between 1 and 10000");
        }
        let finite_or_none = |v: Option<f64>| v.is_none_or(f64::is_finite);
        if !finite_or_none(self.compression_ratio_threshold)
            || !finite_or_none(self.log_prob_threshold)
            || !finite_or_none(self.no_speech_threshold)
            || !self.max_initial_timestamp.is_finite()
            || !self.language_detection_threshold.is_finite()
            || !self.prompt_reset_on_temperature.is_finite()
        {
            return bad("thresholds and max_initial_timestamp must be finite numbers");
        }
        if self.repetition_penalty.is_nan() || self.repetition_penalty <= 0.0 {
            return bad("repetition_penalty must be > 0");
        }
        if self.temperatures.is_empty() {
            return bad("at least one temperature is needed");
        }
        if self.temperatures.iter().any(|t| !t.is_finite() || *t < 0.0) {
            return bad("temperatures must be finite and >= 0");
        }
        if self
            .clip_timestamps
            .iter()
            .any(|t| !t.is_finite() || *t < 0.0)
        {
            return bad("clip_timestamps must be finite and >= 0");
        }
        if self
            .hallucination_silence_threshold
            .is_some_and(|t| !t.is_finite() || t < 0.0)
        {
            return bad("hallucination_silence_threshold must be finite and >= 0");
        }
        Ok(())
    }
}

/// Parse faster-whisper's `clip_timestamps` string: comma-separated seconds
/// `"start,end,start,end,…"` (a missing last end means "to the end"). The empty
/// string gives an empty list, which also means the whole input (spec §6.10).
pub fn parse_clip_timestamps(text: &str) -> Result<Vec<f64>, DecodeError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|s| {
            s.trim().parse::<f64>().map_err(|_| {
                DecodeError::InvalidOption(format!("clip_timestamps: '{s}' is not a number"))
            })
        })
        .collect()
}

/// Clip boundaries in frames (spec §6.10): `round(sec · 100)` with Python's
/// round-half-to-even, paired up, a missing final end = `content_frames`.
pub(crate) fn clip_frames(clip_timestamps: &[f64], content_frames: usize) -> Vec<(usize, usize)> {
    let points = clip_timestamps
        .iter()
        .map(|s| (s * 100.0).round_ties_even().max(0.0) as usize)
        .collect();
    clip_pairs(points, content_frames)
}

/// Clip points (in frames or samples) paired up as faster-whisper does:
/// none = the whole input, a missing final end = `end`.
pub(crate) fn clip_pairs(mut points: Vec<usize>, end: usize) -> Vec<(usize, usize)> {
    if points.is_empty() {
        points.push(0);
    }
    if points.len() % 2 == 1 {
        points.push(end);
    }
    points.chunks(2).map(|p| (p[0], p[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_parsing() {
        assert_eq!(parse_clip_timestamps("0").unwrap(), vec![0.0]);
        assert_eq!(parse_clip_timestamps("").unwrap(), Vec::<f64>::new());
        assert_eq!(
            parse_clip_timestamps("1.5, 3,10").unwrap(),
            vec![1.5, 3.0, 10.0]
        );
        assert!(parse_clip_timestamps("a,1").is_err());
        assert_eq!(clip_frames(&[0.0], 1100), vec![(0, 1100)]);
        assert_eq!(clip_frames(&[], 500), vec![(0, 500)]);
        assert_eq!(
            clip_frames(&[1.5, 3.0, 10.0], 2000),
            vec![(150, 300), (1000, 2000)]
        );
        // Python rounds half to even: 0.125 s -> 12.5 frames -> 12.
        assert_eq!(clip_frames(&[0.125, 1.0], 500), vec![(12, 100)]);
    }

    #[test]
    fn defaults_match_faster_whisper() {
        let o = DecodeOptions::default();
        assert_eq!(o.beam_size, 5);
        assert_eq!(o.temperatures.len(), 6);
        assert_eq!(o.suppress_tokens, Some(vec![-1]));
        assert!(!o.word_timestamps);
        assert_eq!(o.prepend_punctuations, "\"'“¿([{-");
        assert_eq!(o.append_punctuations, "\"'.。,，!！?？:：”)]}、");
        assert_eq!(o.hallucination_silence_threshold, None);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn sizes_from_callers_are_bounded() {
        let o = DecodeOptions::default();
        for bad in [
            DecodeOptions {
                beam_size: 0,
                ..o.clone()
            },
            DecodeOptions {
                beam_size: 100_000,
                ..o.clone()
            },
            DecodeOptions {
                beam_size: usize::MAX,
                ..o.clone()
            },
            DecodeOptions {
                best_of: 100_000,
                ..o.clone()
            },
            DecodeOptions {
                patience: f32::INFINITY,
                ..o.clone()
            },
            DecodeOptions {
                max_new_tokens: Some(usize::MAX),
                ..o.clone()
            },
            DecodeOptions {
                language_detection_segments: usize::MAX,
                ..o.clone()
            },
            DecodeOptions {
                temperatures: vec![f64::INFINITY],
                ..o.clone()
            },
            DecodeOptions {
                log_prob_threshold: Some(f64::NAN),
                ..o.clone()
            },
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
        let ok = DecodeOptions {
            beam_size: MAX_BEAMS,
            best_of: MAX_BEAMS,
            ..o
        };
        assert!(ok.validate().is_ok());
    }
}
