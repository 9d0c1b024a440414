//! Greedy decoding and temperature sampling with `best_of` hypotheses
//! (spec §6.7, CT2 `GreedySearch`).
//!
//! Follows CTranslate2 4.8.5 `src/decoding.cc` (`GreedySearch::search`) and `src/sampling.cc`
//! (`RandomSampler`; the random stream is our own PCG, see docs/SPEC.md §12).

use crate::generate::{rank, Hypothesis, StepContext};
use crate::logits::argmax;
use vkw_backend::{Backend, Candidate, RowRule};

/// A small PCG-XSH-RR 64/32 generator for sampling (no external dependency).
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    const MUL: u64 = 6364136223846793005;
    const INC: u64 = 1442695040888963407;

    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut r = Self { state: 0 };
        r.next_u32();
        r.state = r.state.wrapping_add(seed);
        r.next_u32();
        r
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MUL).wrapping_add(Self::INC);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// A uniform value in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        let hi = u64::from(self.next_u32()) << 21;
        let lo = u64::from(self.next_u32()) >> 11;
        ((hi | lo) as f64) / (1u64 << 53) as f64
    }
}

/// Draw from `softmax(logp / temperature)` (the whole vocabulary, `sampling_topk = 0`).
pub(crate) fn sample(logp: &[f32], temperature: f64, rng: &mut Rng) -> usize {
    let max = logp.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return 0;
    }
    let scale = 1.0 / temperature;
    let m = f64::from(max) * scale;
    let weight = |x: f32| {
        if x == f32::NEG_INFINITY {
            0.0
        } else {
            (f64::from(x) * scale - m).exp()
        }
    };
    let total: f64 = logp.iter().map(|&x| weight(x)).sum();
    let mut u = rng.next_f64() * total;
    let mut last_positive = argmax(logp);
    for (i, &x) in logp.iter().enumerate() {
        let w = weight(x);
        if w > 0.0 {
            last_positive = i;
            if u < w {
                return i;
            }
            u -= w;
        }
    }
    last_positive
}

/// CT2's greedy search over one window (spec §6.7): `n` independent
/// hypotheses (the window's state row is replicated), arg-max at temperature
/// 0, sampling from the whole vocabulary otherwise (`sampling_topk = 0`).
/// Advanced one step at a time by [`super::run`]; a hypothesis that finished
/// leaves the backend state.
pub(crate) struct SampleSearch {
    temperature: f64,
    length_penalty: f32,
    step: usize,
    seqs: Vec<Vec<u32>>,
    /// Each token's log-probability, parallel to `seqs`.
    lps: Vec<Vec<f32>>,
    cum: Vec<f32>,
    done: Vec<Option<Hypothesis>>,
    /// Row `r` of the window's block decodes hypothesis `alive[r]`.
    alive: Vec<usize>,
    inputs: Vec<u32>,
    no_speech: Option<f32>,
}

impl SampleSearch {
    /// `n` hypotheses from the context's start token.
    pub fn new<B: Backend>(
        ctx: &StepContext<'_, B>,
        n: usize,
        temperature: f64,
        length_penalty: f32,
    ) -> Self {
        Self {
            temperature,
            length_penalty,
            step: 0,
            seqs: vec![Vec::new(); n],
            lps: vec![Vec::new(); n],
            cum: vec![0.0; n],
            done: vec![None; n],
            alive: (0..n).collect(),
            inputs: vec![ctx.start; n],
            no_speech: None,
        }
    }

    /// The live hypotheses' next input tokens.
    pub fn inputs(&self) -> &[u32] {
        &self.inputs
    }

    /// Whether a step takes the arg-max (temperature 0), which a backend
    /// can rank ([`SampleSearch::advance_top`]); sampling needs the rows.
    pub fn is_argmax(&self) -> bool {
        self.temperature <= 0.0
    }

    /// The rule of each live hypothesis' row, appended to `out` (greedy:
    /// no score is added to the log-probabilities).
    pub fn row_rules<B: Backend>(&self, ctx: &StepContext<'_, B>, out: &mut Vec<RowRule>) {
        out.extend(self.alive.iter().map(|&h| ctx.row_rule(&self.seqs[h], 0.0)));
    }

    /// Record the step-0 no-speech probability (of the first hypothesis'
    /// raw logits).
    pub fn set_no_speech(&mut self, p: Option<f32>) {
        if self.step == 0 {
            self.no_speech = p;
        }
    }

    /// One step from the raw logits of the live hypotheses (`[alive, vocab]`,
    /// processed in place): rules, log-softmax, then the arg-max or a draw
    /// (in row order, so the random stream is the same as CT2's). Returns
    /// `None` when every hypothesis finished, else the rows that go on (for
    /// [`Backend::reorder`]).
    pub fn advance<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        rows: &mut [f32],
        rng: &mut Rng,
    ) -> Option<Vec<usize>> {
        let v = ctx.vocab;
        let temperature = self.temperature;
        self.step_with(ctx, |r, seq| {
            let row = &mut rows[r * v..(r + 1) * v];
            ctx.log_probs(row, seq);
            let token = if temperature > 0.0 {
                sample(row, temperature, rng)
            } else {
                argmax(row)
            };
            (token as u32, row[token])
        })
    }

    /// One arg-max step from each live row's best candidate (`k` per row,
    /// best first: the backend applied the rules, `Backend::decode_top`).
    pub fn advance_top<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        rows: &[Candidate],
        k: usize,
    ) -> Option<Vec<usize>> {
        self.step_with(ctx, |r, _| {
            let c = rows[r * k];
            (c.token, c.score)
        })
    }

    /// Finish a step with `choose(row, tokens so far)` → (token, its
    /// log-probability) for each live hypothesis, in row order.
    fn step_with<B: Backend>(
        &mut self,
        ctx: &StepContext<'_, B>,
        mut choose: impl FnMut(usize, &[u32]) -> (u32, f32),
    ) -> Option<Vec<usize>> {
        let step = self.step;
        let last_step = step + 1 == ctx.max_steps;
        let mut keep = Vec::with_capacity(self.alive.len());
        for r in 0..self.alive.len() {
            let h = self.alive[r];
            let (mut token, mut score) = choose(r, &self.seqs[h]);
            if let Some(&forced) = ctx.prefix.get(step) {
                // §6.2: the forced prefix is emitted with a score of 0.
                token = forced;
                score = 0.0;
            }
            let is_eot = token == ctx.eot;
            if !is_eot {
                self.seqs[h].push(token);
                self.lps[h].push(score);
            }
            self.cum[h] += score;
            if (is_eot && step >= ctx.prefix.len()) || last_step {
                let tokens = std::mem::take(&mut self.seqs[h]);
                let lps = std::mem::take(&mut self.lps[h]);
                self.done[h] = Some(
                    Hypothesis::new(tokens, self.cum[h], self.length_penalty).with_logprobs(lps),
                );
            } else {
                keep.push(r);
                self.inputs[keep.len() - 1] = token;
            }
        }
        self.step += 1;
        if keep.is_empty() {
            return None;
        }
        self.alive = keep.iter().map(|&r| self.alive[r]).collect();
        self.inputs.truncate(self.alive.len());
        Some(keep)
    }

    /// The finished hypotheses, best first, and the step-0 no-speech probability.
    pub fn finish(self) -> (Vec<Hypothesis>, Option<f32>) {
        let mut hyps: Vec<Hypothesis> = self.done.into_iter().flatten().collect();
        rank(&mut hyps);
        (hyps, self.no_speech)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_uniform() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        assert!(xs
            .iter()
            .zip((0..1000).map(|_| b.next_f64()))
            .all(|(x, y)| *x == y));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn sampling_respects_masks_and_temperature() {
        let mut rng = Rng::new(1);
        let lp = [f32::NEG_INFINITY, (0.9f32).ln(), (0.1f32).ln()];
        let mut counts = [0usize; 3];
        for _ in 0..2000 {
            counts[sample(&lp, 1.0, &mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1] > 1700 && counts[2] > 100);
        // A tiny temperature is nearly arg-max.
        assert!((0..100).all(|_| sample(&lp, 0.01, &mut rng) == 1));
    }
}
