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

/// Run beam search of width `beam` from the context's start token.
pub(crate) fn beam_search<B: Backend>(
    ctx: &StepContext<'_, B>,
    state: &mut B::State,
    beam: usize,
    patience: f32,
    length_penalty: f32,
) -> Result<(Vec<Hypothesis>, Option<f32>), DecodeError> {
    let v = ctx.vocab;
    let num_candidates = 2 * beam;
    let max_candidates = (beam as f32 * patience).round() as usize;
    let allow_early_exit = length_penalty == 0.0;
    let prefix_len = ctx.prefix.len();

    // Step 0 runs the single start hypothesis (CT2 expands after it).
    let mut seqs: Vec<Vec<u32>> = vec![Vec::new()];
    let mut scores: Vec<f32> = vec![0.0];
    let mut inputs: Vec<u32> = vec![ctx.start];
    let mut finished: Vec<Hypothesis> = Vec::new();
    let mut top_beam_finished = false;
    let mut logits = Vec::new();
    let mut top = Vec::with_capacity(num_candidates + 1);
    let mut cands: Vec<Candidate> = Vec::with_capacity(num_candidates);
    let mut no_speech = None;

    for step in 0..ctx.max_steps {
        ctx.step(state, &inputs, &mut logits)?;
        if step == 0 {
            no_speech = ctx.no_speech_from(&logits[..v]);
        }
        let n = seqs.len();
        // Each hypothesis's row is processed independently (several passes
        // over the vocabulary), so rows run in parallel while the backend's
        // threads are idle between steps.
        let process = |(row, (seq, &s)): (&mut [f32], (&Vec<u32>, &f32))| {
            ctx.log_probs(row, seq);
            if s != 0.0 {
                row.iter_mut().for_each(|x| *x += s);
            }
        };
        if n > 1 {
            logits[..n * v]
                .par_chunks_mut(v)
                .zip(seqs.par_iter().zip(scores.par_iter()))
                .for_each(process);
        } else {
            logits[..n * v]
                .chunks_mut(v)
                .zip(seqs.iter().zip(scores.iter()))
                .for_each(process);
        }
        top_k(&logits[..n * v], num_candidates, &mut top);
        cands.clear();
        cands.extend(top.iter().map(|&(score, flat)| Candidate {
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
                    top_beam_finished = true;
                }
                let mut tokens = seqs[c.origin].clone();
                if c.token != ctx.eot {
                    tokens.push(c.token);
                }
                finished.push(Hypothesis::new(tokens, c.score, length_penalty));
                if let Some(j) = (secondary..cands.len()).find(|&j| cands[j].token != ctx.eot) {
                    pick = j;
                    secondary = j + 1;
                }
            }
            next.push(pick);
        }

        let done = last_step
            || if allow_early_exit {
                top_beam_finished && !finished.is_empty()
            } else {
                finished.len() >= max_candidates
            };
        if done {
            break;
        }

        let origins: Vec<usize> = next.iter().map(|&j| cands[j].origin).collect();
        ctx.backend.reorder(state, &origins)?;
        seqs = next
            .iter()
            .map(|&j| {
                let mut s = seqs[cands[j].origin].clone();
                s.push(cands[j].token);
                s
            })
            .collect();
        scores = next.iter().map(|&j| cands[j].score).collect();
        inputs = next.iter().map(|&j| cands[j].token).collect();
    }
    rank(&mut finished);
    Ok((finished, no_speech))
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
