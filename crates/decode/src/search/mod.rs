//! The one stepper every decoding mode runs (spec §6.7, §6.8): the searches
//! of one or more windows advance together, one backend `decode` and at most
//! one `reorder` per step, whatever the mode — one window in sequential
//! transcription, N windows in batched mode (§9.3), beam search or
//! greedy/sampling in either.
//!
//! At temperature 0 without the repetition penalty or the n-gram ban (what
//! faster-whisper runs by default), a step goes through
//! `Backend::decode_top`: the backend applies the logit rules and returns
//! each row's best candidates (on Vulkan, computed on the GPU: a step reads
//! back a few hundred bytes per row). Otherwise a step reads the rows'
//! logits and applies the same rules here (the CPU reference in
//! `vkw_backend::logits`); sampling draws from the processed rows.

mod beam;
mod sample;

pub(crate) use beam::BeamSearch;
pub(crate) use sample::Rng;
pub(crate) use sample::SampleSearch;

use crate::generate::{Hypothesis, StepContext};
use crate::{CancelToken, DecodeError};
use rayon::prelude::*;
use vkw_backend::{Backend, Candidate, LogitsAt, RowRule, TopK, TopRequest};

/// The search of one window.
pub(crate) enum Search {
    /// CT2's beam search.
    Beam(BeamSearch),
    /// CT2's greedy search (arg-max or sampling, `n` hypotheses).
    Sample(SampleSearch),
}

impl Search {
    fn inputs(&self) -> &[u32] {
        match self {
            Search::Beam(s) => s.inputs(),
            Search::Sample(s) => s.inputs(),
        }
    }

    /// Candidates per row a step needs (beam: 2B; arg-max: 1).
    fn k(&self) -> usize {
        match self {
            Search::Beam(s) => s.k(),
            Search::Sample(_) => 1,
        }
    }

    /// Whether its steps can take ranked candidates (no sampling).
    fn ranks(&self) -> bool {
        match self {
            Search::Beam(_) => true,
            Search::Sample(s) => s.is_argmax(),
        }
    }

    fn row_rules<B: Backend>(&self, ctx: &StepContext<'_, B>, out: &mut Vec<RowRule>) {
        match self {
            Search::Beam(s) => s.row_rules(ctx, out),
            Search::Sample(s) => s.row_rules(ctx, out),
        }
    }

    fn set_no_speech(&mut self, p: Option<f32>) {
        match self {
            Search::Beam(s) => s.set_no_speech(p),
            Search::Sample(s) => s.set_no_speech(p),
        }
    }

    /// The window's hypotheses best first, and its step-0 no-speech probability.
    pub fn finish(self) -> (Vec<Hypothesis>, Option<f32>) {
        match self {
            Search::Beam(s) => s.finish(),
            Search::Sample(s) => s.finish(),
        }
    }
}

/// Whether `origins` keeps every row where it is (no gather needed).
fn is_identity(origins: &[usize], rows: usize) -> bool {
    origins.len() == rows && origins.iter().enumerate().all(|(i, &o)| i == o)
}

/// Run the searches of windows `0..searches.len()` to the end in `state`,
/// whose sequence `w` attends window `w` (one row per window, as
/// `Backend::start_batch` makes it, after any prompt pre-pass). The live rows
/// of the unfinished windows are consecutive, window by window; a finished
/// window's rows leave the state. `cancel` is checked before every step.
pub(crate) fn run<B: Backend>(
    ctxs: &[StepContext<'_, B>],
    searches: &mut [Search],
    state: &mut B::State,
    rng: &mut Rng,
    cancel: &CancelToken,
) -> Result<(), DecodeError> {
    let on_backend =
        ctxs.first().is_some_and(|c| c.rules.on_backend()) && searches.iter().all(Search::ranks);
    run_with(ctxs, searches, state, rng, cancel, on_backend)
}

/// [`run`] with the logit rules applied by the backend (`on_backend`) or
/// on the host.
pub(crate) fn run_with<B: Backend>(
    ctxs: &[StepContext<'_, B>],
    searches: &mut [Search],
    state: &mut B::State,
    rng: &mut Rng,
    cancel: &CancelToken,
    on_backend: bool,
) -> Result<(), DecodeError> {
    let Some(first) = ctxs.first() else {
        return Ok(());
    };
    let (backend, v) = (first.backend, first.vocab);
    // Replicate each window's row for its hypotheses (sampling's best_of).
    let expand: Vec<usize> = searches
        .iter()
        .enumerate()
        .flat_map(|(w, s)| std::iter::repeat_n(w, s.inputs().len()))
        .collect();
    if !is_identity(&expand, searches.len()) {
        backend.reorder(state, &expand)?;
    }
    let k = searches.iter().map(Search::k).max().unwrap_or(1).min(v);
    let mut active: Vec<usize> = (0..searches.len()).collect();
    let mut inputs = Vec::new();
    let mut logits = Vec::new();
    let mut rules: Vec<RowRule> = Vec::new();
    let mut top = TopK::default();
    // (window, row within the window) of every state row.
    let mut rows: Vec<(usize, usize)> = Vec::new();
    let mut step = 0usize;
    while !active.is_empty() {
        cancel.check()?;
        inputs.clear();
        rows.clear();
        for &w in &active {
            let ins = searches[w].inputs();
            inputs.extend_from_slice(ins);
            rows.extend((0..ins.len()).map(|i| (w, i)));
        }
        if on_backend {
            rules.clear();
            for &w in &active {
                searches[w].row_rules(&ctxs[w], &mut rules);
            }
            let req = TopRequest {
                masks: &first.masks,
                rows: &rules,
                k,
                no_speech: first.no_speech_at_step0.filter(|_| step == 0),
            };
            backend.decode_top(state, &inputs, &req, &mut top)?;
            if top.cands.len() != rows.len() * top.k {
                return Err(DecodeError::LogitsShape {
                    got: top.cands.len(),
                    expected: rows.len() * k,
                });
            }
            if step == 0 && top.non_finite {
                // Corrupt weights: stop here rather than decode garbage that
                // may never reach an end of text.
                return Err(DecodeError::NonFinite);
            }
            if step == 0 {
                let mut first_row = 0;
                for &w in &active {
                    let p = top.no_speech.get(first_row).copied();
                    searches[w].set_no_speech(p.filter(|_| req.no_speech.is_some()));
                    first_row += searches[w].inputs().len();
                }
            }
        } else {
            backend.decode(state, &inputs, 1, LogitsAt::Last, &mut logits)?;
            if logits.len() != rows.len() * v {
                return Err(DecodeError::LogitsShape {
                    got: logits.len(),
                    expected: rows.len() * v,
                });
            }
            if step == 0 && logits.iter().any(|x| x.is_nan()) {
                return Err(DecodeError::NonFinite);
            }
            // The raw step-0 row of a window gives its no-speech
            // probability (before the rows are processed in place).
            let mut first_row = 0;
            for &w in &active {
                let n = searches[w].inputs().len();
                if step == 0 {
                    let raw = &logits[first_row * v..(first_row + 1) * v];
                    searches[w].set_no_speech(ctxs[w].no_speech_from(raw));
                }
                first_row += n;
            }
            // Beam rows are independent (rules, log-softmax, plus the
            // beam's score, then its best 2B: several passes over the
            // vocabulary each): one parallel pass over every window's rows.
            // Sampling rows are processed in order inside `advance`, so the
            // random stream does not depend on threads.
            top.k = k;
            top.cands.clear();
            top.cands.resize(
                rows.len() * k,
                Candidate {
                    score: f32::NEG_INFINITY,
                    token: 0,
                },
            );
            logits
                .par_chunks_mut(v)
                .zip(top.cands.par_chunks_mut(k))
                .zip(rows.par_iter())
                .for_each(|((row, cands), &(w, i))| {
                    if let Search::Beam(b) = &searches[w] {
                        b.process_row(&ctxs[w], i, row, cands);
                    }
                });
        }
        let mut origins = Vec::with_capacity(rows.len());
        let mut still = Vec::with_capacity(active.len());
        let mut first_row = 0;
        for &w in &active {
            let n = searches[w].inputs().len();
            let cands = &top.cands[first_row * top.k..(first_row + n) * top.k];
            let next = match &mut searches[w] {
                Search::Beam(b) => b.advance(&ctxs[w], cands, top.k),
                Search::Sample(s) if on_backend => s.advance_top(&ctxs[w], cands, top.k),
                Search::Sample(s) => {
                    let block = &mut logits[first_row * v..(first_row + n) * v];
                    s.advance(&ctxs[w], block, rng)
                }
            };
            if let Some(local) = next {
                origins.extend(local.iter().map(|&o| first_row + o));
                still.push(w);
            }
            first_row += n;
        }
        active = still;
        if !active.is_empty() && !is_identity(&origins, rows.len()) {
            backend.reorder(state, &origins)?;
        }
        step += 1;
    }
    Ok(())
}
