//! `VadOptions` (spec §8.4) and faster-whisper's speech-segment state machine
//! `get_speech_timestamps` (§8.5).

use crate::net::WINDOW_SAMPLES;
use crate::VadError;

/// Samples per second the VAD works at.
const RATE: f64 = 16_000.0;

/// faster-whisper's `VadOptions`, with its defaults (spec §8.4).
#[derive(Debug, Clone, PartialEq)]
pub struct VadOptions {
    /// Probabilities at or above this start (or continue) speech.
    pub threshold: f32,
    /// Probabilities below this count as silence; `None` =
    /// `max(threshold − 0.15, 0.01)`.
    pub neg_threshold: Option<f32>,
    /// Speech segments this short (or shorter) are dropped.
    pub min_speech_duration_ms: u32,
    /// Longer speech is split, at a silence of more than 98 ms if there
    /// was one, else hard.
    pub max_speech_duration_s: f64,
    /// Silence this long ends a speech segment.
    pub min_silence_duration_ms: u32,
    /// Padding added on both sides of each speech segment.
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 0,
            max_speech_duration_s: f64::INFINITY,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 400,
        }
    }
}

impl VadOptions {
    /// What `BatchedInferencePipeline.transcribe` uses when given no VAD
    /// options: segments of at most `chunk_length` seconds, 160 ms of silence
    /// ends speech (spec §8.4, §9.3).
    pub fn batched(chunk_length: f64) -> Self {
        Self {
            max_speech_duration_s: chunk_length,
            min_silence_duration_ms: 160,
            ..Self::default()
        }
    }

    /// Checks the values; the error names the option.
    pub fn validate(&self) -> Result<(), VadError> {
        let bad = |m: String| Err(VadError::InvalidOption(m));
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad(format!(
                "VAD threshold must be between 0 and 1, got {}",
                self.threshold
            ));
        }
        if let Some(t) = self.neg_threshold.filter(|t| !(0.0..=1.0).contains(t)) {
            return bad(format!(
                "VAD neg_threshold must be between 0 and 1, got {t}"
            ));
        }
        if self.max_speech_duration_s.is_nan() || self.max_speech_duration_s <= 0.0 {
            return bad(format!(
                "VAD max_speech_duration_s must be > 0 (inf = no limit), got {}",
                self.max_speech_duration_s
            ));
        }
        Ok(())
    }

    /// The silence threshold in use (§8.4).
    pub fn effective_neg_threshold(&self) -> f32 {
        // FW computes this in Python floats; the comparison with the float32
        // probability then happens in float32 (NumPy 2 casts the Python
        // float to the array's type).
        self.neg_threshold
            .unwrap_or_else(|| (f64::from(self.threshold) - 0.15).max(0.01) as f32)
    }
}

/// One speech segment in samples of the original audio, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechChunk {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

impl SpeechChunk {
    /// `end − start`.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the chunk holds no samples.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Speech segments from the per-chunk probabilities (`probs[i]` covers
/// samples `512·i ..`) of an input of `num_samples` samples — the state
/// machine and padding pass of §8.5.
pub fn timestamps_from_probs(
    probs: &[f32],
    num_samples: usize,
    opts: &VadOptions,
) -> Vec<SpeechChunk> {
    // Sample counts as FW computes them (floats; max_speech may be infinite).
    let ms = |v: u32| RATE * f64::from(v) / 1000.0;
    let min_speech = ms(opts.min_speech_duration_ms);
    let speech_pad = ms(opts.speech_pad_ms);
    let max_speech = RATE * opts.max_speech_duration_s - WINDOW_SAMPLES as f64 - 2.0 * speech_pad;
    let min_silence = ms(opts.min_silence_duration_ms);
    let min_silence_at_max_speech = RATE * 98.0 / 1000.0;
    let threshold = opts.threshold;
    let neg_threshold = opts.effective_neg_threshold();

    let mut speeches: Vec<(i64, i64)> = Vec::new();
    // `cur` = FW's current_speech start (None = the empty dict).
    let mut triggered = false;
    let mut cur: Option<i64> = None;
    let (mut temp_end, mut prev_end, mut next_start) = (0i64, 0i64, 0i64);
    for (i, &p) in probs.iter().enumerate() {
        let pos = (WINDOW_SAMPLES * i) as i64;
        if p >= threshold && temp_end != 0 {
            temp_end = 0;
            if next_start < prev_end {
                next_start = pos;
            }
        }
        if p >= threshold && !triggered {
            triggered = true;
            cur = Some(pos);
            continue;
        }
        if triggered {
            let start = cur.unwrap_or(0);
            if (pos - start) as f64 > max_speech {
                if prev_end != 0 {
                    speeches.push((start, prev_end));
                    cur = None;
                    // Silence was seen and speech has not resumed since: stop.
                    if next_start < prev_end {
                        triggered = false;
                    } else {
                        cur = Some(next_start);
                    }
                    prev_end = 0;
                    next_start = 0;
                    temp_end = 0;
                } else {
                    speeches.push((start, pos));
                    cur = None;
                    prev_end = 0;
                    next_start = 0;
                    temp_end = 0;
                    triggered = false;
                    continue;
                }
            }
        }
        if p < neg_threshold && triggered {
            if temp_end == 0 {
                temp_end = pos;
            }
            if (pos - temp_end) as f64 > min_silence_at_max_speech {
                prev_end = temp_end;
            }
            if ((pos - temp_end) as f64) < min_silence {
                continue;
            }
            let start = cur.unwrap_or(0);
            if (temp_end - start) as f64 > min_speech {
                speeches.push((start, temp_end));
            }
            cur = None;
            prev_end = 0;
            next_start = 0;
            temp_end = 0;
            triggered = false;
        }
    }
    let len = num_samples as i64;
    if let Some(start) = cur {
        if (len - start) as f64 > min_speech {
            speeches.push((start, len));
        }
    }

    // Padding pass (§8.5): in FW the pads are float, results truncated to int.
    let pad = speech_pad as i64;
    let n = speeches.len();
    for i in 0..n {
        if i == 0 {
            speeches[0].0 = (speeches[0].0 - pad).max(0);
        }
        if i + 1 < n {
            let gap = speeches[i + 1].0 - speeches[i].1;
            if (gap as f64) < 2.0 * speech_pad {
                speeches[i].1 += gap.div_euclid(2);
                speeches[i + 1].0 = (speeches[i + 1].0 - gap.div_euclid(2)).max(0);
            } else {
                speeches[i].1 = (speeches[i].1 + pad).min(len);
                speeches[i + 1].0 = (speeches[i + 1].0 - pad).max(0);
            }
        } else {
            speeches[i].1 = (speeches[i].1 + pad).min(len);
        }
    }
    speeches
        .into_iter()
        .map(|(s, e)| SpeechChunk {
            start: s.max(0) as usize,
            end: e.max(0) as usize,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern
            .iter()
            .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
            .collect()
    }

    #[test]
    fn defaults_match_faster_whisper() {
        let o = VadOptions::default();
        assert_eq!(o.threshold, 0.5);
        assert_eq!(o.effective_neg_threshold(), 0.35f32);
        assert_eq!(o.min_silence_duration_ms, 2000);
        assert_eq!(o.speech_pad_ms, 400);
        assert!(o.max_speech_duration_s.is_infinite());
        assert!(o.validate().is_ok());
        let b = VadOptions::batched(30.0);
        assert_eq!(
            (b.max_speech_duration_s, b.min_silence_duration_ms),
            (30.0, 160)
        );
        assert!(VadOptions {
            threshold: 1.5,
            ..o
        }
        .validate()
        .is_err());
    }

    #[test]
    fn one_utterance_is_padded_and_clamped() {
        // Silence 10 chunks, speech 20, silence 100 (> 2 s of 512-sample chunks).
        let p = probs(&[(0.0, 10), (0.9, 20), (0.0, 100)]);
        let len = p.len() * 512 - 100;
        let c = timestamps_from_probs(&p, len, &VadOptions::default());
        assert_eq!(
            c,
            vec![SpeechChunk {
                start: 0, // 5120 − 6400 clamped
                end: 30 * 512 + 6400
            }]
        );
    }

    #[test]
    fn short_gaps_are_bridged_long_gaps_split() {
        let o = VadOptions {
            min_silence_duration_ms: 100, // 1600 samples: silence of 4 chunks ends speech
            speech_pad_ms: 30,            // 480 samples
            ..VadOptions::default()
        };
        // Speech, 2 silent chunks (kept), speech, 10 silent chunks (split), speech to the end.
        let p = probs(&[(0.0, 5), (0.9, 5), (0.1, 2), (0.9, 5), (0.1, 10), (0.9, 5)]);
        let len = p.len() * 512;
        let c = timestamps_from_probs(&p, len, &o);
        // First segment ends at temp_end = the first silent chunk of the long gap.
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].start, 5 * 512 - 480);
        assert_eq!(c[0].end, 17 * 512 + 480);
        assert_eq!(c[1].start, 27 * 512 - 480);
        assert_eq!(c[1].end, len);
        // Hysteresis: values between the thresholds neither start nor end speech.
        let q = probs(&[(0.4, 5), (0.9, 1), (0.4, 30)]);
        let c = timestamps_from_probs(&q, q.len() * 512, &o);
        assert_eq!(
            c,
            vec![SpeechChunk {
                start: 5 * 512 - 480,
                end: q.len() * 512
            }]
        );
    }

    #[test]
    fn max_speech_splits() {
        let o = VadOptions {
            max_speech_duration_s: 1.0, // 16000 − 512 − 2·6400 = 2688 samples
            ..VadOptions::default()
        };
        let p = probs(&[(0.9, 40)]);
        let c = timestamps_from_probs(&p, 40 * 512, &o);
        // No silence: hard cut at the first chunk past 2688 samples (chunk 6),
        // then speech restarts at the next chunk.
        assert_eq!(c[0].start, 0);
        assert!(c.len() > 3);
        // Segments are contiguous after padding (gaps < 2·pad are split in half).
        for w in c.windows(2) {
            assert!(w[0].end <= w[1].start + 512);
        }
        assert_eq!(c.last().map(|s| s.end), Some(40 * 512));
    }

    #[test]
    fn min_speech_drops_blips() {
        let o = VadOptions {
            min_speech_duration_ms: 250, // 4000 samples
            ..VadOptions::default()
        };
        let p = probs(&[(0.0, 10), (0.9, 3), (0.0, 100)]);
        assert!(timestamps_from_probs(&p, p.len() * 512, &o).is_empty());
        assert!(timestamps_from_probs(&[], 0, &o).is_empty());
    }
}
