//! Beam search exactly as CT2's `BeamSearch::search` (spec §6.8).
//!
//! Per step: each live beam's processed log-probs plus its cumulative score;
//! the best `2B` (beam, token) pairs over all beams; the first `B` become the
//! next beams, except that candidates ending in eot (or any candidate at the
//! last step) are registered as finished and replaced by the next non-eot
//! candidate among positions `B..2B`. Search stops once
//! `round(B · patience)` hypotheses finished (or, with length penalty 0, once
//! the top beam finished), or at the length limit.
//!
//! Follows CTranslate2 4.8.5 `src/decoding.cc` (`BeamSearch::search`,
//! `update_sample_with_prefix`, `finalize_hypothesis_score`).

use crate::generate::{rank, Hypothesis, StepContext};
use crate::logits::top_k;
use vkw_backend::{Backend, Candidate as RowCandidate, RowRule};

/// CT2's score for forced-prefix candidates other than the first.
const PREFIX_PENALTY: f32 = -1e10;

/// A candidate continuation: token, origin beam and cumulative score.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    token: u32,
    origin: usize,
    score: f32,
}

/// One window's beam search, advanced one step at a time by [`super::run`],
/// which steps the beams of one window (sequential mode) or of several
/// windows in one backend state (batched mode, spec §9.3) with the same rules.
pub(crate) struct BeamSearch {
    beam: usize,
    num_candidates: usize,
    max_candidates: usize,
    allow_early_exit: bool,
    length_penalty: f32,
    step: usize,
    seqs: Vec<Vec<u32>>,
    /// Each token's log-probability, parallel to `seqs`.
    lps: Vec<Vec<f32>>,
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
            lps: vec![Vec::new()],
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

    /// Candidates each row needs: the `2B` best of the step overall are
    /// among every row's `2B` best.
    pub fn k(&self) -> usize {
        self.num_candidates
    }

    /// The rule of each live hypothesis' row (with its cumulative score),
    /// appended to `out`, for a backend that applies the rules.
    pub fn row_rules<B: Backend>(&self, ctx: &StepContext<'_, B>, out: &mut Vec<RowRule>) {
        out.extend(
            self.seqs
                .iter()
                .zip(&self.scores)
                .map(|(seq, &s)| ctx.row_rule(seq, s)),
        );
    }

    /// The host path (rules a backend cannot apply): turn the raw logits of
    /// live hypothesis `i` into its candidates' cumulative scores (rules,
    /// log-softmax, plus the beam's score) and keep its best [`Self::k`]
    /// in `cands`. Rows are independent, so callers may run them in
    /// parallel.
    pub fn process_row<B: Backend>(
        &self,
        ctx: &StepContext<'_, B>,
        i: usize,
        row: &mut [f32],
        cands: &mut [RowCandidate],
    ) {
        ctx.log_probs(row, &self.seqs[i]);
        let s = self.scores[i];
        if s != 0.0 {
            row.iter_mut().for_each(|x| *x += s);
        }
        let mut best = Vec::with_capacity(cands.len() + 1);
        top_k(row, cands.len(), &mut best);
        for (c, &(score, token)) in cands.iter_mut().zip(&best) {
            *c = RowCandidate {
                score,
                token: token as u32,
            };
        }
    }

    /// Record the step-0 no-speech probability (of the start hypothesis'
    /// raw logits).
    pub fn set_no_speech(&mut self, p: Option<f32>) {
        if self.step == 0 {
            self.no_speech = p;
        }
    }

    /// Finish a step from the live hypotheses' candidates (`k` per row,
    /// each row's best first, `[inputs().len(), k]`). Returns `None` when
    /// the search is done, else the origin (live-hypothesis index) of each
    /// next hypothesis, for [`Backend::reorder`].
    pub fn advance<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        rows: &[RowCandidate],
        k: usize,
    ) -> Option<Vec<usize>> {
        let v = ctx.vocab;
        let step = self.step;
        let beam = self.beam;
        let prefix_len = ctx.prefix.len();
        let n = self.seqs.len();
        // The best 2B over every row, CT2's order: higher score, then the
        // lower flat index (row · V + token), as a top-k over the rows laid
        // end to end; each row's 2B best hold all of them.
        self.top.clear();
        for (r, row) in rows.chunks(k.max(1)).take(n).enumerate() {
            self.top
                .extend(row.iter().map(|c| (c.score, r * v + c.token as usize)));
        }
        self.top.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        self.top.truncate(self.num_candidates);
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
                let mut lps = self.lps[c.origin].clone();
                if c.token != ctx.eot {
                    tokens.push(c.token);
                    lps.push(c.score - self.scores[c.origin]);
                }
                self.finished
                    .push(Hypothesis::new(tokens, c.score, self.length_penalty).with_logprobs(lps));
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
        self.lps = next
            .iter()
            .map(|&j| {
                let o = cands[j].origin;
                let mut l = self.lps[o].clone();
                l.push(cands[j].score - self.scores[o]);
                l
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
