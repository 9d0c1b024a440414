//! What the window loop does with the words (spec §6.14): move `seek` to the
//! end of the last word, and skip silence before likely hallucinations
//! (`hallucination_silence_threshold`).
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py` (the `word_timestamps` block of
//! `WhisperModel.generate_segments`: `get_end`, `word_anomaly_score`, `is_segment_anomaly`,
//! `next_words_segment`).

use super::WindowSegment;
use vkw_segments::Word;

/// Marks that do not count as words in the anomaly score (substring test).
const PUNCTUATION: &str = "\"'“¿([{-\"'.。,，!！?？:：”)]}、";

/// Where the window loop goes after a window with word timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WindowOutcome {
    /// Emit the (possibly truncated) segments and continue at `seek`.
    Emit {
        /// Next window start, in frames.
        seek: usize,
    },
    /// Emit nothing from this window and continue at `seek` (leading
    /// silence before a hallucination).
    Abandon {
        /// Next window start, in frames.
        seek: usize,
    },
}

/// The window's position and the loop's state that §6.14 reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowPlace {
    /// Window start in seconds (`seek · 0.01`).
    pub time_offset: f64,
    /// `(seek + 3000) · 0.01`.
    pub window_end_time: f64,
    /// Content length of the window in seconds.
    pub segment_duration: f64,
    /// Window start before splitting, in frames.
    pub previous_seek: usize,
    /// `seek` after splitting at timestamps (§6.12).
    pub seek: usize,
    /// Whether the tokens ended with a single timestamp.
    pub single_timestamp_ending: bool,
    /// Frames of the whole input's content.
    pub content_frames: usize,
}

/// Python's `round()` of a number of frames (half to even).
fn frames(seconds: f64) -> usize {
    (seconds * 100.0).round_ties_even().max(0.0) as usize
}

/// `get_end`: the last word's end, else the last segment's end.
pub(crate) fn get_end(segments: &[WindowSegment]) -> Option<f64> {
    segments
        .iter()
        .rev()
        .find_map(|s| s.words.last().map(|w| w.end))
        .or_else(|| segments.last().map(|s| s.end))
}

/// faster-whisper's `word_anomaly_score` (§6.14): 1 for probability below
/// 0.15, plus 15 per second below 0.133 s of duration, plus the seconds
/// above 2 s.
pub fn word_anomaly_score(w: &Word) -> f64 {
    let duration = w.end - w.start;
    let mut score = 0.0;
    if w.probability < 0.15 {
        score += 1.0;
    }
    if duration < 0.133 {
        score += (0.133 - duration) * 15.0;
    }
    if duration > 2.0 {
        score += duration - 2.0;
    }
    score
}

fn is_anomaly(segment: Option<&WindowSegment>) -> bool {
    let Some(s) = segment.filter(|s| !s.words.is_empty()) else {
        return false;
    };
    words_look_hallucinated(&s.words)
}

/// faster-whisper's `is_segment_anomaly` on a run of words (§6.14): among
/// the first 8 that are not punctuation, words with probability < 0.15,
/// shorter than 0.133 s or longer than 2 s add to a score; the run looks
/// hallucinated when the score reaches 3 or about one per word. Empty: no.
pub fn words_look_hallucinated(words: &[Word]) -> bool {
    if words.is_empty() {
        return false;
    }
    let words: Vec<&Word> = words
        .iter()
        .filter(|w| !PUNCTUATION.contains(w.word.as_str()))
        .take(8)
        .collect();
    let score: f64 = words.iter().map(|w| word_anomaly_score(w)).sum();
    score >= 3.0 || score + 0.01 >= words.len() as f64
}

/// §6.14 for one window whose segments already have words: returns where to
/// go next, truncates `segments` when a hallucination surrounded by silence
/// is found, and updates `last_speech_timestamp`.
pub(crate) fn adjust_window(
    segments: &mut Vec<WindowSegment>,
    place: &WindowPlace,
    hallucination_silence_threshold: Option<f64>,
    last_speech_timestamp: &mut f64,
) -> WindowOutcome {
    let mut seek = place.seek;
    let time_offset = place.time_offset;
    if !place.single_timestamp_ending {
        if let Some(end) = get_end(segments).filter(|&e| e > time_offset) {
            seek = frames(end);
        }
    }
    if let Some(thr) = hallucination_silence_threshold {
        let with_words = |from: usize| segments[from..].iter().find(|s| !s.words.is_empty());
        // A hallucination right at the start: skip the leading silence.
        if let Some(first) = with_words(0).filter(|s| is_anomaly(Some(s))) {
            let gap = first.start - time_offset;
            if gap > thr {
                return WindowOutcome::Abandon {
                    seek: place.previous_seek + frames(gap),
                };
            }
        }
        let content_duration = place.content_frames as f64 * 0.01;
        let mut hal_last_end = *last_speech_timestamp;
        let mut cut = None;
        for (si, s) in segments.iter().enumerate() {
            if s.words.is_empty() {
                continue;
            }
            if is_anomaly(Some(s)) {
                let next = with_words(si + 1);
                let next_start =
                    next.map_or(time_offset + place.segment_duration, |n| n.words[0].start);
                let silence_before =
                    s.start - hal_last_end > thr || s.start < thr || s.start - time_offset < 2.0;
                let silence_after = next_start - s.end > thr
                    || is_anomaly(next)
                    || place.window_end_time - s.end < 2.0;
                if silence_before && silence_after {
                    seek = frames((time_offset + 1.0).max(s.start));
                    if content_duration - s.end < thr {
                        seek = place.content_frames;
                    }
                    cut = Some(si);
                    break;
                }
            }
            hal_last_end = s.end;
        }
        if let Some(si) = cut {
            segments.truncate(si);
        }
    }
    if let Some(end) = get_end(segments) {
        *last_speech_timestamp = end;
    }
    WindowOutcome::Emit { seek }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(start: f64, end: f64, p: f64) -> Word {
        Word {
            start,
            end,
            word: " w".into(),
            probability: p,
        }
    }

    fn seg(words: Vec<Word>) -> WindowSegment {
        WindowSegment {
            start: words.first().map_or(0.0, |w| w.start),
            end: words.last().map_or(0.0, |w| w.end),
            tokens: vec![1],
            words,
            logprobs: Vec::new(),
        }
    }

    fn place(seek: usize, single: bool) -> WindowPlace {
        WindowPlace {
            time_offset: 0.0,
            window_end_time: 30.0,
            segment_duration: 30.0,
            previous_seek: 0,
            seek,
            single_timestamp_ending: single,
            content_frames: 6000,
        }
    }

    #[test]
    fn anomaly_score_counts_short_improbable_and_long_words() {
        assert_eq!(word_anomaly_score(&word(0.0, 0.5, 0.9)), 0.0);
        assert!((word_anomaly_score(&word(0.0, 0.033, 0.9)) - 1.5).abs() < 1e-9);
        assert!((word_anomaly_score(&word(0.0, 3.0, 0.1)) - 2.0).abs() < 1e-9);
        // Punctuation-only words are left out of the count.
        let mut s = seg(vec![word(0.0, 0.5, 0.9), word(0.5, 0.5, 0.01)]);
        s.words[1].word = ".".into();
        assert!(!is_anomaly(Some(&s)));
        assert!(is_anomaly(Some(&seg(vec![word(0.0, 0.5, 0.01)]))));
        assert!(!is_anomaly(None));
    }

    #[test]
    fn seek_moves_to_the_last_word_unless_single_ending() {
        let mut segs = vec![seg(vec![word(1.0, 2.0, 0.9), word(2.0, 2.345, 0.9)])];
        let mut last = 0.0;
        let out = adjust_window(&mut segs, &place(3000, false), None, &mut last);
        // 2.345 · 100 = 234.50000000000003 in floats: Python's round gives 235.
        assert_eq!(out, WindowOutcome::Emit { seek: 235 });
        assert_eq!(last, 2.345);
        let out = adjust_window(&mut segs, &place(3000, true), None, &mut last);
        assert_eq!(out, WindowOutcome::Emit { seek: 3000 });
    }

    #[test]
    fn leading_hallucination_abandons_the_window() {
        // Speech-like anomaly (improbable words) after 5 s of silence.
        let mut segs = vec![seg(vec![word(5.0, 5.5, 0.01), word(5.5, 6.0, 0.01)])];
        let mut last = 0.0;
        let out = adjust_window(&mut segs, &place(3000, false), Some(2.0), &mut last);
        assert_eq!(out, WindowOutcome::Abandon { seek: 500 });
        // Below the threshold the window is kept.
        let out = adjust_window(&mut segs, &place(3000, false), Some(6.0), &mut last);
        assert!(matches!(out, WindowOutcome::Emit { .. }));
    }

    #[test]
    fn hallucination_between_silences_is_dropped_with_what_follows() {
        let good = |a: f64| seg(vec![word(a, a + 0.5, 0.9), word(a + 0.5, a + 1.0, 0.9)]);
        let bad = |a: f64| seg(vec![word(a, a + 0.5, 0.01), word(a + 0.5, a + 1.0, 0.01)]);
        let mut segs = vec![good(0.0), bad(10.0), good(20.0)];
        let mut last = 0.0;
        let out = adjust_window(&mut segs, &place(3000, false), Some(3.0), &mut last);
        assert_eq!(out, WindowOutcome::Emit { seek: 1000 });
        assert_eq!(segs.len(), 1);
        assert_eq!(last, 1.0);
        // With speech right after it (no silence after), nothing is cut.
        let mut segs = vec![good(0.0), bad(10.0), good(11.5)];
        let out = adjust_window(&mut segs, &place(3000, false), Some(3.0), &mut last);
        assert_eq!(segs.len(), 3);
        assert_eq!(out, WindowOutcome::Emit { seek: 1250 });
    }
}
