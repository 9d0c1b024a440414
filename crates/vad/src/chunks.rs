//! Cutting the speech out of the audio (`collect_chunks`, spec §8.6 and
//! §9.3) and mapping times in the cut audio back to the original
//! (`SpeechTimestampsMap`, `restore_speech_timestamps`, §8.6).

use crate::timestamps::SpeechChunk;

/// Samples per second.
const RATE: f64 = 16_000.0;

/// One packed piece of speech from [`collect_chunks`].
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedChunk {
    /// The speech samples of the piece, concatenated.
    pub audio: Vec<f32>,
    /// Start of the piece in the concatenation of all pieces, seconds (FW `offset`).
    pub offset: f64,
    /// Seconds of speech in the piece (FW `duration`).
    pub duration: f64,
    /// The speech segments the piece was built from (FW `segments`). As in
    /// FW 1.2.1, a segment that opens a new piece because the previous one
    /// was full is *not* listed (its samples are in `audio` all the same).
    pub segments: Vec<SpeechChunk>,
}

/// faster-whisper's `collect_chunks`: concatenates `chunks` of `audio`,
/// starting a new piece whenever adding the next segment would exceed
/// `max_duration_s` (`f64::INFINITY` = one piece, the sequential path).
/// No chunks → one empty piece. Chunk bounds past the audio are clipped.
pub fn collect_chunks(
    audio: &[f32],
    chunks: &[SpeechChunk],
    max_duration_s: f64,
) -> Vec<CollectedChunk> {
    let slice = |c: &SpeechChunk| {
        let end = c.end.min(audio.len());
        &audio[c.start.min(end)..end]
    };
    let piece = |audio, offset: usize, len: usize, segments| CollectedChunk {
        duration: len as f64 / RATE,
        offset: offset as f64 / RATE,
        audio,
        segments,
    };
    let mut out = Vec::new();
    let mut current: Vec<f32> = Vec::new();
    let mut segments = Vec::new();
    // FW counts durations from the chunk bounds (`end − start`), in samples.
    let (mut total, mut current_len) = (0usize, 0usize);
    for c in chunks {
        let s = slice(c);
        if (current_len + c.len()) as f64 > max_duration_s * RATE {
            let full = std::mem::take(&mut current);
            out.push(piece(
                full,
                total,
                current_len,
                std::mem::take(&mut segments),
            ));
            total += current_len;
            current_len = 0;
        } else {
            segments.push(*c);
        }
        current.extend_from_slice(s);
        current_len += c.len();
    }
    out.push(piece(current, total, current_len, segments));
    out
}

/// The sequential path's `collect_chunks` (one piece, `max_duration = ∞`)
/// done in place: `audio` becomes the concatenation of its `chunks`, without
/// a second copy of the input (a 2-hour input is 460 MB of samples). Needs
/// the chunks in order and non-overlapping, which is what the VAD returns;
/// otherwise `audio` is left as it was and `false` is returned (use
/// [`collect_chunks`] then).
pub fn concatenate_in_place<T: Copy>(audio: &mut Vec<T>, chunks: &[SpeechChunk]) -> bool {
    let mut previous_end = 0;
    for c in chunks {
        if c.start < previous_end || c.end < c.start || c.end > audio.len() {
            return false;
        }
        previous_end = c.end;
    }
    let mut write = 0;
    for c in chunks {
        // write <= c.start, so the move never overwrites unread speech.
        audio.copy_within(c.start..c.end, write);
        write += c.len();
    }
    audio.truncate(write);
    audio.shrink_to_fit();
    true
}

/// Maps times in the concatenated speech back to the original audio
/// (faster-whisper's `SpeechTimestampsMap`, 2-decimal precision, §8.6).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechTimestampsMap {
    /// End of each chunk in the concatenated timeline, samples.
    chunk_end: Vec<usize>,
    /// Seconds removed before each chunk.
    silence_before: Vec<f64>,
}

impl SpeechTimestampsMap {
    /// The map for the speech `chunks` (in order, as returned by the VAD).
    pub fn new(chunks: &[SpeechChunk]) -> Self {
        let mut chunk_end = Vec::with_capacity(chunks.len());
        let mut silence_before = Vec::with_capacity(chunks.len());
        let mut previous_end = 0usize;
        let mut silent = 0i64;
        for c in chunks {
            silent += c.start as i64 - previous_end as i64;
            previous_end = c.end;
            chunk_end.push((c.end as i64 - silent).max(0) as usize);
            silence_before.push(silent as f64 / RATE);
        }
        Self {
            chunk_end,
            silence_before,
        }
    }

    /// The chunk a time in the concatenated timeline falls in. An end time
    /// exactly at a chunk's end stays in that chunk.
    pub fn chunk_index(&self, time: f64, is_end: bool) -> usize {
        // Python's int(): truncation toward zero.
        let sample = (time * RATE) as i64;
        if is_end {
            if let Some(k) = self.chunk_end.iter().position(|&e| e as i64 == sample) {
                return k;
            }
        }
        let after = self.chunk_end.partition_point(|&e| e as i64 <= sample);
        after.min(self.chunk_end.len().saturating_sub(1))
    }

    /// The original time of `time` (seconds in the concatenated timeline),
    /// using chunk `chunk` if given, else the chunk it falls in.
    pub fn original_time(&self, time: f64, chunk: Option<usize>, is_end: bool) -> f64 {
        if self.silence_before.is_empty() {
            return round2(time);
        }
        let k = chunk
            .unwrap_or_else(|| self.chunk_index(time, is_end))
            .min(self.silence_before.len() - 1);
        round2(self.silence_before[k] + time)
    }
}

/// Python's `round(x, 2)`: the float nearest to `x` rounded to two decimals,
/// half to even on the exact binary value (Rust's formatting rounds the exact
/// value the same way).
fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(start: usize, end: usize) -> SpeechChunk {
        SpeechChunk { start, end }
    }

    #[test]
    fn collect_concatenates_and_packs() {
        let audio: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let chunks = [c(16_000, 32_000), c(48_000, 80_000), c(90_000, 100_000)];
        let all = collect_chunks(&audio, &chunks, f64::INFINITY);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].audio.len(), 16_000 + 32_000 + 10_000);
        assert_eq!(all[0].audio[0], 16_000.0);
        assert_eq!(all[0].audio[16_000], 48_000.0);
        assert_eq!(all[0].segments, chunks.to_vec());
        // 2.5 s pieces: [1 s] then [2 s] then [0.625 s]; FW leaves a segment
        // that opened a new piece out of that piece's list.
        let packed = collect_chunks(&audio, &chunks, 2.5);
        assert_eq!(packed.len(), 3);
        assert_eq!(
            packed.iter().map(|p| p.audio.len()).collect::<Vec<_>>(),
            vec![16_000, 32_000, 10_000]
        );
        assert_eq!(packed[1].offset, 1.0);
        assert_eq!(packed[2].offset, 3.0);
        assert_eq!(packed[2].duration, 0.625);
        assert_eq!(packed[0].segments, vec![chunks[0]]);
        assert!(packed[1].segments.is_empty());
        let none = collect_chunks(&audio, &[], f64::INFINITY);
        assert_eq!(none.len(), 1);
        assert!(none[0].audio.is_empty());
    }

    #[test]
    fn in_place_equals_collect() {
        let audio: Vec<f32> = (0..50_000).map(|i| i as f32).collect();
        let chunks = [c(100, 2_000), c(2_000, 9_000), c(30_000, 50_000)];
        let mut inplace = audio.clone();
        assert!(concatenate_in_place(&mut inplace, &chunks));
        assert_eq!(
            inplace,
            collect_chunks(&audio, &chunks, f64::INFINITY)[0].audio
        );
        let mut none = audio.clone();
        assert!(concatenate_in_place(&mut none, &[]));
        assert!(none.is_empty());
        // Overlapping or out-of-range chunks: left alone.
        let mut same = audio.clone();
        assert!(!concatenate_in_place(&mut same, &[c(0, 10), c(5, 20)]));
        assert!(!concatenate_in_place(&mut same, &[c(0, 60_000)]));
        assert_eq!(same, audio);
    }

    #[test]
    fn map_restores_original_times() {
        // Speech 1–2 s and 3–5 s: concatenated 0–1 s is chunk 0 (+1 s), 1–3 s chunk 1 (+2 s).
        let m = SpeechTimestampsMap::new(&[c(16_000, 32_000), c(48_000, 80_000)]);
        assert_eq!(m.original_time(0.5, None, false), 1.5);
        assert_eq!(m.original_time(1.0, None, false), 3.0);
        // An end exactly at a chunk end stays in that chunk.
        assert_eq!(m.original_time(1.0, None, true), 2.0);
        assert_eq!(m.original_time(2.5, None, false), 4.5);
        // Past the last chunk: the last chunk's offset.
        assert_eq!(m.original_time(9.0, None, false), 11.0);
        assert_eq!(m.original_time(0.123, None, false), 1.12);
    }

    #[test]
    fn rounding_is_pythons() {
        assert_eq!(round2(1.005), 1.0); // 1.005 is 1.00499999… in binary
        assert_eq!(round2(0.125), 0.12); // exact tie: half to even
        assert_eq!(round2(2.675), 2.67);
        assert_eq!(round2(4.56789), 4.57);
    }
}
