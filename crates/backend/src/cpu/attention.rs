//! Scaled dot-product multi-head attention (spec §4.5).

use super::attend;
use super::matmul::dot;
use super::ops::softmax;
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Score matrices of the gemm path, reused per thread across heads,
    /// layers and windows.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A strided view of per-head row blocks: column `c` of head `h` in row `r`
/// is `data[offset + h * head_stride + r * stride + c]`. Heads side by side
/// in each row (`[rows, heads·dh]`) have `head_stride = dh`; head-major
/// storage (`[heads, rows, dh]`, the decoder's cross K/V) has
/// `head_stride = rows·dh` and `stride = dh`, so one head's keys are one
/// contiguous stream.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    /// Backing storage.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Distance between rows.
    pub stride: usize,
    /// Offset of element (0, 0).
    pub offset: usize,
    /// Distance between the blocks of consecutive heads.
    pub head_stride: usize,
}

impl<'a> Mat<'a> {
    /// Offset of head `h`'s row 0.
    fn head(&self, h: usize) -> usize {
        self.offset + h * self.head_stride
    }

    /// Row `r` of head `h`, `dh` wide.
    pub(crate) fn row(&self, r: usize, h: usize, dh: usize) -> &'a [f32] {
        let s = self.head(h) + r * self.stride;
        &self.data[s..s + dh]
    }
}

/// Queries from which a head's scores are computed with gemm.
const GEMM_MIN_QUERIES: usize = 16;

/// `out[lq, heads·dh] = softmax(q kᵀ / √dh [+ causal mask]) v`, per head.
///
/// With `causal_base = Some(b)`, query `i` sits at absolute position `b + i`
/// and sees keys `0 ..= b + i` (decoder self-attention, spec §4.5).
pub fn attention<'a>(
    q: Mat<'a>,
    k: Mat<'a>,
    v: Mat<'a>,
    heads: usize,
    dh: usize,
    causal_base: Option<usize>,
    out: &mut [f32],
) {
    let (lq, lk) = (q.rows, k.rows);
    let d = heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    let visible = |i: usize| causal_base.map_or(lk, |b| (b + i + 1).min(lk));
    // A beam step's cross-attention: a few queries over a window's keys,
    // read in place (no per-call packing of the K/V panels).
    if causal_base.is_none() && lq <= 8 && lk >= 32 && attend::available(dh) {
        let per_head: Vec<Vec<f32>> = (0..heads)
            .into_par_iter()
            .map(|h| {
                let rows = |m: Mat<'a>| attend::Rows {
                    data: m.data,
                    offset: m.head(h),
                    stride: m.stride,
                };
                let mut o = vec![0f32; lq * dh];
                attend::attend_few(rows(q), lq, rows(k), rows(v), lk, dh, scale, &mut o, dh);
                o
            })
            .collect();
        for (h, ctx) in per_head.iter().enumerate() {
            for i in 0..lq {
                out[i * d + h * dh..i * d + (h + 1) * dh]
                    .copy_from_slice(&ctx[i * dh..(i + 1) * dh]);
            }
        }
        return;
    }
    // gemm also pays off for a few queries over many keys (cross-attention
    // of a beam batch: the keys are read once for every query).
    if lq >= GEMM_MIN_QUERIES || (lq >= 2 && lk >= 256) {
        let per_head: Vec<Vec<f32>> = (0..heads)
            .into_par_iter()
            .map(|h| {
                // The score matrix (1500 × 1500 floats per encoder head) is
                // reused per thread: a fresh zeroed 9 MB vector per head was
                // a memset plus page faults every time (gemm overwrites it,
                // `read_dst` is false). Taken out of the thread-local for the
                // call (a nested rayon job cannot find it borrowed).
                let mut scores = SCORES.with_borrow_mut(std::mem::take);
                if scores.len() < lq * lk {
                    scores.resize(lq * lk, 0.0);
                }
                let scores_buf = &mut scores[..lq * lk];
                // SAFETY: q rows are read at offset + h·head_stride +
                // i·stride + t with t < dh, k rows likewise, all within the
                // views' data; scores is [lq, lk] row-major.
                unsafe {
                    gemm::gemm(
                        lq,
                        lk,
                        dh,
                        scores_buf.as_mut_ptr(),
                        1,
                        lk as isize,
                        false,
                        q.data.as_ptr().add(q.head(h)),
                        1,
                        q.stride as isize,
                        k.data.as_ptr().add(k.head(h)),
                        k.stride as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for (i, row) in scores_buf.chunks_mut(lk).enumerate() {
                    let n = visible(i);
                    softmax(&mut row[..n]);
                    row[n..].iter_mut().for_each(|x| *x = 0.0);
                }
                let mut ctx = vec![0f32; lq * dh];
                // SAFETY: probabilities [lq, lk] times v_h [lk, dh] (row stride
                // v.stride) into ctx [lq, dh].
                unsafe {
                    gemm::gemm(
                        lq,
                        dh,
                        lk,
                        ctx.as_mut_ptr(),
                        1,
                        dh as isize,
                        false,
                        scores_buf.as_ptr(),
                        1,
                        lk as isize,
                        v.data.as_ptr().add(v.head(h)),
                        1,
                        v.stride as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                SCORES.with_borrow_mut(|slot| {
                    if slot.capacity() < scores.capacity() {
                        *slot = scores;
                    }
                });
                ctx
            })
            .collect();
        for (h, ctx) in per_head.iter().enumerate() {
            for i in 0..lq {
                out[i * d + h * dh..i * d + (h + 1) * dh]
                    .copy_from_slice(&ctx[i * dh..(i + 1) * dh]);
            }
        }
        return;
    }
    // Few queries (decoder steps): one task per (query, head).
    let work = |(idx, o): (usize, &mut [f32])| {
        let (i, h) = (idx / heads, idx % heads);
        attend_one(
            q.row(i, h, dh),
            visible(i),
            |j| k.row(j, h, dh),
            |j| v.row(j, h, dh),
            scale,
            o,
        );
    };
    if lq * heads * lk >= 4096 {
        out[..lq * d].par_chunks_mut(dh).enumerate().for_each(work);
    } else {
        out[..lq * d].chunks_mut(dh).enumerate().for_each(work);
    }
}

/// One query of one head over keys/values `0 .. n`:
/// `o = softmax(q·k_j · scale) · v_j`, with row accessors for both layouts.
fn attend_one<'a>(
    q: &[f32],
    n: usize,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scale: f32,
    o: &mut [f32],
) {
    let mut p: Vec<f32> = (0..n).map(|j| dot(q, key(j)) * scale).collect();
    softmax(&mut p);
    o.iter_mut().for_each(|x| *x = 0.0);
    for (j, &pj) in p.iter().enumerate() {
        for (x, &vv) in o.iter_mut().zip(value(j)) {
            *x += pj * vv;
        }
    }
}

/// Causal self-attention of a decoder step for all sequences at once: row
/// `s·t + i` of `qkv` (`[sequences·t, 3d]`, queries first) attends positions
/// `0 ..= base + i` of sequence `s`'s cache (slot `slots[s]` of the
/// `[slots, cap, d]` keys and values, already holding this step's entries).
/// One task per (row, head), so a beam step's attention uses every thread
/// even though each piece is small.
#[allow(clippy::too_many_arguments)]
pub fn cached_self_attention(
    qkv: &[f32],
    slots: &[usize],
    t: usize,
    heads: usize,
    dh: usize,
    k_cache: &[f32],
    v_cache: &[f32],
    cap: usize,
    base: usize,
    out: &mut [f32],
) {
    let d = heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    let fast = attend::available(dh);
    let work = |(idx, o): (usize, &mut [f32])| {
        let (r, h) = (idx / heads, idx % heads);
        let (s, i) = (r / t, r % t);
        let n = base + i + 1;
        let q = &qkv[r * 3 * d + h * dh..r * 3 * d + (h + 1) * dh];
        let at = |j: usize| (slots[s] * cap + j) * d + h * dh;
        if fast {
            let rows = |data| attend::Rows {
                data,
                offset: at(0),
                stride: d,
            };
            let qr = attend::Rows {
                data: q,
                offset: 0,
                stride: dh,
            };
            attend::attend_few(qr, 1, rows(k_cache), rows(v_cache), n, dh, scale, o, dh);
            return;
        }
        attend_one(
            q,
            n,
            |j| &k_cache[at(j)..at(j) + dh],
            |j| &v_cache[at(j)..at(j) + dh],
            scale,
            o,
        );
    };
    let rows = slots.len() * t;
    if rows * heads * (base + t) >= 4096 {
        out[..rows * d]
            .par_chunks_mut(dh)
            .enumerate()
            .for_each(work);
    } else {
        out[..rows * d].chunks_mut(dh).enumerate().for_each(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values in [-1, 1) from a multiplicative hash (wrapping, as a hash
    /// is meant to) of the index and seed `s`.
    fn values(n: usize, s: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ s) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        lq: usize,
        lk: usize,
        heads: usize,
        dh: usize,
        causal: Option<usize>,
    ) -> Vec<f32> {
        let d = heads * dh;
        let mut out = vec![0f32; lq * d];
        for h in 0..heads {
            for i in 0..lq {
                let n = causal.map_or(lk, |b| (b + i + 1).min(lk));
                let mut s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..dh)
                            .map(|t| {
                                f64::from(q[i * d + h * dh + t]) * f64::from(k[j * d + h * dh + t])
                            })
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s
                    .iter_mut()
                    .map(|x| {
                        *x = (*x - m).exp();
                        *x
                    })
                    .sum();
                for t in 0..dh {
                    out[i * d + h * dh + t] = (0..n)
                        .map(|j| s[j] / z * f64::from(v[j * d + h * dh + t]))
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn cached_self_attention_matches_per_sequence_attention() {
        let (heads, dh, ns, t, base, cap) = (2, 8, 3, 2, 5, 12);
        let d = heads * dh;
        let qkv = values(ns * t * 3 * d, 7);
        let kc = values(ns * cap * d, 8);
        let vc = values(ns * cap * d, 9);
        let mut got = vec![0f32; ns * t * d];
        let slots: Vec<usize> = (0..ns).collect();
        cached_self_attention(&qkv, &slots, t, heads, dh, &kc, &vc, cap, base, &mut got);
        for s in 0..ns {
            let q = Mat {
                data: &qkv,
                rows: t,
                stride: 3 * d,
                offset: s * t * 3 * d,
                head_stride: dh,
            };
            let kv = |buf| Mat {
                data: buf,
                rows: base + t,
                stride: d,
                offset: s * cap * d,
                head_stride: dh,
            };
            let mut want = vec![0f32; t * d];
            attention(q, kv(&kc), kv(&vc), heads, dh, Some(base), &mut want);
            let err = want
                .iter()
                .zip(&got[s * t * d..(s + 1) * t * d])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-6, "sequence {s}: {err}");
        }
    }

    #[test]
    fn both_paths_match_naive_attention() {
        let (heads, dh) = (3, 8);
        let d = heads * dh;
        for &(lq, lk, causal) in &[
            (1, 7, Some(6)),
            (4, 9, Some(5)),
            (20, 20, Some(0)),
            (17, 33, None),
            (2, 40, None),
            (9, 300, None),
            (300, 600, None),
            (300, 600, Some(0)),
        ] {
            let q = values(lq * d, 1);
            let k = values(lk * d, 2);
            let v = values(lk * d, 3);
            let mut out = vec![0f32; lq * d];
            let mk = |data, rows, d| Mat {
                data,
                rows,
                stride: d,
                offset: 0,
                head_stride: dh,
            };
            attention(
                mk(&q, lq, d),
                mk(&k, lk, d),
                mk(&v, lk, d),
                heads,
                dh,
                causal,
                &mut out,
            );
            let r = naive(&q, &k, &v, lq, lk, heads, dh, causal);
            let err = r
                .iter()
                .zip(&out)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-5, "lq={lq} lk={lk}: {err}");
        }
    }

    #[test]
    fn head_major_keys_and_values_give_the_same_attention() {
        // The decoder's cross K/V layout against heads side by side, on
        // every path: few queries (in place), a beam batch and many queries
        // (gemm), and the per-query fallback's head size.
        for &(heads, dh) in &[(2, 64), (3, 8)] {
            let d = heads * dh;
            let lk = 300;
            let kv = values(lk * 2 * d, 5);
            let mut hm = Vec::new();
            crate::cpu::decoder::head_major(&kv, lk, d, dh, &mut hm);
            for lq in [1, 5, 20] {
                let q = values(lq * d, 6);
                let qm = Mat {
                    data: &q,
                    rows: lq,
                    stride: d,
                    offset: 0,
                    head_stride: dh,
                };
                let rows = |part| Mat {
                    data: &kv,
                    rows: lk,
                    stride: 2 * d,
                    offset: part * d,
                    head_stride: dh,
                };
                let mut want = vec![0f32; lq * d];
                attention(qm, rows(0), rows(1), heads, dh, None, &mut want);
                let mut got = vec![0f32; lq * d];
                let k = crate::cpu::decoder::cross_view(&hm, 0, 0, lk, d, dh);
                let v = crate::cpu::decoder::cross_view(&hm, 0, 1, lk, d, dh);
                attention(qm, k, v, heads, dh, None, &mut got);
                assert_eq!(want, got, "heads={heads} dh={dh} lq={lq}");
            }
        }
    }
}
