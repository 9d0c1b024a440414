//! Timestamp and console formatting shared by the subtitle writers and the
//! live console print.

use vkw_segments::Segment;

/// Rounds seconds to whole milliseconds the way Python's `round()` does
/// (ties to even), so our timestamps match openai-whisper's byte for byte
/// even on values such as 0.0005 s.
///
/// Negative and non-finite inputs clamp to 0: openai-whisper asserts on them,
/// but a writer should not abort a finished transcription over a bad time.
pub(crate) fn round_ms(seconds: f64) -> u64 {
    let ms = (seconds * 1000.0).round_ties_even();
    if ms.is_finite() && ms > 0.0 {
        // Saturating float→int cast; times beyond u64 are not meaningful.
        ms as u64
    } else {
        0
    }
}

/// Formats `seconds` as `[HH:]MM:SS<marker>mmm`, like openai-whisper's
/// `format_timestamp`.
///
/// The hours field appears when `always_hours` is set (SRT) or when the time
/// is at least one hour (VTT, console). `decimal_marker` is `,` for SRT and `.`
/// elsewhere. Negative or non-finite input is treated as 0.
pub fn format_timestamp(seconds: f64, always_hours: bool, decimal_marker: char) -> String {
    let mut ms = round_ms(seconds);
    let hours = ms / 3_600_000;
    ms -= hours * 3_600_000;
    let minutes = ms / 60_000;
    ms -= minutes * 60_000;
    let secs = ms / 1_000;
    ms -= secs * 1_000;
    if always_hours || hours > 0 {
        format!("{hours:02}:{minutes:02}:{secs:02}{decimal_marker}{ms:03}")
    } else {
        format!("{minutes:02}:{secs:02}{decimal_marker}{ms:03}")
    }
}

/// The line faster-whisper/openai-whisper print per segment in verbose mode:
/// `[MM:SS.mmm --> MM:SS.mmm] ` followed by the segment text as decoded (its
/// leading space kept, hence two spaces after `]` in the usual case).
///
/// No trailing newline, so callers can pick `println!` or a progress-bar
/// aware printer.
pub fn console_line(seg: &Segment) -> String {
    format!(
        "[{} --> {}] {}",
        format_timestamp(seg.start, false, '.'),
        format_timestamp(seg.end, false, '.'),
        seg.text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_whisper() {
        assert_eq!(format_timestamp(0.0, false, '.'), "00:00.000");
        assert_eq!(format_timestamp(8.0, true, ','), "00:00:08,000");
        assert_eq!(format_timestamp(61.5, false, '.'), "01:01.500");
        assert_eq!(format_timestamp(3600.0, false, '.'), "01:00:00.000");
        assert_eq!(format_timestamp(3725.123, true, ','), "01:02:05,123");
        assert_eq!(format_timestamp(36000.0 * 3.0, false, '.'), "30:00:00.000");
        // Python: round(0.0125 * 1000) == 12 (ties to even, and 12.5 is exact).
        assert_eq!(format_timestamp(0.0125, false, '.'), "00:00.012");
        assert_eq!(format_timestamp(0.0135, false, '.'), "00:00.014");
        assert_eq!(format_timestamp(59.9999, false, '.'), "01:00.000");
    }

    #[test]
    fn bad_times_clamp_to_zero() {
        assert_eq!(format_timestamp(-1.0, false, '.'), "00:00.000");
        assert_eq!(format_timestamp(f64::NAN, true, ','), "00:00:00,000");
    }

    #[test]
    fn console_line_keeps_leading_space() {
        let seg = Segment {
            id: 1,
            seek: 0,
            start: 0.0,
            end: 8.0,
            text: " And so my fellow Americans".into(),
            tokens: vec![],
            temperature: 0.0,
            avg_logprob: -0.2,
            compression_ratio: 1.3,
            no_speech_prob: 0.01,
            words: None,
            token_logprobs: None,
        };
        assert_eq!(
            console_line(&seg),
            "[00:00.000 --> 00:08.000]  And so my fellow Americans"
        );
        let late = Segment {
            start: 3599.5,
            end: 3601.25,
            ..seg
        };
        assert_eq!(
            console_line(&late),
            "[59:59.500 --> 01:00:01.250]  And so my fellow Americans"
        );
    }
}
