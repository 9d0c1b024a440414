//! Splitting one window's generated tokens into segments (spec §6.12).
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`WhisperModel._split_segments_by_timestamps`).

/// A segment cut out of one window's tokens, before text decoding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenSegment {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Tokens of this segment (timestamps included).
    pub tokens: Vec<u32>,
}

/// The result of [`split_by_timestamps`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SplitResult {
    /// Segments in order.
    pub segments: Vec<TokenSegment>,
    /// The seek (mel frames) where the next window starts.
    pub seek: usize,
    /// Whether the tokens end with a single timestamp (text then one timestamp).
    pub single_timestamp_ending: bool,
}

/// Split `tokens` (a window's result) into segments as faster-whisper does.
///
/// `timestamp_begin` is the id of `<|0.00|>`; `time_offset` the window start in
/// seconds; `segment_size` the window length in frames; `seek` the window start.
pub(crate) fn split_by_timestamps(
    tokens: &[u32],
    timestamp_begin: u32,
    time_offset: f64,
    segment_size: usize,
    segment_duration: f64,
    seek: usize,
) -> SplitResult {
    let tb = timestamp_begin;
    let is_ts = |t: u32| t >= tb;
    let n = tokens.len();
    let single_timestamp_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
    let mut consecutive: Vec<usize> = (1..n)
        .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
        .collect();
    let ts_time = |t: u32| f64::from(t - tb) * 0.02;
    let mut segments = Vec::new();
    let new_seek;
    if !consecutive.is_empty() {
        if single_timestamp_ending {
            consecutive.push(n);
        }
        let mut last = 0;
        for &cut in &consecutive {
            let slice = &tokens[last..cut];
            // A slice starts and ends with timestamp tokens by construction.
            let start = time_offset + ts_time(slice[0]);
            let end = time_offset + ts_time(slice[slice.len() - 1]);
            segments.push(TokenSegment {
                start,
                end,
                tokens: slice.to_vec(),
            });
            last = cut;
        }
        if single_timestamp_ending {
            new_seek = seek + segment_size;
        } else {
            // The tail after the last timestamp pair is unfinished: resume there.
            let last_ts = tokens[last - 1];
            new_seek = seek + (last_ts - tb) as usize * 2;
        }
    } else {
        let mut duration = segment_duration;
        if let Some(&last_ts) = tokens.iter().rev().find(|&&t| is_ts(t)) {
            if last_ts != tb {
                duration = ts_time(last_ts);
            }
        }
        segments.push(TokenSegment {
            start: time_offset,
            end: time_offset + duration,
            tokens: tokens.to_vec(),
        });
        new_seek = seek + segment_size;
    }
    SplitResult {
        segments,
        seek: new_seek,
        single_timestamp_ending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TB: u32 = 50363;

    #[test]
    fn jfk_window_splits_into_two_segments() {
        // faster-whisper's first jfk window (golden tiny.en beam 5).
        let toks = [
            50363, 843, 523, 11, 616, 5891, 3399, 1265, 407, 644, 534, 1499, 460, 466, 329, 345,
            50763, 50763, 1265, 644, 345, 460, 466, 329, 534, 1499, 13, 50913,
        ];
        let r = split_by_timestamps(&toks, TB, 0.0, 1100, 11.0, 0);
        assert!(r.single_timestamp_ending);
        assert_eq!(r.segments.len(), 2);
        assert_eq!(r.segments[0].start, 0.0);
        assert!((r.segments[0].end - 8.0).abs() < 1e-9);
        assert!((r.segments[1].end - 11.0).abs() < 1e-9);
        assert_eq!(r.segments[1].tokens[0], 50763);
        assert_eq!(r.seek, 1100);
    }

    #[test]
    fn unfinished_tail_moves_seek_to_last_pair() {
        let toks = [TB, 100, TB + 50, TB + 50, 200, TB + 100, TB + 100, 300];
        let r = split_by_timestamps(&toks, TB, 10.0, 3000, 30.0, 1000);
        assert!(!r.single_timestamp_ending);
        assert_eq!(r.segments.len(), 2);
        assert_eq!(r.seek, 1000 + 200);
        assert!((r.segments[1].end - 12.0).abs() < 1e-9);
    }

    #[test]
    fn no_pair_spans_window_or_last_timestamp() {
        let r = split_by_timestamps(&[TB, 5, 6, TB + 20], TB, 0.0, 500, 5.0, 0);
        assert_eq!(r.segments.len(), 1);
        assert!((r.segments[0].end - 0.4).abs() < 1e-9);
        assert!(r.single_timestamp_ending);
        let r = split_by_timestamps(&[5, 6], TB, 3.0, 500, 5.0, 300);
        assert!((r.segments[0].end - 8.0).abs() < 1e-9);
        assert_eq!(r.seek, 800);
    }
}
