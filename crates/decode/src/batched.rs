//! Batched transcription: faster-whisper's `BatchedInferencePipeline`
//! (spec §9.3).
//!
//! The caller packs the speech into chunks of at most 30 s (VAD segments
//! through `collect_chunks`) and supplies each chunk's log-mel (computed on
//! the chunk alone, last frame dropped). Chunks are encoded `batch_size` at a
//! time and decoded together: the beams of every window of a batch live in
//! one backend state ([`Backend::start_batch`]), so one decoder step serves
//! all of them. What differs from the sequential path, as in FW 1.2.1: only
//! the first temperature (no fallback), no conditioning on previous text,
//! the prompt built once from `initial_prompt` encoded **without** a leading
//! space, no prefix, no no-speech skipping, and each chunk's segments timed
//! from the chunk's offset in the concatenated speech (the caller maps them
//! back to the original audio).

use crate::beam::BeamSearch;
use crate::fallback::compression_ratio;
use crate::generate::{rank, Hypothesis, PromptSplit, StepContext};
use crate::language::{choose, detect};
use crate::logits::{argmax, softmax_prob, suppressed_tokens, LogitRules, TimestampRules};
use crate::prompt::{build_prompt, PromptParts, MAX_LENGTH};
use crate::transcribe::WINDOW_FRAMES;
use crate::words::{add_word_timestamps, find_alignment, AlignInput, WindowSegment};
use crate::{DecodeError, TranscribeOptions, Transcriber};
use rayon::prelude::*;
use vkw_backend::{Backend, LogitsAt};
use vkw_segments::{split_by_timestamps, Segment, TranscriptionInfo};

/// CT2's default `max_initial_timestamp_index`: the batched pipeline does not
/// pass its own (spec §9.3).
const CT2_MAX_INITIAL_INDEX: u32 = 50;

/// One packed chunk of speech (`collect_chunks` metadata, spec §9.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchChunk {
    /// Start of the chunk in the concatenated speech, seconds (FW `offset`).
    pub offset: f64,
    /// Seconds of speech in the chunk (FW `duration`).
    pub duration: f64,
}

/// A chunk's log-mel `[n_mels, frames]` (row-major) and its frame count.
pub type ChunkFeatures = (Vec<f32>, usize);

/// The best hypothesis of one window and its no-speech probability.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowOutput {
    /// Tokens (start token and eot excluded).
    pub tokens: Vec<u32>,
    /// CT2's normalised score.
    pub score: f32,
    /// No-speech probability (§6.6).
    pub no_speech_prob: f32,
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

/// Greedy search of one window (beam size 1; CT2's `sampling_topk = 1`
/// makes any temperature arg-max), stepped by the batched driver.
struct Greedy {
    seq: Vec<u32>,
    cum: f32,
    input: u32,
    no_speech: Option<f32>,
    done: Option<Hypothesis>,
}

impl Greedy {
    /// One step from the raw logits `row`; false once the window finished.
    fn step<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        step: usize,
        row: &mut [f32],
        length_penalty: f32,
    ) -> bool {
        if step == 0 {
            self.no_speech = ctx.no_speech_from(row);
        }
        ctx.log_probs(row, &self.seq);
        let mut token = argmax(row) as u32;
        let mut score = row[token as usize];
        if let Some(&forced) = ctx.prefix.get(step) {
            // §6.2: the forced prefix is emitted with a score of 0.
            token = forced;
            score = 0.0;
        }
        let is_eot = token == ctx.eot;
        if !is_eot {
            self.seq.push(token);
        }
        self.cum += score;
        if (is_eot && step >= ctx.prefix.len()) || step + 1 == ctx.max_steps {
            let tokens = std::mem::take(&mut self.seq);
            self.done = Some(Hypothesis::new(tokens, self.cum, length_penalty));
            return false;
        }
        self.input = token;
        true
    }
}

/// Decode windows `0..prompts.len()` of `enc` together, window `w` with
/// `prompts[w]` (all of one layout, §6.1), as CT2's batched `generate` does:
/// beam search when `beam_size > 1`, else arg-max.
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate_batch<B: Backend>(
    backend: &B,
    enc: &B::Encoded,
    prompts: &[Vec<u32>],
    special: &vkw_model::SpecialTokens,
    vocab: usize,
    rules: &LogitRules,
    opts: &TranscribeOptions,
    max_length: usize,
) -> Result<Vec<WindowOutput>, DecodeError> {
    let n = prompts.len();
    let Some(first) = prompts.first() else {
        return Ok(Vec::new());
    };
    let split = PromptSplit::new(first, special)?;
    if prompts
        .iter()
        .any(|p| p.len() != first.len() || PromptSplit::new(p, special).ok() != Some(split.clone()))
    {
        return Err(DecodeError::InvalidInput(
            "batched prompts must share one layout".into(),
        ));
    }
    let indices: Vec<usize> = (0..n).collect();
    let mut state = backend.start_batch(enc, &indices)?;
    let mut logits = Vec::new();
    let mut no_speech: Vec<Option<f32>> = vec![None; n];
    let pl = split.prompt_length;
    let (start_at, start_step) = if pl == 1 { (0, 0) } else { (pl - 1, pl - 1) };
    if pl > 1 {
        // The prompt pre-pass of every window in one call (§6.2).
        let pre: Vec<u32> = prompts.iter().flat_map(|p| p[..pl - 1].to_vec()).collect();
        let at = if split.sot_is_start_token() {
            LogitsAt::Last
        } else {
            LogitsAt::Index(split.sot_index)
        };
        backend.decode(&mut state, &pre, pl - 1, at, &mut logits)?;
        if logits.len() != n * vocab {
            return Err(DecodeError::LogitsShape {
                got: logits.len(),
                expected: n * vocab,
            });
        }
        if !split.sot_is_start_token() {
            for (w, row) in logits.chunks(vocab).enumerate() {
                no_speech[w] = Some(softmax_prob(row, special.no_speech as usize));
            }
        }
    }
    let max_steps = (max_length / 2).min(max_length.saturating_sub(start_step));
    if max_steps == 0 {
        return Err(DecodeError::InvalidOption(
            "the prompt leaves no room for generated tokens".into(),
        ));
    }
    let ctxs: Vec<StepContext<'_, B>> = prompts
        .iter()
        .map(|p| StepContext {
            backend,
            rules,
            start: p[start_at],
            prefix: &p[start_at + 1..],
            max_steps,
            eot: special.eot,
            vocab,
            no_speech_at_step0: split.sot_is_start_token().then_some(special.no_speech),
        })
        .collect();
    let hyps = if opts.beam_size > 1 {
        run_beams(&ctxs, &mut state, opts, &mut logits)?
    } else {
        run_greedy(&ctxs, &mut state, opts.length_penalty, &mut logits)?
    };
    hyps.into_iter()
        .zip(no_speech)
        .map(|((mut h, step0), pre)| {
            rank(&mut h);
            let best = h.into_iter().next().ok_or_else(|| {
                DecodeError::InvalidInput("decoding produced no hypothesis".into())
            })?;
            Ok(WindowOutput {
                tokens: best.tokens,
                score: best.score,
                no_speech_prob: pre.or(step0).unwrap_or(0.0),
            })
        })
        .collect()
}

/// Language, its probability, and all probabilities when detected.
type LanguageChoice = (String, f64, Option<Vec<(String, f64)>>);

/// Per-window hypotheses and step-0 no-speech probabilities.
type WindowHyps = Vec<(Vec<Hypothesis>, Option<f32>)>;

/// Beam search of every window in one state: the live beams of the windows
/// still searching are consecutive rows, window by window.
fn run_beams<B: Backend>(
    ctxs: &[StepContext<'_, B>],
    state: &mut B::State,
    opts: &TranscribeOptions,
    logits: &mut Vec<f32>,
) -> Result<WindowHyps, DecodeError> {
    let v = ctxs[0].vocab;
    let backend = ctxs[0].backend;
    let mut searches: Vec<BeamSearch> = ctxs
        .iter()
        .map(|c| BeamSearch::new(c, opts.beam_size, opts.patience, opts.length_penalty))
        .collect();
    let mut active: Vec<usize> = (0..searches.len()).collect();
    let mut inputs = Vec::new();
    while !active.is_empty() {
        inputs.clear();
        // (window, row within the window) of every state row.
        let mut rows: Vec<(usize, usize)> = Vec::new();
        for &w in &active {
            let ins = searches[w].inputs();
            inputs.extend_from_slice(ins);
            rows.extend((0..ins.len()).map(|i| (w, i)));
        }
        backend.decode(state, &inputs, 1, LogitsAt::Last, logits)?;
        if logits.len() != rows.len() * v {
            return Err(DecodeError::LogitsShape {
                got: logits.len(),
                expected: rows.len() * v,
            });
        }
        for (r, &(w, i)) in rows.iter().enumerate() {
            if i == 0 {
                searches[w].observe_raw(&ctxs[w], &logits[r * v..(r + 1) * v]);
            }
        }
        // Every row of every window is independent: one parallel pass.
        logits
            .par_chunks_mut(v)
            .zip(rows.par_iter())
            .for_each(|(row, &(w, i))| searches[w].process_row(&ctxs[w], i, row));
        let mut origins = Vec::new();
        let mut still = Vec::with_capacity(active.len());
        let mut first_row = 0;
        for &w in &active {
            let n = searches[w].inputs().len();
            let block = &logits[first_row * v..(first_row + n) * v];
            if let Some(local) = searches[w].advance(&ctxs[w], block) {
                origins.extend(local.iter().map(|&o| first_row + o));
                still.push(w);
            }
            first_row += n;
        }
        active = still;
        if !active.is_empty() {
            backend.reorder(state, &origins)?;
        }
    }
    Ok(searches.into_iter().map(BeamSearch::finish).collect())
}

/// Arg-max decoding of every window in one state; finished windows leave it.
fn run_greedy<B: Backend>(
    ctxs: &[StepContext<'_, B>],
    state: &mut B::State,
    length_penalty: f32,
    logits: &mut Vec<f32>,
) -> Result<WindowHyps, DecodeError> {
    let v = ctxs[0].vocab;
    let backend = ctxs[0].backend;
    let mut g: Vec<Greedy> = ctxs
        .iter()
        .map(|c| Greedy {
            seq: Vec::new(),
            cum: 0.0,
            input: c.start,
            no_speech: None,
            done: None,
        })
        .collect();
    let mut active: Vec<usize> = (0..g.len()).collect();
    for step in 0..ctxs[0].max_steps {
        let inputs: Vec<u32> = active.iter().map(|&w| g[w].input).collect();
        backend.decode(state, &inputs, 1, LogitsAt::Last, logits)?;
        if logits.len() != inputs.len() * v {
            return Err(DecodeError::LogitsShape {
                got: logits.len(),
                expected: inputs.len() * v,
            });
        }
        let mut keep = Vec::with_capacity(active.len());
        for (r, &w) in active.iter().enumerate() {
            let row = &mut logits[r * v..(r + 1) * v];
            if g[w].step(&ctxs[w], step, row, length_penalty) {
                keep.push(r);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() != active.len() {
            backend.reorder(state, &keep)?;
            active = keep.iter().map(|&r| active[r]).collect();
        }
    }
    Ok(g.into_iter()
        .map(|w| (w.done.into_iter().collect(), w.no_speech))
        .collect())
}

impl<B: Backend> Transcriber<'_, B> {
    /// Batched transcription of packed speech chunks (spec §9.3).
    ///
    /// `features(i)` gives chunk `i`'s log-mel (computed on the chunk alone,
    /// last frame dropped, FW `feature_extractor(chunk)[..., :-1]`); it is
    /// called once per chunk when its batch is encoded (and for the first
    /// chunks again by language detection), so only `batch_size` windows of
    /// features are held at a time. Segment times are in the concatenated
    /// speech (chunk offset + position); map them back to the original audio
    /// with the VAD's timestamp map. `duration` and `duration_after_vad` go
    /// into the returned info.
    #[allow(clippy::too_many_arguments)]
    pub fn transcribe_batched(
        &self,
        chunks: &[BatchChunk],
        features: &mut dyn FnMut(usize) -> Result<ChunkFeatures, DecodeError>,
        batch_size: usize,
        duration: f64,
        duration_after_vad: f64,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        opts.validate()?;
        if batch_size == 0 {
            return Err(DecodeError::InvalidOption("batch_size must be > 0".into()));
        }
        let backend = self.backend;
        let model = self.model;
        let n_mels = backend.hparams().n_mels;
        let tk = &model.tokenizer;
        let sp = tk.special;
        let mut get = |i: usize| -> Result<ChunkFeatures, DecodeError> {
            let (f, frames) = features(i)?;
            if f.len() != n_mels * frames {
                return Err(DecodeError::InvalidInput(format!(
                    "chunk {i}: features hold {} values, expected {n_mels}x{frames}",
                    f.len()
                )));
            }
            Ok((f, frames))
        };
        // No speech at all: FW has no features and emits nothing.
        let chunks: &[BatchChunk] = if duration_after_vad > 0.0 {
            chunks
        } else {
            &[]
        };
        let (language, language_probability, all_language_probs) =
            self.batched_language(chunks.len(), &mut get, opts)?;
        let info = TranscriptionInfo {
            language: language.clone(),
            language_probability,
            duration,
            duration_after_vad,
            all_language_probs,
        };

        let rules = LogitRules {
            repetition_penalty: opts.repetition_penalty,
            no_repeat_ngram_size: opts.no_repeat_ngram_size,
            suppress: suppressed_tokens(opts.suppress_tokens.as_deref(), &sp, || {
                tk.non_speech_tokens()
            }),
            suppress_begin: if opts.suppress_blank {
                model.config.suppress_ids_begin.clone()
            } else {
                Vec::new()
            },
            timestamps: (!opts.without_timestamps).then_some(TimestampRules {
                eot: sp.eot,
                no_timestamps: sp.no_timestamps,
                begin: sp.timestamp_begin,
                end: sp.timestamp_end,
                max_initial: sp.timestamp_begin.saturating_add(CT2_MAX_INITIAL_INDEX),
            }),
        };
        // FW: previous_tokens = tokenizer.encode(initial_prompt), no leading space.
        let previous = match &opts.initial_prompt {
            Some(p) => tk.encode(p).map_err(DecodeError::Tokenizer)?,
            None => Vec::new(),
        };
        let hotwords = match opts.hotwords.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => Some(crate::prompt::encode_context(tk, h)?),
            None => None,
        };
        let prompt_for = |lang: &str| {
            build_prompt(
                &sp,
                &tk.sot_sequence(Some(lang), opts.task),
                &PromptParts {
                    previous_tokens: &previous,
                    hotwords: hotwords.as_deref(),
                    prefix: None,
                    without_timestamps: opts.without_timestamps,
                },
            )
        };
        let base_prompt = prompt_for(&language);
        let max_length = match opts.max_new_tokens {
            Some(n) => base_prompt.len() + n,
            None => MAX_LENGTH,
        };
        if max_length > MAX_LENGTH {
            return Err(DecodeError::InvalidOption(format!(
                "the prompt ({} tokens) plus max_new_tokens exceeds {MAX_LENGTH}",
                base_prompt.len()
            )));
        }
        let temperature = opts.temperatures.first().copied().unwrap_or(0.0);
        let per_window_language = opts.multilingual && sp.multilingual;
        let mut idx = 0usize;
        // Word alignment uses the run's tokenizer (its language), FW
        // `tokenizer.sot_sequence`, whatever a window's prompt said.
        let align_sot = tk.sot_sequence(Some(&language), opts.task);
        let mut last_speech_timestamp = 0.0f64;
        for (b, batch) in chunks.chunks(batch_size).enumerate() {
            let first = b * batch_size;
            let mut mel = Vec::with_capacity(batch.len() * n_mels * WINDOW_FRAMES);
            for i in first..first + batch.len() {
                let (f, frames) = get(i)?;
                mel.extend(pad_or_trim(&f, n_mels, frames));
            }
            let enc = backend.encode(&mel, batch.len())?;
            drop(mel);
            let mut prompts = Vec::with_capacity(batch.len());
            for w in 0..batch.len() {
                if per_window_language {
                    let top = detect(backend, model, &enc, w)?.into_iter().next();
                    let lang = top.map_or(language.clone(), |(l, _)| l);
                    prompts.push(prompt_for(&lang));
                } else {
                    prompts.push(base_prompt.clone());
                }
            }
            let outs = generate_batch(
                backend,
                &enc,
                &prompts,
                &sp,
                tk.vocab_size(),
                &rules,
                opts,
                max_length,
            )?;
            for (w, (chunk, out)) in batch.iter().zip(outs).enumerate() {
                let n = out.tokens.len() as f64;
                // FW: cum_logprob = score · len^length_penalty; avg = cum / (len + 1).
                let cum = f64::from(out.score) * n.powf(f64::from(opts.length_penalty));
                let avg_logprob = cum / (n + 1.0);
                let segment_size = (chunk.duration.ceil() * 100.0) as usize;
                let split = split_by_timestamps(
                    &out.tokens,
                    sp.timestamp_begin,
                    chunk.offset,
                    segment_size,
                    chunk.duration,
                    0,
                );
                let seek = (chunk.offset * 100.0) as usize;
                let mut window: Vec<WindowSegment> = split
                    .segments
                    .into_iter()
                    .map(|s| WindowSegment {
                        start: s.start,
                        end: s.end,
                        tokens: s.tokens,
                        words: Vec::new(),
                    })
                    .collect();
                if opts.word_timestamps {
                    // FW `add_word_timestamps` over the batch's chunks: the
                    // tokenizer's SOT sequence and language, `segment_size`
                    // mel frames, times from `seek`, and the end of speech
                    // carried from chunk to chunk and batch to batch.
                    let text_tokens: Vec<u32> = window
                        .iter()
                        .flat_map(|s| s.tokens.iter().copied().filter(|&t| t < sp.eot))
                        .collect();
                    let input = AlignInput {
                        sot_sequence: &align_sot,
                        text_tokens: &text_tokens,
                        num_frames: segment_size,
                        language: &language,
                        window: w,
                    };
                    let alignment = find_alignment(backend, model, &enc, &input)?;
                    last_speech_timestamp = add_word_timestamps(
                        &mut window,
                        alignment,
                        seek,
                        sp.eot,
                        &opts.prepend_punctuations,
                        &opts.append_punctuations,
                        last_speech_timestamp,
                    );
                }
                for s in window {
                    let text = tk.decode(&s.tokens);
                    idx += 1;
                    on_segment(&Segment {
                        id: idx,
                        seek,
                        start: round3(s.start),
                        end: round3(s.end),
                        compression_ratio: compression_ratio(&text),
                        text,
                        tokens: s.tokens,
                        temperature: temperature as f32,
                        avg_logprob,
                        no_speech_prob: f64::from(out.no_speech_prob),
                        words: opts.word_timestamps.then_some(s.words),
                    });
                }
            }
        }
        Ok(info)
    }

    /// The language of a batched run (FW: detection on the concatenated
    /// chunk features plus one dummy frame of −1.5, §6.13).
    fn batched_language(
        &self,
        n_chunks: usize,
        get: &mut dyn FnMut(usize) -> Result<ChunkFeatures, DecodeError>,
        opts: &TranscribeOptions,
    ) -> Result<LanguageChoice, DecodeError> {
        let tk = &self.model.tokenizer;
        if !tk.special.multilingual {
            return Ok(("en".into(), 1.0, None));
        }
        if let Some(lang) = &opts.language {
            if tk.language_token(lang).is_none() {
                return Err(DecodeError::InvalidOption(format!(
                    "unknown language '{lang}'"
                )));
            }
            return Ok((lang.clone(), 1.0, None));
        }
        let n_mels = self.backend.hparams().n_mels;
        let want = WINDOW_FRAMES * opts.language_detection_segments.max(1);
        // Frame-major columns of the concatenated features, up to `want` frames.
        let mut cols: Vec<Vec<f32>> = Vec::new();
        let mut i = 0;
        while cols.len() < want && i < n_chunks {
            let (f, frames) = get(i)?;
            for t in 0..frames.min(want - cols.len()) {
                cols.push((0..n_mels).map(|m| f[m * frames + t]).collect());
            }
            i += 1;
        }
        if cols.len() < want {
            cols.push(vec![-1.5; n_mels]);
        }
        let mut windows = Vec::new();
        for start in (0..cols.len()).step_by(WINDOW_FRAMES) {
            let end = (start + WINDOW_FRAMES).min(cols.len());
            let mut mel = vec![0.0f32; n_mels * WINDOW_FRAMES];
            for (t, col) in cols[start..end].iter().enumerate() {
                for (m, &x) in col.iter().enumerate() {
                    mel[m * WINDOW_FRAMES + t] = x;
                }
            }
            let probs = self.detect_language(&mel)?;
            let stop = probs
                .first()
                .is_some_and(|(_, p)| f64::from(*p) > opts.language_detection_threshold);
            windows.push(probs);
            if stop {
                break;
            }
        }
        let d = choose(windows, opts.language_detection_threshold).ok_or_else(|| {
            DecodeError::InvalidInput("no audio to detect the language from".into())
        })?;
        let all = d.all.into_iter().map(|(l, p)| (l, f64::from(p))).collect();
        Ok((d.language, f64::from(d.probability), Some(all)))
    }
}

/// FW rounds batched segment times to 3 decimals (before the VAD mapping).
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// The inputs of a batched run: VAD pieces or clips, and their features.
#[path = "batched_pieces.rs"]
mod pieces;
#[cfg(test)]
use pieces::{chunk_features, clip_samples, piece_ranges};

#[cfg(test)]
#[path = "batched_tests.rs"]
mod tests;
