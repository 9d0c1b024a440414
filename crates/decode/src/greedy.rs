//! Greedy decoding and temperature sampling with `best_of` hypotheses
//! (spec §6.7, CT2 `GreedySearch`).

use crate::generate::{rank, Hypothesis, StepContext};
use crate::logits::argmax;
use crate::DecodeError;
use vkw_backend::Backend;

/// A small PCG-XSH-RR 64/32 generator for sampling (no external dependency).
#[derive(Debug, Clone)]
pub struct Rng {
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

/// CT2's greedy search: `n` independent hypotheses (the state is replicated),
/// arg-max at temperature 0, sampling otherwise. Returns the hypotheses best
/// first and the step-0 no-speech probability when requested.
pub(crate) fn sample_search<B: Backend>(
    ctx: &StepContext<'_, B>,
    state: &mut B::State,
    n: usize,
    temperature: f64,
    length_penalty: f32,
    rng: &mut Rng,
) -> Result<(Vec<Hypothesis>, Option<f32>), DecodeError> {
    let v = ctx.vocab;
    if n > 1 {
        ctx.backend.reorder(state, &vec![0; n])?;
    }
    let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut cum = vec![0.0f32; n];
    let mut done: Vec<Option<Hypothesis>> = vec![None; n];
    // Row r of the batch decodes hypothesis alive[r].
    let mut alive: Vec<usize> = (0..n).collect();
    let mut inputs = vec![ctx.start; n];
    let mut logits = Vec::new();
    let mut no_speech = None;
    for step in 0..ctx.max_steps {
        ctx.step(state, &inputs, &mut logits)?;
        if step == 0 {
            no_speech = ctx.no_speech_from(&logits[..v]);
        }
        let last_step = step + 1 == ctx.max_steps;
        let mut keep = Vec::with_capacity(alive.len());
        for (r, &h) in alive.iter().enumerate() {
            let row = &mut logits[r * v..(r + 1) * v];
            ctx.log_probs(row, &seqs[h]);
            let mut token = if temperature > 0.0 {
                sample(row, temperature, rng)
            } else {
                argmax(row)
            } as u32;
            let mut score = row[token as usize];
            if let Some(&forced) = ctx.prefix.get(step) {
                // §6.2: the forced prefix is emitted with a score of 0.
                token = forced;
                score = 0.0;
            }
            let is_eot = token == ctx.eot;
            if !is_eot {
                seqs[h].push(token);
            }
            cum[h] += score;
            if (is_eot && step >= ctx.prefix.len()) || last_step {
                let tokens = std::mem::take(&mut seqs[h]);
                done[h] = Some(Hypothesis::new(tokens, cum[h], length_penalty));
            } else {
                keep.push(r);
                inputs[keep.len() - 1] = token;
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() != alive.len() {
            ctx.backend.reorder(state, &keep)?;
            alive = keep.iter().map(|&r| alive[r]).collect();
            inputs.truncate(alive.len());
        }
    }
    let mut hyps: Vec<Hypothesis> = done.into_iter().flatten().collect();
    rank(&mut hyps);
    Ok((hyps, no_speech))
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
