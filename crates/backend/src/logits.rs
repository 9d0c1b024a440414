//! Logit rules inside the backend (spec §6.4–§6.6): suppression masks, the
//! timestamp rules' masks and probability check, log-softmax, the beam's
//! score and the best `k` candidates of each row, so a decoding step at
//! temperature 0 needs only a few candidates per hypothesis, not the whole
//! vocabulary's logits.
//!
//! [`Backend::decode_top`] runs a step and returns those candidates. Its
//! default implementation is the CPU reference ([`reference_top`]): the
//! full logits from [`Backend::decode`], then the rules below, row by row —
//! the arithmetic the decoding crate has always used, so the CPU backend
//! stays token-exact with CTranslate2. The Vulkan backend overrides it with
//! kernels that read back about a kilobyte per step.
//!
//! What a backend applies is split from the rules' logic: the decoding
//! crate derives each row's [`RowRule`] (which id ranges the timestamp rules
//! mask at this step, whether the timestamp-probability check applies) from
//! the hypothesis' tokens; the backend only masks, normalises and ranks.
//! Masked entries are `-inf` (CT2 uses the lowest finite float; both give
//! probability 0).

use crate::{Backend, BackendError, LogitsAt};
use rayon::prelude::*;

/// The rules every row of a decoding call shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogitMasks {
    /// Ids masked on every row (§6.4 `suppress_tokens`, and
    /// `<|notimestamps|>` when the timestamp rules apply). Ids beyond the
    /// vocabulary are ignored.
    pub suppress: Vec<u32>,
    /// Ids masked on rows whose [`RowRule::begin`] is set (§6.4
    /// `suppress_blank` at the first sampled step).
    pub suppress_begin: Vec<u32>,
    /// The first timestamp id: the split of [`RowRule::timestamp_check`].
    pub timestamp_begin: u32,
}

/// One row's rules at one step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowRule {
    /// Added to every log-probability of the row (the beam's cumulative
    /// score; 0 for greedy search).
    pub score: f32,
    /// Mask [`LogitMasks::suppress_begin`] too.
    pub begin: bool,
    /// Id ranges `[from, to)` masked (empty when `from >= to`); `to` may
    /// exceed the vocabulary.
    pub masked: [(u32, u32); 2],
    /// §6.5 step 4: after the masks, if the timestamps' total probability
    /// exceeds the best text token's, mask every text token (ids below
    /// [`LogitMasks::timestamp_begin`]).
    pub timestamp_check: bool,
}

/// What [`Backend::decode_top`] computes for a step.
#[derive(Debug, Clone, Copy)]
pub struct TopRequest<'a> {
    /// Rules shared by every row.
    pub masks: &'a LogitMasks,
    /// One rule per sequence of the state, in order.
    pub rows: &'a [RowRule],
    /// Candidates per row (at most the vocabulary size).
    pub k: usize,
    /// Report each row's softmax probability of this id over its raw
    /// logits (§6.6 no-speech probability at step 0).
    pub no_speech: Option<u32>,
}

/// A candidate continuation of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Log-probability after the rules, plus the row's [`RowRule::score`]
    /// (`-inf` for a masked token, taken only when fewer than `k` tokens
    /// are unmasked).
    pub score: f32,
    /// Token id.
    pub token: u32,
}

/// Result of [`Backend::decode_top`]; reused between steps.
#[derive(Debug, Clone, Default)]
pub struct TopK {
    /// `k` candidates per row (`[rows, k]`), best first: higher score, then
    /// lower id (CTranslate2's order).
    pub cands: Vec<Candidate>,
    /// Candidates per row.
    pub k: usize,
    /// Per row, the [`TopRequest::no_speech`] probability (empty when not
    /// asked).
    pub no_speech: Vec<f32>,
    /// A raw logit was NaN or infinite.
    pub non_finite: bool,
    /// The reference implementation's logits, kept for the next step.
    pub scratch: Vec<f32>,
}

impl TopK {
    /// The candidates of row `r`.
    pub fn row(&self, r: usize) -> &[Candidate] {
        &self.cands[r * self.k..(r + 1) * self.k]
    }
}

/// Set `ids` to `-inf` (ids outside the row are ignored).
pub fn mask_ids(logits: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(x) = logits.get_mut(id as usize) {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// Set ids `from .. to_exclusive` (clamped to the row) to `-inf`.
pub fn mask_range(logits: &mut [f32], from: usize, to_exclusive: usize) {
    let to = to_exclusive.min(logits.len());
    if from < to {
        logits[from..to].fill(f32::NEG_INFINITY);
    }
}

/// Apply a row's masks and the timestamp-probability check in place.
pub fn apply_rules(logits: &mut [f32], masks: &LogitMasks, rule: &RowRule) {
    mask_ids(logits, &masks.suppress);
    if rule.begin {
        mask_ids(logits, &masks.suppress_begin);
    }
    for (from, to) in rule.masked {
        mask_range(logits, from as usize, to as usize);
    }
    let tb = (masks.timestamp_begin as usize).min(logits.len());
    if rule.timestamp_check && timestamp_mass_dominates(logits, tb) {
        mask_range(logits, 0, tb);
    }
}

/// §6.5 step 4: does `logsumexp(logp[tb..])` exceed `max(logp[..tb])`?
/// Computed on log-probabilities as CT2 does (same rounding path).
pub fn timestamp_mass_dominates(logits: &[f32], tb: usize) -> bool {
    let Some((max, log_sum)) = softmax_stats(logits) else {
        return false;
    };
    let text_max = max_of(&logits[..tb]);
    let ts = &logits[tb..];
    let ts_max = max_of(ts);
    if ts_max == f32::NEG_INFINITY {
        return false;
    }
    if text_max == f32::NEG_INFINITY {
        return true;
    }
    let text_lp = (text_max - max) - log_sum;
    let ts_lp_max = (ts_max - max) - log_sum;
    // Σ exp(lp − ts_lp_max) with lp = (x − max) − log_sum equals
    // Σ exp(x − ts_max): the shifts cancel.
    let sum = vkw_math::sum_exp(ts, ts_max);
    let ts_lse = ts_lp_max + sum.ln();
    ts_lse > text_lp
}

/// Maximum of a slice (`-inf` when empty or fully masked).
pub fn max_of(xs: &[f32]) -> f32 {
    vkw_math::max(xs)
}

/// `(max, ln Σ exp(x − max))` of a row, or `None` when every entry is masked.
pub fn softmax_stats(xs: &[f32]) -> Option<(f32, f32)> {
    let max = max_of(xs);
    if max == f32::NEG_INFINITY || max.is_nan() {
        return None;
    }
    // Vectorised: this runs over the whole vocabulary for every hypothesis
    // at every step.
    let sum = vkw_math::sum_exp(xs, max);
    Some((max, sum.ln()))
}

/// In-place log-softmax: `(x − max) − ln Σ exp(x − max)`. A fully masked row
/// stays `-inf`.
pub fn log_softmax_inplace(xs: &mut [f32]) {
    if let Some((max, log_sum)) = softmax_stats(xs) {
        for x in xs.iter_mut() {
            *x = (*x - max) - log_sum;
        }
    }
}

/// Softmax probability of one id over a raw row (no-speech probability, §6.6).
pub fn softmax_prob(xs: &[f32], id: usize) -> f32 {
    match (softmax_stats(xs), xs.get(id)) {
        (Some((max, log_sum)), Some(&x)) => ((x - max) - log_sum).exp(),
        _ => 0.0,
    }
}

/// The `k` largest values of `xs` as `(value, index)`, best first; ties keep
/// the lower index first (CTranslate2's order). NaN entries are skipped;
/// masked (`-inf`) entries are taken only when fewer than `k` finite values
/// exist.
pub fn top_k(xs: &[f32], k: usize, out: &mut Vec<(f32, usize)>) {
    out.clear();
    if k == 0 {
        return;
    }
    // Once `k` values are held, a value enters only if it beats the k-th
    // (`x > kth`, false for NaN): a chunk with no such value is skipped
    // whole, with a comparison LLVM vectorises (no early exit). Beam steps
    // rank 5 × 51,865 logits, and past the first chunks almost none enter.
    const CHUNK: usize = 32;
    let mut base = 0;
    for chunk in xs.chunks(CHUNK) {
        if out.len() == k {
            let kth = out[k - 1].0;
            if !chunk.iter().fold(false, |any, &x| any | (x > kth)) {
                base += chunk.len();
                continue;
            }
        }
        for (i, &x) in chunk.iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            if out.len() == k {
                // `out` is sorted best first; the last entry is the k-th.
                if x <= out[k - 1].0 {
                    continue;
                }
                out.pop();
            }
            let pos = out.partition_point(|&(v, _)| v >= x);
            out.insert(pos, (x, base + i));
        }
        base += chunk.len();
    }
}

/// Rules, log-softmax and the row's score on one raw row, in place.
pub fn process_row(row: &mut [f32], masks: &LogitMasks, rule: &RowRule) {
    apply_rules(row, masks, rule);
    log_softmax_inplace(row);
    if rule.score != 0.0 {
        row.iter_mut().for_each(|x| *x += rule.score);
    }
}

/// The CPU reference of [`Backend::decode_top`] on rows of raw logits
/// (`[rows, vocab]`, consumed): per row the no-speech probability (when
/// asked), then [`process_row`] and [`top_k`]. Rows run in parallel (in the
/// caller's rayon pool).
pub fn reference_rows(
    logits: &mut [f32],
    vocab: usize,
    req: &TopRequest<'_>,
    out: &mut TopK,
) -> Result<(), BackendError> {
    let rows = req.rows.len();
    if vocab == 0 || logits.len() != rows * vocab {
        return Err(BackendError::Shape(format!(
            "decode_top: {} logits for {rows} rows of {vocab}",
            logits.len()
        )));
    }
    let k = req.k.min(vocab);
    out.k = k;
    // A fold, not `any`: no early exit, so it vectorises (the row is
    // almost always all finite).
    out.non_finite = logits.iter().fold(false, |bad, x| {
        bad | (!x.is_finite() & (*x != f32::NEG_INFINITY))
    });
    out.cands.clear();
    out.cands.resize(
        rows * k,
        Candidate {
            score: f32::NEG_INFINITY,
            token: 0,
        },
    );
    out.no_speech.clear();
    if let Some(id) = req.no_speech {
        out.no_speech = logits
            .par_chunks(vocab)
            .map(|row| softmax_prob(row, id as usize))
            .collect();
    }
    logits
        .par_chunks_mut(vocab)
        .zip(req.rows.par_iter())
        .zip(out.cands.par_chunks_mut(k.max(1)))
        .for_each(|((row, rule), cands)| {
            process_row(row, req.masks, rule);
            let mut best = Vec::with_capacity(k + 1);
            top_k(row, k, &mut best);
            for (c, &(score, token)) in cands.iter_mut().zip(&best) {
                *c = Candidate {
                    score,
                    token: token as u32,
                };
            }
        });
    Ok(())
}

/// [`Backend::decode_top`]'s default: one step through [`Backend::decode`]
/// (the last position's logits of every sequence), then [`reference_rows`].
pub fn reference_top<B: Backend + ?Sized>(
    backend: &B,
    state: &mut B::State,
    tokens: &[u32],
    req: &TopRequest<'_>,
    out: &mut TopK,
) -> Result<(), BackendError> {
    if req.rows.len() != tokens.len() {
        return Err(BackendError::Shape(format!(
            "decode_top: {} row rules for {} sequences",
            req.rows.len(),
            tokens.len()
        )));
    }
    let mut logits = std::mem::take(&mut out.scratch);
    let r = backend
        .decode(state, tokens, 1, LogitsAt::Last, &mut logits)
        .and_then(|()| reference_rows(&mut logits, backend.hparams().n_vocab, req, out));
    out.scratch = logits;
    r
}

/// Merge the candidate lists of one row's vocabulary chunks (`lists`, in
/// any order) into its best `out.len()`, CTranslate2's order: higher score,
/// then lower id. Used by backends that rank the vocabulary in chunks.
pub fn merge_chunks(lists: &mut [Candidate], out: &mut [Candidate]) {
    // `partial_cmp`, not `total_cmp`: −0 and +0 tie, as in [`top_k`].
    lists.sort_unstable_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.token.cmp(&b.token))
    });
    for (o, c) in out.iter_mut().zip(lists.iter()) {
        *o = *c;
    }
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

    /// The selection `top_k` must equal: every value in order, inserted
    /// when it beats the k-th.
    fn top_k_one_by_one(xs: &[f32], k: usize) -> Vec<(f32, usize)> {
        let mut out: Vec<(f32, usize)> = Vec::new();
        for (i, &x) in xs.iter().enumerate() {
            if x.is_nan() || (out.len() == k && x <= out[k - 1].0) {
                continue;
            }
            if out.len() == k {
                out.pop();
            }
            let pos = out.partition_point(|&(v, _)| v >= x);
            out.insert(pos, (x, i));
        }
        out
    }

    #[test]
    fn top_k_with_chunk_skipping_selects_as_one_by_one() {
        let mut out = Vec::new();
        let mut seed = 12345u32;
        for len in [0, 1, 31, 32, 33, 100, 1000, 5000] {
            for k in [1, 2, 5, 10, 12] {
                let xs: Vec<f32> = (0..len)
                    .map(|i| {
                        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                        match seed >> 28 {
                            0 => f32::NAN,
                            1 => f32::NEG_INFINITY,
                            2 => 3.0, // ties
                            // Rising values: late chunks hold new best ones.
                            _ => (seed >> 8) as f32 / 16777216.0 * 4.0 + i as f32 * 1e-3,
                        }
                    })
                    .collect();
                top_k(&xs, k, &mut out);
                let want = top_k_one_by_one(&xs, k);
                assert_eq!(out.len(), want.len(), "len={len} k={k}");
                for (a, b) in out.iter().zip(&want) {
                    assert!(
                        a.0.to_bits() == b.0.to_bits() && a.1 == b.1,
                        "len={len} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_helpers() {
        let mut l = vec![0.0f32, f32::NEG_INFINITY, 0.0];
        log_softmax_inplace(&mut l);
        assert!((l[0] - (0.5f32).ln()).abs() < 1e-6);
        assert_eq!(l[1], f32::NEG_INFINITY);
        assert!((softmax_prob(&[0.0, 0.0], 1) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn reference_rows_rank_each_row_and_report_no_speech() {
        let masks = LogitMasks {
            suppress: vec![1],
            suppress_begin: vec![2],
            timestamp_begin: 6,
        };
        let rows = [
            RowRule {
                score: -1.0,
                begin: true,
                ..Default::default()
            },
            RowRule {
                masked: [(0, 6), (0, 0)],
                ..Default::default()
            },
        ];
        let mut l = vec![
            3.0, 9.0, 8.0, 3.0, 0.0, 1.0, 0.0, 0.0, //
            5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 1.0,
        ];
        let raw = l.clone();
        let req = TopRequest {
            masks: &masks,
            rows: &rows,
            k: 3,
            no_speech: Some(4),
        };
        let mut out = TopK::default();
        reference_rows(&mut l, 8, &req, &mut out).unwrap();
        let toks = |r: usize| out.row(r).iter().map(|c| c.token).collect::<Vec<_>>();
        // Row 0: 1 and 2 masked; 0 and 3 tie (lower id first).
        assert_eq!(toks(0), vec![0, 3, 5]);
        assert!(out.row(0)[0].score < -1.0);
        // Row 1: only 6 and 7 are left, then the masked ids by index.
        assert_eq!(toks(1), vec![6, 7, 0]);
        assert_eq!(out.row(1)[2].score, f32::NEG_INFINITY);
        assert_eq!(out.no_speech[0], softmax_prob(&raw[..8], 4));
        assert!(!out.non_finite);
    }
}
