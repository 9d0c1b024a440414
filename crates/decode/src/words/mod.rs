//! Word-level timestamps (spec §7) and the window loop's use of them (§6.14).
//!
//! Per window: the alignment pass on the backend (`Backend::align`, §7.1),
//! the alignment matrix and DTW (`dtw.rs`, §7.1–7.2), tokens → words
//! (`split.rs`, §7.3), faster-whisper's post-processing (§7.4, here), then
//! the seek adjustment and hallucination-silence handling (`silence.rs`).
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py` (`WhisperModel.find_alignment`,
//! `WhisperModel.add_word_timestamps`) and CTranslate2 4.8.5 `src/models/whisper.cc`
//! (`WhisperReplica::align`).

mod dtw;
mod silence;
mod split;

pub(crate) use dtw::{alignment_matrix, dtw};
pub(crate) use silence::{adjust_window, WindowOutcome, WindowPlace};
pub use silence::{word_anomaly_score, words_look_hallucinated};
pub(crate) use split::{merge_punctuations, split_to_word_tokens, TimedWord};

use crate::DecodeError;
use vkw_backend::Backend;
use vkw_model::WhisperModel;
use vkw_segments::Word;

/// Encoder frames per second (each covers two mel frames: 320 samples).
const TOKENS_PER_SECOND: f64 = 50.0;

/// One segment of a window while its words are worked out (faster-whisper's
/// `current_segments` entries).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowSegment {
    /// Start in seconds (moved to the first word's start by §7.4 step 5).
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// Tokens, timestamps included.
    pub tokens: Vec<u32>,
    /// Words assigned to the segment.
    pub words: Vec<Word>,
    /// Each token's log-probability (empty when not tracked).
    pub logprobs: Vec<f32>,
}

/// Python's `round(x, 2)`: the decimal nearest to the double's exact value
/// (Rust's formatting rounds the exact value too).
pub(crate) fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// What the alignment of one window needs besides the backend.
pub(crate) struct AlignInput<'a> {
    /// The tokenizer's SOT sequence for the window (no previous-text prompt).
    pub sot_sequence: &'a [u32],
    /// Text tokens (`< eot`) of all the window's segments, concatenated.
    pub text_tokens: &'a [u32],
    /// Mel frames of the window's content (`segment_size`).
    pub num_frames: usize,
    /// Language code of the window (chooses the word-splitting rule).
    pub language: &'a str,
    /// Index of the window in the encoder output batch.
    pub window: usize,
}

/// faster-whisper's `find_alignment` (spec §7.1–7.3): the words of a
/// window's text with times in seconds from the window start.
pub(crate) fn find_alignment<B: Backend>(
    backend: &B,
    model: &WhisperModel,
    enc: &B::Encoded,
    input: &AlignInput<'_>,
) -> Result<Vec<TimedWord>, DecodeError> {
    let tk = &model.tokenizer;
    let sp = tk.special;
    let text = input.text_tokens;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut tokens = input.sot_sequence.to_vec();
    tokens.push(sp.no_timestamps);
    tokens.extend_from_slice(text);
    tokens.push(sp.eot);
    let heads = model.alignment_heads();
    let al = backend.align(enc, input.window, &tokens, &heads)?;
    let n_ctx = backend.hparams().n_audio_ctx;
    let n_vocab = backend.hparams().n_vocab;
    let n = tokens.len();
    if al.scores.len() != heads.len() * n * n_ctx || al.logits.len() != n * n_vocab {
        return Err(DecodeError::LogitsShape {
            got: al.scores.len() + al.logits.len(),
            expected: heads.len() * n * n_ctx + n * n_vocab,
        });
    }
    let first = input.sot_sequence.len();
    // Rows whose next-token predictions are the text tokens and the eot.
    let rows = first..first + text.len() + 1;
    let frames = input.num_frames / 2;
    let matrix = alignment_matrix(&al.scores, heads.len(), n, n_ctx, frames, rows.clone());
    let cost: Vec<f32> = matrix.iter().map(|&x| -x).collect();
    let path = dtw(&cost, rows.len(), frames.min(n_ctx));

    // §7.1 step 9: probability of each text token among the text tokens.
    let eot = sp.eot as usize;
    let probs: Vec<f64> = text
        .iter()
        .enumerate()
        .map(|(t, &tok)| {
            let row = &al.logits[(first + t) * n_vocab..][..eot.min(n_vocab)];
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = row.iter().map(|&x| f64::from(x - m).exp()).sum();
            row.get(tok as usize)
                .map_or(0.0, |&x| f64::from(x - m).exp() / z)
        })
        .collect();

    let mut with_eot = text.to_vec();
    with_eot.push(sp.eot);
    let decode = |ids: &[u32]| tk.decode_with_timestamps(ids);
    let words = split_to_word_tokens(&with_eot, input.language, sp.eot, &decode);
    if words.len() <= 1 {
        return Ok(Vec::new());
    }
    // Time of each change of text index along the path (the "jumps"; the
    // first pair always counts), as FW reads them, −1 entries included.
    let mut jump_times = Vec::with_capacity(rows.len() + 1);
    let mut prev = None;
    for &(ti, fi) in &path {
        if prev != Some(ti) {
            jump_times.push(fi as f64 / TOKENS_PER_SECOND);
            prev = Some(ti);
        }
    }
    let mut out = Vec::with_capacity(words.len() - 1);
    let mut b = 0usize;
    // The last "word" is the eot: it only closes the word before it.
    for w in &words[..words.len() - 1] {
        let e = b + w.tokens.len();
        let (Some(&start), Some(&end)) = (jump_times.get(b), jump_times.get(e)) else {
            break;
        };
        let p = &probs[b.min(probs.len())..e.min(probs.len())];
        let probability = if p.is_empty() {
            f64::NAN
        } else {
            p.iter().sum::<f64>() / p.len() as f64
        };
        out.push(TimedWord {
            word: w.word.clone(),
            tokens: w.tokens.clone(),
            start,
            end,
            probability,
        });
        b = e;
    }
    Ok(out)
}

/// Median of the nonzero word durations capped at 0.7 s, and twice that.
fn median_max_durations(words: &[TimedWord]) -> (f64, f64) {
    let mut d: Vec<f64> = words
        .iter()
        .map(|w| w.end - w.start)
        .filter(|&x| x != 0.0)
        .collect();
    if d.is_empty() {
        return (0.0, 0.0);
    }
    d.sort_by(f64::total_cmp);
    let k = d.len();
    let median = if k % 2 == 1 {
        d[k / 2]
    } else {
        (d[k / 2 - 1] + d[k / 2]) / 2.0
    };
    let median = median.min(0.7);
    (median, 2.0 * median)
}

/// faster-whisper's `add_word_timestamps` for one window (spec §7.4): the
/// duration heuristics, punctuation merging, assignment of the words to
/// `segments` (times rounded to 0.01 s from the window start `seek`), and
/// the segment boundary adjustments. `last_speech_timestamp` is the end of
/// the previous speech; it moves along the segments of the window and the
/// value after the last one is returned (the batched pipeline carries it
/// from window to window; the sequential loop keeps its own, §6.14).
pub(crate) fn add_word_timestamps(
    segments: &mut [WindowSegment],
    mut alignment: Vec<TimedWord>,
    seek: usize,
    eot: u32,
    prepend_punctuations: &str,
    append_punctuations: &str,
    mut last_speech_timestamp: f64,
) -> f64 {
    let (median, max_dur) = median_max_durations(&alignment);
    // Truncate long words at sentence boundaries.
    // (Only when some word has a nonzero duration, as FW checks.)
    if alignment.iter().any(|w| w.end - w.start != 0.0) {
        const SENTENCE_END: &str = ".。!！?？";
        for i in 1..alignment.len() {
            if alignment[i].end - alignment[i].start > max_dur {
                if SENTENCE_END.contains(alignment[i].word.as_str()) {
                    alignment[i].end = alignment[i].start + max_dur;
                } else if SENTENCE_END.contains(alignment[i - 1].word.as_str()) {
                    alignment[i].start = alignment[i].end - max_dur;
                }
            }
        }
    }
    merge_punctuations(&mut alignment, prepend_punctuations, append_punctuations);

    let time_offset = seek as f64 / 100.0;
    let mut wi = 0usize;
    for seg in segments.iter_mut() {
        let n_text = seg.tokens.iter().filter(|&&t| t < eot).count();
        let mut saved = 0usize;
        let mut words: Vec<Word> = Vec::new();
        while wi < alignment.len() && saved < n_text {
            let t = &alignment[wi];
            if !t.word.is_empty() {
                words.push(Word {
                    start: round2(time_offset + t.start),
                    end: round2(time_offset + t.end),
                    word: t.word.clone(),
                    probability: t.probability,
                });
            }
            saved += t.tokens.len();
            wi += 1;
        }
        if !words.is_empty() {
            adjust_boundaries(seg, &mut words, median, max_dur, last_speech_timestamp);
            last_speech_timestamp = seg.end;
        }
        seg.words = words;
    }
    last_speech_timestamp
}

/// §7.4 step 5: keep the first word after a pause from stretching over the
/// pause, and reconcile the segment's bounds with its first and last words.
fn adjust_boundaries(
    seg: &mut WindowSegment,
    words: &mut [Word],
    median: f64,
    max_dur: f64,
    last_speech_timestamp: f64,
) {
    let n = words.len();
    if words[0].end - last_speech_timestamp > median * 4.0
        && (words[0].end - words[0].start > max_dur
            || (n > 1 && words[1].end - words[0].start > max_dur * 2.0))
    {
        if n > 1 && words[1].end - words[1].start > max_dur {
            let boundary = (words[1].end / 2.0).max(words[1].end - max_dur);
            words[0].end = boundary;
            words[1].start = boundary;
        }
        words[0].start = (words[0].end - max_dur).max(0.0);
    }
    // Prefer the segment's start if the first word is too long.
    if seg.start < words[0].end && seg.start - 0.5 > words[0].start {
        words[0].start = (words[0].end - median).min(seg.start).max(0.0);
    } else {
        seg.start = words[0].start;
    }
    // Prefer the segment's end if the last word is too long.
    let last = &mut words[n - 1];
    if seg.end > last.start && seg.end + 0.5 < last.end {
        last.end = (last.start + median).max(seg.end);
    } else {
        seg.end = last.end;
    }
}

#[cfg(test)]
mod tests;
