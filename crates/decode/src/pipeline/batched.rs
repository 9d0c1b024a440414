//! Batched transcription, one batch of windows per step: faster-whisper's
//! `BatchedInferencePipeline` (spec §9.3).
//!
//! The speech the VAD finds (or the caller's clips) is packed into pieces of
//! at most 30 s; each piece's log-mel is computed on the piece alone with its
//! last frame dropped; `batch_size` pieces are encoded together and decoded
//! together — the beams of every window live in one backend state, so one
//! decoder step serves all of them ([`crate::search::run`]). As in FW 1.2.1:
//! only the first temperature (no fallback), no conditioning on previous
//! text, the prompt built once from `initial_prompt` encoded **without** a
//! leading space, no prefix, no no-speech skipping, CT2's default
//! `max_initial_timestamp_index`, and each piece's segments timed from its
//! offset in the concatenated speech before the VAD's map moves them back.
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`BatchedInferencePipeline.transcribe`, `generate_segment_batched`,
//! `forward`) and `faster_whisper/vad.py` (`collect_chunks`).

use super::window::{align_words, split_window, WindowFacts, WindowPlace, WordsInput};
use super::{detect_mel, Run, Step, Windows, RATE, WINDOW_FRAMES};
use crate::fallback::avg_logprob;
use crate::generate::{generate, SearchParams};
use crate::language::{choose_language, detect, LanguageChoice};
use crate::logits::{LogitRules, TimestampRules};
use crate::prompt::{build_prompt, PromptParts, MAX_LENGTH};
use crate::DecodeError;
use std::ops::Range;
use vkw_audio::{Pcm, Samples};
use vkw_backend::Backend;
use vkw_model::WhisperModel;
use vkw_vad::{CollectedChunk, SpeechChunk};

/// CT2's default `max_initial_timestamp_index`: the batched pipeline does not
/// pass its own (spec §9.3).
const CT2_MAX_INITIAL_INDEX: u32 = 50;

/// FW's `chunk_length`: pieces of at most 30 s.
pub(crate) const CHUNK_SECONDS: f64 = 30.0;

/// One packed piece of speech.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    /// Sample ranges of the input that make up the piece, in order.
    pub ranges: Vec<Range<usize>>,
    /// Start of the piece in the concatenated speech, seconds (FW `offset`).
    pub offset: f64,
    /// Seconds of speech in the piece (FW `duration`).
    pub duration: f64,
}

/// The batched loop's position and what every batch shares.
pub(crate) struct Batched<'a> {
    audio: Pcm<'a>,
    pieces: Vec<Piece>,
    next: usize,
    batch_size: usize,
    /// The timestamp rules with CT2's default initial-timestamp limit.
    rules: LogitRules,
    previous: Vec<u32>,
    max_length: usize,
    /// Word alignment uses the run's SOT sequence (its language), FW
    /// `tokenizer.sot_sequence`, whatever a window's prompt said.
    align_sot: Vec<u32>,
    language: String,
    /// End of speech carried from piece to piece (§7.4).
    last_speech_timestamp: f64,
}

/// FW `feature_extractor(chunk)[..., :-1]`: the piece's own log-mel
/// (normalised against the piece's maximum), last frame dropped, as
/// `[n_mels, frames]` and `frames`.
pub(crate) fn piece_features(audio: &[f32], n_mels: usize) -> (Vec<f32>, usize) {
    let mel = vkw_audio::mel::LogMel::compute(audio, n_mels);
    let frames = mel.n_frames.saturating_sub(1);
    (mel.window(0, frames, frames), frames)
}

/// `features[:, ..frames]` zero-padded or truncated to one `[n_mels, 3000]` window (§4.3).
fn pad_or_trim(features: &[f32], n_mels: usize, frames: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n_mels * WINDOW_FRAMES];
    let take = frames.min(WINDOW_FRAMES);
    for m in 0..n_mels {
        out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + take]
            .copy_from_slice(&features[m * frames..m * frames + take]);
    }
    out
}

/// FW rounds batched segment times to 3 decimals (before the VAD mapping).
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The pieces of the VAD's speech segments (`max_speech_duration_s` already
/// 30 s): `collect_chunks` packs them into pieces of at most 30 s without
/// splitting a segment, so piece `p` holds the segments whose start in the
/// concatenated speech lies in `[offset_p, offset_p + duration_p)`.
pub(crate) fn vad_pieces(speech: &[SpeechChunk]) -> Vec<Piece> {
    // The packing only (no audio): pieces are cut from the input lazily.
    let packed = vkw_vad::collect_chunks(&[], speech, CHUNK_SECONDS);
    piece_ranges(speech, &packed)
        .into_iter()
        .zip(&packed)
        .map(|(r, p)| Piece {
            ranges: speech[r].iter().map(|c| c.start..c.end).collect(),
            offset: p.offset,
            duration: p.duration,
        })
        .collect()
}

/// Which speech segments make up each packed piece.
pub(crate) fn piece_ranges(speech: &[SpeechChunk], pieces: &[CollectedChunk]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut next = 0;
    let mut cum = 0usize;
    for p in pieces {
        let end = ((p.offset + p.duration) * RATE).round() as usize;
        let first = next;
        while next < speech.len() && cum < end {
            cum += speech[next].len();
            next += 1;
        }
        out.push(first..next);
    }
    out
}

/// The pipeline with `clip_timestamps`: the clips (seconds `start,end,…`;
/// a missing last end = the end of the audio) take the VAD's place, each one
/// piece (or, past 30 s, consecutive 30 s pieces where FW would keep only
/// the first 30 s) timed from its own start in the input.
pub(crate) fn clip_pieces(seconds: &[f64], n: usize) -> Result<Vec<Piece>, DecodeError> {
    let step = (CHUNK_SECONDS * RATE) as usize;
    Ok(clip_samples(seconds, n)?
        .into_iter()
        .flat_map(|c| {
            (c.start..c.end)
                .step_by(step)
                .map(move |a| a..(a + step).min(c.end))
        })
        .map(|r| Piece {
            offset: r.start as f64 / RATE,
            duration: r.len() as f64 / RATE,
            ranges: vec![r],
        })
        .collect())
}

/// `clip_timestamps` seconds → sample ranges of an input of `n` samples, as
/// FW's batched pipeline converts them (`int(seconds · 16000)`), paired up
/// (an odd last start runs to the end), clamped to the input; empty clips
/// are dropped. Clips must be in order and must not overlap.
pub(crate) fn clip_samples(seconds: &[f64], n: usize) -> Result<Vec<SpeechChunk>, DecodeError> {
    let points = seconds
        .iter()
        .map(|&s| ((s * RATE) as usize).min(n))
        .collect();
    let pairs = crate::options::clip_pairs(points, n);
    let mut out: Vec<SpeechChunk> = Vec::with_capacity(pairs.len());
    for (i, (start, end)) in pairs.into_iter().enumerate() {
        if end < start {
            return Err(DecodeError::InvalidOption(format!(
                "clip_timestamps: clip {} ends ({} s) before it starts ({} s)",
                i + 1,
                seconds.get(2 * i + 1).copied().unwrap_or(n as f64 / RATE),
                seconds.get(2 * i).copied().unwrap_or(0.0)
            )));
        }
        if out.last().is_some_and(|prev| start < prev.end) {
            return Err(DecodeError::InvalidOption(format!(
                "clip_timestamps: clip {} starts before the previous one ends; \
                 in batched mode clips must be in order and must not overlap",
                i + 1
            )));
        }
        if end > start {
            out.push(SpeechChunk { start, end });
        }
    }
    Ok(out)
}

impl<'a> Batched<'a> {
    /// Start over `pieces` of `audio` and choose the run's language from
    /// them (§6.13: detection on the concatenated piece features plus one
    /// dummy frame of −1.5).
    pub fn new<B: Backend>(
        backend: &B,
        model: &WhisperModel,
        audio: Pcm<'a>,
        pieces: Vec<Piece>,
        batch_size: usize,
        run: &Run,
    ) -> Result<(Self, LanguageChoice), DecodeError> {
        let opts = &run.opts;
        let tk = &model.tokenizer;
        let sp = tk.special;
        let n_mels = backend.hparams().n_mels;
        // Frame-major columns of the concatenated features, made on the first
        // request (only when the language is detected).
        let mut cols: Option<Vec<Vec<f32>>> = None;
        let want = WINDOW_FRAMES.saturating_mul(opts.language_detection_segments);
        let choice = choose_language(
            tk,
            opts,
            |k| {
                let cols = cols.get_or_insert_with(|| {
                    let mut cols = Vec::new();
                    for p in &pieces {
                        if cols.len() >= want {
                            break;
                        }
                        let (f, frames) = piece_features(&piece_audio(&audio, p), n_mels);
                        for t in 0..frames.min(want - cols.len()) {
                            cols.push((0..n_mels).map(|m| f[m * frames + t]).collect());
                        }
                    }
                    if cols.len() < want {
                        cols.push(vec![-1.5; n_mels]);
                    }
                    cols
                });
                let start = k * WINDOW_FRAMES;
                if start >= cols.len() {
                    return Ok(None);
                }
                let end = (start + WINDOW_FRAMES).min(cols.len());
                let mut mel = vec![0.0f32; n_mels * WINDOW_FRAMES];
                for (t, col) in cols[start..end].iter().enumerate() {
                    for (m, &x) in col.iter().enumerate() {
                        mel[m * WINDOW_FRAMES + t] = x;
                    }
                }
                Ok(Some(mel))
            },
            |w| {
                run.cancel.check()?;
                detect_mel(backend, model, w)
            },
        )?;
        let mut rules = run.rules.clone();
        rules.timestamps = (!opts.without_timestamps).then_some(TimestampRules {
            max_initial: sp.timestamp_begin.saturating_add(CT2_MAX_INITIAL_INDEX),
            ..run.timestamp_rules
        });
        // FW: previous_tokens = tokenizer.encode(initial_prompt), no leading space.
        let previous = match &opts.initial_prompt {
            Some(p) => tk.encode(p).map_err(DecodeError::Tokenizer)?,
            None => Vec::new(),
        };
        let mut this = Self {
            audio,
            pieces,
            next: 0,
            batch_size,
            rules,
            previous,
            max_length: MAX_LENGTH,
            align_sot: tk.sot_sequence(Some(&choice.language), opts.task),
            language: choice.language.clone(),
            last_speech_timestamp: 0.0,
        };
        let base = this.prompt(model, run, &choice.language);
        if let Some(n) = opts.max_new_tokens {
            this.max_length = base.len() + n;
        }
        if this.max_length > MAX_LENGTH {
            return Err(DecodeError::InvalidOption(format!(
                "the prompt ({} tokens) plus max_new_tokens exceeds {MAX_LENGTH}",
                base.len()
            )));
        }
        Ok((this, choice))
    }

    fn prompt(&self, model: &WhisperModel, run: &Run, language: &str) -> Vec<u32> {
        let tk = &model.tokenizer;
        build_prompt(
            &tk.special,
            &tk.sot_sequence(Some(language), run.opts.task),
            &PromptParts {
                previous_tokens: &self.previous,
                hotwords: run.hotwords.as_deref(),
                prefix: None,
                without_timestamps: run.opts.without_timestamps,
            },
        )
    }
}

impl Windows for Batched<'_> {
    fn fraction(&self) -> f64 {
        if self.pieces.is_empty() {
            1.0
        } else {
            self.next as f64 / self.pieces.len() as f64
        }
    }

    /// Decode the next batch of pieces.
    fn step<B: Backend>(&mut self, backend: &B, model: &WhisperModel, run: &mut Run) -> Step {
        let first = self.next;
        let end = (first + self.batch_size).min(self.pieces.len());
        if first >= end {
            return Ok(None);
        }
        run.cancel.check()?;
        self.next = end;
        // Owned, so the run can number segments while the options are read.
        let opts = run.opts.clone();
        let tk = &model.tokenizer;
        let sp = tk.special;
        let n_mels = backend.hparams().n_mels;
        let batch = &self.pieces[first..end];
        let mut mel = Vec::with_capacity(batch.len() * n_mels * WINDOW_FRAMES);
        for p in batch {
            let (f, frames) = piece_features(&piece_audio(&self.audio, p), n_mels);
            mel.extend(pad_or_trim(&f, n_mels, frames));
        }
        let enc = backend.encode(&mel, batch.len())?;
        drop(mel);
        let mut prompts = Vec::with_capacity(batch.len());
        for w in 0..batch.len() {
            let lang = if opts.multilingual && sp.multilingual {
                let top = detect(backend, model, &enc, w)?.into_iter().next();
                top.map_or(self.language.clone(), |(l, _)| l)
            } else {
                self.language.clone()
            };
            prompts.push(self.prompt(model, run, &lang));
        }
        let windows: Vec<usize> = (0..batch.len()).collect();
        let params = SearchParams {
            beam_size: opts.beam_size,
            patience: opts.patience,
            length_penalty: opts.length_penalty,
            num_hypotheses: 1,
            // CT2's default sampling_topk = 1: arg-max whatever the temperature.
            temperature: 0.0,
            max_length: self.max_length,
        };
        let outs = generate(
            backend,
            &enc,
            &windows,
            &prompts,
            &sp,
            tk.vocab_size(),
            &self.rules,
            &params,
            &mut run.rng,
            &run.cancel,
        )?;
        let temperature = opts.temperatures.first().copied().unwrap_or(0.0);
        let mut out = Vec::new();
        for (w, (piece, g)) in batch.iter().zip(outs).enumerate() {
            let Some(best) = g.hypotheses.into_iter().next() else {
                continue;
            };
            let segment_size = (piece.duration.ceil() * 100.0) as usize;
            let seek = (piece.offset * 100.0) as usize;
            let place = WindowPlace {
                time_offset: piece.offset,
                segment_size,
                segment_duration: piece.duration,
                seek: 0,
            };
            let (mut window, _) = split_window(
                &best.tokens,
                &best.token_logprobs,
                sp.timestamp_begin,
                &place,
            );
            if opts.word_timestamps {
                // FW add_word_timestamps over the batch's pieces: the run's SOT
                // sequence and language, times from `seek`, the end of speech
                // carried from piece to piece and batch to batch.
                self.last_speech_timestamp = align_words(
                    backend,
                    model,
                    &enc,
                    &mut window,
                    &WordsInput {
                        sot_sequence: &self.align_sot,
                        language: &self.language,
                        window: w,
                        segment_size,
                        seek,
                        last_speech_timestamp: self.last_speech_timestamp,
                    },
                    &opts,
                )?;
            }
            let facts = WindowFacts {
                seek,
                temperature,
                avg_logprob: avg_logprob(best.score, best.tokens.len(), opts.length_penalty),
                compression_ratio: None,
                no_speech_prob: f64::from(g.no_speech_prob),
            };
            for mut s in window {
                s.start = round3(s.start);
                s.end = round3(s.end);
                let text = tk.decode(&s.tokens);
                out.push(run.segment(s, text, &facts, tk));
            }
        }
        Ok(Some(out))
    }
}

/// A piece's samples as f32, cut from the input.
fn piece_audio(audio: &Pcm<'_>, piece: &Piece) -> Vec<f32> {
    let mut out = Vec::with_capacity((piece.duration * RATE) as usize + 1);
    for r in &piece.ranges {
        audio.extend_f32(r.clone(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(start: usize, end: usize) -> SpeechChunk {
        SpeechChunk { start, end }
    }

    #[test]
    fn pieces_map_to_their_speech_segments() {
        // 12 s + 10 s fit one 30 s piece; the 15 s segment opens the next.
        let speech = [
            c(0, 192_000),
            c(200_000, 360_000),
            c(400_000, 640_000),
            c(700_000, 716_000),
        ];
        let pieces = vkw_vad::collect_chunks(&[], &speech, 30.0);
        assert_eq!(pieces.len(), 2);
        assert_eq!(piece_ranges(&speech, &pieces), vec![0..2, 2..4]);
        let none = vkw_vad::collect_chunks(&[], &[], 30.0);
        assert_eq!(piece_ranges(&[], &none), vec![0..0]);
        let p = vad_pieces(&speech);
        assert_eq!(p[0].ranges, vec![0..192_000, 200_000..360_000]);
        assert_eq!(p[1].ranges, vec![400_000..640_000, 700_000..716_000]);
    }

    #[test]
    fn piece_features_drop_the_last_frame() {
        let (f, frames) = piece_features(&vec![0.0; 16_000], 80);
        assert_eq!(frames, 100);
        assert_eq!(f.len(), 80 * 100);
        assert_eq!(pad_or_trim(&f, 80, frames).len(), 80 * WINDOW_FRAMES);
    }

    #[test]
    fn clip_timestamps_become_sample_ranges() {
        let n = 16_000 * 100;
        let r = |v: &[f64]| {
            clip_samples(v, n)
                .unwrap()
                .iter()
                .map(|c| (c.start, c.end))
                .collect::<Vec<_>>()
        };
        // int(seconds · 16000) as FW; an odd last start runs to the end.
        assert_eq!(r(&[1.0, 9.5]), vec![(16_000, 152_000)]);
        assert_eq!(r(&[0.25, 1.0, 90.0]), vec![(4_000, 16_000), (1_440_000, n)]);
        assert_eq!(r(&[]), vec![(0, n)]);
        // Clamped to the input; empty clips dropped.
        assert_eq!(r(&[99.0, 200.0, 300.0]), vec![(1_584_000, n)]);
        assert_eq!(r(&[5.0, 5.0]), Vec::<(usize, usize)>::new());
        let e = clip_samples(&[5.0, 2.0], n).unwrap_err().to_string();
        assert!(
            e.contains("clip 1 ends (2 s) before it starts (5 s)"),
            "{e}"
        );
        let e = clip_samples(&[0.0, 10.0, 5.0, 20.0], n)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("clip 2 starts before the previous one ends"),
            "{e}"
        );
        // A 70 s clip becomes 30 + 30 + 10 s pieces timed from its start.
        let p = clip_pieces(&[5.0, 75.0], n).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[1].offset, p[1].duration), (35.0, 30.0));
        assert_eq!(p[2].ranges, vec![1_040_000..1_200_000]);
    }
}
