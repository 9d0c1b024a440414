//! What every mode does with a decoded window (spec §6.12, §7): split its
//! tokens into segments at timestamp pairs, align the words when asked,
//! build the [`Segment`] records and map their times back through the VAD.
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`_split_segments_by_timestamps`, `add_word_timestamps`, `restore_speech_timestamps`).

use crate::split::{split_by_timestamps, SplitResult};
use crate::words::{add_word_timestamps, find_alignment, AlignInput, WindowSegment};
use crate::{DecodeError, DecodeOptions};
use vkw_backend::Backend;
use vkw_model::WhisperModel;
use vkw_segments::Segment;
use vkw_vad::SpeechTimestampsMap;

/// Where a window's tokens sit in the transcribed timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowPlace {
    /// Window start in seconds (sequential: `seek · 0.01`; batched: the
    /// piece's offset in the concatenated speech).
    pub time_offset: f64,
    /// Content frames of the window (`segment_size`).
    pub segment_size: usize,
    /// Content length in seconds.
    pub segment_duration: f64,
    /// The `seek` the split starts from (batched: 0, FW passes none).
    pub seek: usize,
}

/// A window's tokens split at timestamp pairs (§6.12): the segments as the
/// word alignment and §6.14 work on them, and the split's seek facts.
pub(crate) fn split_window(
    tokens: &[u32],
    logprobs: &[f32],
    timestamp_begin: u32,
    place: &WindowPlace,
) -> (Vec<WindowSegment>, SplitResult) {
    let mut split = split_by_timestamps(
        tokens,
        timestamp_begin,
        place.time_offset,
        place.segment_size,
        place.segment_duration,
        place.seek,
    );
    // The segments are consecutive slices of the tokens, from the first.
    let mut at = 0;
    let segments = std::mem::take(&mut split.segments)
        .into_iter()
        .map(|s| {
            let n = s.tokens.len();
            let lps = logprobs
                .get(at..at + n)
                .map(<[f32]>::to_vec)
                .unwrap_or_default();
            at += n;
            WindowSegment {
                start: s.start,
                end: s.end,
                tokens: s.tokens,
                words: Vec::new(),
                logprobs: lps,
            }
        })
        .collect();
    (segments, split)
}

/// What the word alignment of one window needs besides its segments.
pub(crate) struct WordsInput<'a> {
    /// The SOT sequence the alignment pass starts with (no prompt).
    pub sot_sequence: &'a [u32],
    /// Language code (chooses the word-splitting rule).
    pub language: &'a str,
    /// The window's slot in the encoder output.
    pub window: usize,
    /// Content frames of the window.
    pub segment_size: usize,
    /// Frame the word times count from.
    pub seek: usize,
    /// End of the previous speech (§7.4).
    pub last_speech_timestamp: f64,
}

/// faster-whisper's `add_word_timestamps` over all of a window's segments
/// (§7): the alignment pass, DTW, word splitting and the §7.4 adjustments.
/// Returns the end of speech after the window (the batched pipeline carries
/// it from window to window; the sequential loop takes it from §6.14).
pub(crate) fn align_words<B: Backend>(
    backend: &B,
    model: &WhisperModel,
    enc: &B::Encoded,
    segments: &mut [WindowSegment],
    input: &WordsInput<'_>,
    opts: &DecodeOptions,
) -> Result<f64, DecodeError> {
    let eot = model.tokenizer.special.eot;
    let text_tokens: Vec<u32> = segments
        .iter()
        .flat_map(|s| s.tokens.iter().copied().filter(|&t| t < eot))
        .collect();
    let align = AlignInput {
        sot_sequence: input.sot_sequence,
        text_tokens: &text_tokens,
        num_frames: input.segment_size,
        language: input.language,
        window: input.window,
    };
    let alignment = find_alignment(backend, model, enc, &align)?;
    Ok(add_word_timestamps(
        segments,
        alignment,
        input.seek,
        eot,
        &opts.prepend_punctuations,
        &opts.append_punctuations,
        input.last_speech_timestamp,
    ))
}

/// The window-level facts every segment of a window carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowFacts {
    /// `seek` reported on the segments (frames).
    pub seek: usize,
    /// Temperature of the accepted result.
    pub temperature: f64,
    /// Average log-probability of the result.
    pub avg_logprob: f64,
    /// The window's compression ratio; `None` = each segment's own text's
    /// (the batched pipeline computes it per segment).
    pub compression_ratio: Option<f64>,
    /// No-speech probability.
    pub no_speech_prob: f64,
}

/// A segment record from a window segment, its times mapped back to the
/// original audio when the VAD cut it (§8.6: words by their midpoint's
/// chunk, the segment then spanning its words).
pub(crate) fn segment(
    id: usize,
    s: WindowSegment,
    text: String,
    facts: &WindowFacts,
    opts: &DecodeOptions,
    tokenizer: &vkw_model::Tokenizer,
    map: Option<&SpeechTimestampsMap>,
) -> Segment {
    let token_logprobs = opts.token_logprobs.then(|| {
        s.tokens
            .iter()
            .zip(&s.logprobs)
            .map(|(&t, &lp)| (tokenizer.decode_with_timestamps(&[t]), lp))
            .collect()
    });
    let compression_ratio = facts
        .compression_ratio
        .unwrap_or_else(|| crate::compression_ratio(&text));
    let mut seg = Segment {
        id,
        seek: facts.seek,
        start: s.start,
        end: s.end,
        text,
        tokens: s.tokens,
        temperature: facts.temperature as f32,
        avg_logprob: facts.avg_logprob,
        compression_ratio,
        no_speech_prob: facts.no_speech_prob,
        words: opts.word_timestamps.then_some(s.words),
        token_logprobs,
    };
    if let Some(map) = map {
        restore_segment(map, &mut seg);
    }
    seg
}

/// faster-whisper's `restore_speech_timestamps` for one segment: words are
/// mapped with the chunk of their midpoint, and the segment then spans its
/// first to last word; without words, start and end are mapped on their own
/// (the end with the end rule).
pub(crate) fn restore_segment(map: &SpeechTimestampsMap, seg: &mut Segment) {
    match seg.words.as_mut().filter(|w| !w.is_empty()) {
        Some(words) => {
            for w in words.iter_mut() {
                let k = map.chunk_index((w.start + w.end) / 2.0, false);
                w.start = map.original_time(w.start, Some(k), false);
                w.end = map.original_time(w.end, Some(k), false);
            }
            seg.start = words[0].start;
            seg.end = words[words.len() - 1].end;
        }
        None => {
            seg.start = map.original_time(seg.start, None, false);
            seg.end = map.original_time(seg.end, None, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vkw_segments::Word;
    use vkw_vad::SpeechChunk;

    #[test]
    fn map_restores_segments_and_words() {
        let c = |start, end| SpeechChunk { start, end };
        // Speech 1–2 s and 3–5 s: concatenated 0–1 s is chunk 0 (+1 s), 1–3 s chunk 1 (+2 s).
        let m = SpeechTimestampsMap::new(&[c(16_000, 32_000), c(48_000, 80_000)]);
        let word = |start, end| Word {
            start,
            end,
            word: " w".into(),
            probability: 0.9,
        };
        let mut seg = Segment {
            id: 1,
            seek: 0,
            start: 0.0,
            end: 1.6,
            text: " w w".into(),
            tokens: vec![],
            temperature: 0.0,
            avg_logprob: 0.0,
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
            words: Some(vec![word(0.2, 0.6), word(0.9, 1.2)]),
            token_logprobs: None,
        };
        restore_segment(&m, &mut seg);
        let w = seg.words.as_ref().unwrap();
        assert_eq!((w[0].start, w[0].end), (1.2, 1.6));
        // Midpoint 1.05 s lies in chunk 1: both ends get +2 s.
        assert_eq!((w[1].start, w[1].end), (2.9, 3.2));
        assert_eq!((seg.start, seg.end), (1.2, 3.2));
        seg.words = None;
        seg.start = 0.0;
        seg.end = 1.0;
        restore_segment(&m, &mut seg);
        assert_eq!((seg.start, seg.end), (1.0, 2.0));
    }
}
