//! Beam search exactly as CT2's `BeamSearch::search` (spec §6.8).
//!
//! Per step: each live beam's processed log-probs plus its cumulative score;
//! the best `2B` (beam, token) pairs over all beams; the first `B` become the
//! next beams, except that candidates ending in eot (or any candidate at the
//! last step) are registered as finished and replaced by the next non-eot
//! candidate among positions `B..2B`. Search stops once
//! `round(B · patience)` hypotheses finished (or, with length penalty 0, once
//! the top beam finished), or at the length limit.

use crate::generate::{rank, Hypothesis, StepContext};
use crate::DecodeError;
use rayon::prelude::*;
use vkw_backend::Backend;

/// CT2's score for forced-prefix candidates other than the first.
const PREFIX_PENALTY: f32 = -1e10;

/// A candidate continuation: token, origin beam and cumulative score.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    token: u32,
    origin: usize,
    score: f32,
}

/// The `k` largest values of `xs` as `(value, index)`, best first; ties keep
/// the lower index first. Masked (`-inf`) entries are taken only when fewer
/// than `k` finite values exist.
fn top_k(xs: &[f32], k: usize, out: &mut Vec<(f32, usize)>) {
    out.clear();
    if k == 0 {
        return;
    }
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        if out.len() == k {
            // `out` is sorted best first; the last entry is the current k-th.
            if x <= out[k - 1].0 {
                continue;
            }
            out.pop();
        }
        let pos = out.partition_point(|&(v, _)| v >= x);
        out.insert(pos, (x, i));
    }
}

/// One window's beam search, advanced one step at a time, so that the
/// single-window driver ([`beam_search`]) and the batched driver (several
/// windows' beams in one backend state, spec §9.3) run the same rules.
pub(crate) struct BeamSearch {
    beam: usize,
    num_candidates: usize,
    max_candidates: usize,
    allow_early_exit: bool,
    length_penalty: f32,
    step: usize,
    seqs: Vec<Vec<u32>>,
    scores: Vec<f32>,
    inputs: Vec<u32>,
    finished: Vec<Hypothesis>,
    top_beam_finished: bool,
    top: Vec<(f32, usize)>,
    cands: Vec<Candidate>,
    no_speech: Option<f32>,
}

impl BeamSearch {
    /// A search of width `beam` whose step 0 runs the single start hypothesis
    /// (CT2 expands after it).
    pub fn new<B: Backend>(
        ctx: &StepContext<'_, B>,
        beam: usize,
        patience: f32,
        length_penalty: f32,
    ) -> Self {
        let num_candidates = 2 * beam;
        Self {
            beam,
            num_candidates,
            max_candidates: (beam as f32 * patience).round() as usize,
            allow_early_exit: length_penalty == 0.0,
            length_penalty,
            step: 0,
            seqs: vec![Vec::new()],
            scores: vec![0.0],
            inputs: vec![ctx.start],
            finished: Vec::new(),
            top_beam_finished: false,
            top: Vec::with_capacity(num_candidates + 1),
            cands: Vec::with_capacity(num_candidates),
            no_speech: None,
        }
    }

    /// The live hypotheses' next input tokens (one per backend sequence).
    pub fn inputs(&self) -> &[u32] {
        &self.inputs
    }

    /// Turn the raw logits of live hypothesis `i` into its candidates'
    /// cumulative scores (rules, log-softmax, plus the beam's score). Rows
    /// are independent, so callers may run them in parallel.
    pub fn process_row<B: Backend>(&self, ctx: &StepContext<'_, B>, i: usize, row: &mut [f32]) {
        ctx.log_probs(row, &self.seqs[i]);
        let s = self.scores[i];
        if s != 0.0 {
            row.iter_mut().for_each(|x| *x += s);
        }
    }

    /// Record the step-0 no-speech probability from the raw logits of the
    /// start hypothesis (call before [`BeamSearch::process_row`]).
    pub fn observe_raw<B: Backend>(&mut self, ctx: &StepContext<'_, B>, raw_row: &[f32]) {
        if self.step == 0 {
            self.no_speech = ctx.no_speech_from(raw_row);
        }
    }

    /// Finish a step from the processed rows of the live hypotheses
    /// (`[inputs().len(), vocab]`). Returns `None` when the search is done,
    /// else the origin (live-hypothesis index) of each next hypothesis, for
    /// [`Backend::reorder`].
    pub fn advance<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        processed: &[f32],
    ) -> Option<Vec<usize>> {
        let v = ctx.vocab;
        let step = self.step;
        let beam = self.beam;
        let prefix_len = ctx.prefix.len();
        let n = self.seqs.len();
        top_k(&processed[..n * v], self.num_candidates, &mut self.top);
        let cands = &mut self.cands;
        cands.clear();
        cands.extend(self.top.iter().map(|&(score, flat)| Candidate {
            token: (flat % v) as u32,
            origin: flat / v,
            score,
        }));
        // CT2 `update_sample_with_prefix` (only when a prefix exists).
        if prefix_len > 0 && step <= prefix_len {
            for (k, c) in cands.iter_mut().enumerate() {
                if step < prefix_len {
                    c.token = ctx.prefix[step];
                    c.score = if k == 0 { 0.0 } else { PREFIX_PENALTY };
                    c.origin = 0;
                } else if k > 0 && c.token == ctx.eot {
                    // First free step: eot is penalised in secondary beams.
                    c.token = 0;
                    c.score = PREFIX_PENALTY;
                }
            }
        }

        let last_step = step + 1 == ctx.max_steps;
        let mut next: Vec<usize> = Vec::with_capacity(beam);
        let mut secondary = beam;
        for k in 0..beam.min(cands.len()) {
            let c = cands[k];
            let mut pick = k;
            if (c.token == ctx.eot && step >= prefix_len) || last_step {
                if k == 0 {
                    self.top_beam_finished = true;
                }
                let mut tokens = self.seqs[c.origin].clone();
                if c.token != ctx.eot {
                    tokens.push(c.token);
                }
                self.finished
                    .push(Hypothesis::new(tokens, c.score, self.length_penalty));
                if let Some(j) = (secondary..cands.len()).find(|&j| cands[j].token != ctx.eot) {
                    pick = j;
                    secondary = j + 1;
                }
            }
            next.push(pick);
        }

        let done = last_step
            || if self.allow_early_exit {
                self.top_beam_finished && !self.finished.is_empty()
            } else {
                self.finished.len() >= self.max_candidates
            };
        self.step += 1;
        if done {
            return None;
        }

        let origins: Vec<usize> = next.iter().map(|&j| cands[j].origin).collect();
        self.seqs = next
            .iter()
            .map(|&j| {
                let mut s = self.seqs[cands[j].origin].clone();
                s.push(cands[j].token);
                s
            })
            .collect();
        self.scores = next.iter().map(|&j| cands[j].score).collect();
        self.inputs = next.iter().map(|&j| cands[j].token).collect();
        Some(origins)
    }

    /// The finished hypotheses, best first, and the step-0 no-speech probability.
    pub fn finish(mut self) -> (Vec<Hypothesis>, Option<f32>) {
        rank(&mut self.finished);
        (self.finished, self.no_speech)
    }
}

/// Run beam search of width `beam` from the context's start token.
pub(crate) fn beam_search<B: Backend>(
    ctx: &StepContext<'_, B>,
    state: &mut B::State,
    beam: usize,
    patience: f32,
    length_penalty: f32,
) -> Result<(Vec<Hypothesis>, Option<f32>), DecodeError> {
    let v = ctx.vocab;
    let mut search = BeamSearch::new(ctx, beam, patience, length_penalty);
    let mut logits = Vec::new();
    for _ in 0..ctx.max_steps {
        ctx.step(state, search.inputs(), &mut logits)?;
        search.observe_raw(ctx, &logits[..v]);
        let n = search.inputs().len();
        // Each hypothesis's row is processed independently (several passes
        // over the vocabulary), so rows run in parallel while the backend's
        // threads are idle between steps.
        let rows = &mut logits[..n * v];
        if n > 1 {
            rows.par_chunks_mut(v)
                .enumerate()
                .for_each(|(i, row)| search.process_row(ctx, i, row));
        } else {
            search.process_row(ctx, 0, rows);
        }
        match search.advance(ctx, &logits[..n * v]) {
            Some(origins) => ctx.backend.reorder(state, &origins)?,
            None => break,
        }
    }
    Ok(search.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let mut out = Vec::new();
        top_k(&[1.0, 5.0, 3.0, 5.0, f32::NEG_INFINITY, 4.0], 3, &mut out);
        assert_eq!(out, vec![(5.0, 1), (5.0, 3), (4.0, 5)]);
        top_k(&[f32::NEG_INFINITY, 2.0], 2, &mut out);
        assert_eq!(out, vec![(2.0, 1), (f32::NEG_INFINITY, 0)]);
    }
}
