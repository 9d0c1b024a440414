//! Attention of a few queries over many keys (decoder steps): one head,
//! `m ≤ 8` queries, keys and values read in place from strided rows.
//!
//! The gemm path packs the key and value panels of every head on every call
//! (the cross-attention K/V of a window is re-packed at each beam step); here
//! each key and value row is read once per group of up to 4 queries, straight
//! from the cache, with the queries held in registers. Rows of `dh` floats
//! (64 for every Whisper size, or 128) are processed as whole vectors:
//! AVX-512 where the CPU has it, AVX2 + FMA otherwise (Zen 2/3 and most
//! laptops; `VKW_CPU_ISA=avx2` forces it); other CPUs or head sizes use the
//! caller's other paths.

use std::cell::RefCell;

/// Queries handled per pass over the keys: a beam of 5 in one pass. Each
/// query's sums run in the same order whatever the group size, so groups
/// change no bits; splitting 5 as 4 + 1 read the keys and values twice and
/// ran the lone query's few FMA chains at the FMA latency, not its rate.
const QB: usize = 5;

/// Whether [`attend_few`] can run: AVX-512F or AVX2 + FMA, and a head size
/// of 64 (every Whisper size) or 128 floats.
pub fn available(dh: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // AVX-512 implies AVX2 here (`has_avx512` requires it).
        (dh == 64 || dh == 128) && vkw_math::has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = dh;
        false
    }
}

/// Rows ahead of the current one whose lines the kernels prefetch: a
/// head's keys and values are read once per group of queries, mostly from
/// DRAM (every layer's cross-attention K/V of a window, ~300 MB at the
/// medium shape; see `cpu::prefetch`). In rows, not bytes, because the
/// self-attention caches are strided: 16 rows of 64 floats are
/// `prefetch::AHEAD` bytes of a contiguous head.
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = super::prefetch::AHEAD / (64 * 4);

thread_local! {
    /// Scores of one call, reused so decoder steps do not allocate.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A strided set of rows: row `r` starts at `data[offset + r·stride]`.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    /// Backing storage.
    pub data: &'a [f32],
    /// Offset of row 0 (including the head's column).
    pub offset: usize,
    /// Distance between rows.
    pub stride: usize,
}

impl Rows<'_> {
    fn check(&self, rows: usize, width: usize) {
        if rows > 0 {
            assert!(self.offset + (rows - 1) * self.stride + width <= self.data.len());
        }
    }
}

/// `out_i = softmax(scale · q_i · K_jᵀ, j < n) · V` for the `m` query rows of
/// `q`, each `dh` wide, into the `m` rows of `out` (`out_stride` apart).
///
/// # Panics
/// If [`available`] is false for `dh`, or a view is too short.
#[allow(clippy::too_many_arguments)]
// Only the x86-64 build reads `scale` (elsewhere `available` is false).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub fn attend_few(
    q: Rows<'_>,
    m: usize,
    k: Rows<'_>,
    v: Rows<'_>,
    n: usize,
    dh: usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    let avx512 = vkw_math::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    attend_with(avx512, q, m, k, v, n, dh, scale, out, out_stride)
}

/// [`attend_few`] on the AVX-512 build (`avx512`) or the AVX2 one (tests run
/// both where the CPU has them).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn attend_with(
    avx512: bool,
    q: Rows<'_>,
    m: usize,
    k: Rows<'_>,
    v: Rows<'_>,
    n: usize,
    dh: usize,
    scale: f32,
    out: &mut [f32],
    out_stride: usize,
) {
    assert!(
        available(dh),
        "attend_few needs AVX-512F or AVX2 and dh of 64 or 128"
    );
    q.check(m, dh);
    k.check(n, dh);
    v.check(n, dh);
    assert!(m == 0 || out.len() >= (m - 1) * out_stride + dh);
    assert!(!avx512 || vkw_math::has_avx512(), "no AVX-512F here");
    if n == 0 {
        return;
    }
    SCORES.with_borrow_mut(|p| {
        p.clear();
        p.resize(QB * n, 0.0);
        let mut i0 = 0;
        while i0 < m {
            let mb = (m - i0).min(QB);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the views were bounds-checked above and AVX-512F, or
            // else AVX2 + FMA, is present (`available`).
            unsafe {
                if avx512 {
                    x86::scores(q, i0, mb, k, n, dh, scale, p);
                } else {
                    x86_avx2::scores(q, i0, mb, k, n, dh, scale, p);
                }
            }
            for row in p.chunks_mut(n).take(mb) {
                vkw_math::softmax(row);
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; `out` holds rows i0..i0+mb.
            unsafe {
                let o = &mut out[i0 * out_stride..];
                if avx512 {
                    x86::weighted_sum(p, mb, v, n, dh, o, out_stride);
                } else {
                    x86_avx2::weighted_sum(p, mb, v, n, dh, o, out_stride);
                }
            }
            i0 += mb;
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // parallel register arrays, indexed alike
mod x86 {
    //! Every loop bound is a compile-time constant (`MB` queries, `V` vectors
    //! per row), so the accumulators stay in registers; with runtime bounds
    //! LLVM kept them in stack arrays and copied those with `memmove`.
    use super::{Rows, AHEAD, QB};
    use crate::cpu::prefetch::lines as prefetch_lines;
    use std::arch::x86_64::*;

    /// `p[i·n + j] = scale · q_{i0+i} · k_j` for `i < mb`, `j < n`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn scores(
        q: Rows<'_>,
        i0: usize,
        mb: usize,
        k: Rows<'_>,
        n: usize,
        dh: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        macro_rules! go {
            ($v:literal) => {
                match mb {
                    1 => scores_mv::<1, $v>(q, i0, k, n, scale, p),
                    2 => scores_mv::<2, $v>(q, i0, k, n, scale, p),
                    3 => scores_mv::<3, $v>(q, i0, k, n, scale, p),
                    4 => scores_mv::<4, $v>(q, i0, k, n, scale, p),
                    _ => scores_mv::<QB, $v>(q, i0, k, n, scale, p),
                }
            };
        }
        if dh == 64 {
            go!(4)
        } else {
            go!(8)
        }
    }

    #[inline(always)]
    unsafe fn scores_mv<const MB: usize, const V: usize>(
        q: Rows<'_>,
        i0: usize,
        k: Rows<'_>,
        n: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        let s = _mm512_set1_ps(scale);
        // The queries, pre-scaled.
        let qv: [[__m512; V]; MB] = std::array::from_fn(|i| {
            let base = q.data.as_ptr().add(q.offset + (i0 + i) * q.stride);
            std::array::from_fn(|c| _mm512_mul_ps(_mm512_loadu_ps(base.add(c * 16)), s))
        });
        let kp = k.data.as_ptr().add(k.offset);
        // Four keys at a time: 4·MB dot products whose 16-lane sums are
        // reduced together (one shuffle tree per 4 keys, not one per key).
        let mut j = 0;
        while j + 4 <= n {
            for t in 0..4 {
                prefetch_lines(kp.wrapping_add((j + AHEAD + t) * k.stride), V);
            }
            let mut acc = [[_mm512_setzero_ps(); 4]; MB];
            for c in 0..V {
                let kv: [__m512; 4] =
                    std::array::from_fn(|t| _mm512_loadu_ps(kp.add((j + t) * k.stride + c * 16)));
                for i in 0..MB {
                    for t in 0..4 {
                        acc[i][t] = _mm512_fmadd_ps(qv[i][c], kv[t], acc[i][t]);
                    }
                }
            }
            for i in 0..MB {
                _mm_storeu_ps(p.as_mut_ptr().add(i * n + j), reduce4(acc[i]));
            }
            j += 4;
        }
        for j in j..n {
            let row = kp.add(j * k.stride);
            let mut acc = [_mm512_setzero_ps(); MB];
            for c in 0..V {
                let kv = _mm512_loadu_ps(row.add(c * 16));
                for i in 0..MB {
                    acc[i] = _mm512_fmadd_ps(qv[i][c], kv, acc[i]);
                }
            }
            for i in 0..MB {
                *p.get_unchecked_mut(i * n + j) = _mm512_reduce_add_ps(acc[i]);
            }
        }
    }

    /// The lane sums of four vectors, as one 4-lane vector.
    #[inline(always)]
    unsafe fn reduce4(v: [__m512; 4]) -> __m128 {
        // 128-bit chunks: [a0+a2, a1+a3, b0+b2, b1+b3], likewise for c, d.
        let ab = _mm512_add_ps(
            _mm512_shuffle_f32x4(v[0], v[1], 0b01_00_01_00),
            _mm512_shuffle_f32x4(v[0], v[1], 0b11_10_11_10),
        );
        let cd = _mm512_add_ps(
            _mm512_shuffle_f32x4(v[2], v[3], 0b01_00_01_00),
            _mm512_shuffle_f32x4(v[2], v[3], 0b11_10_11_10),
        );
        // Chunks: [Σa, Σb, Σc, Σd], each still 4 partial lanes.
        let t = _mm512_add_ps(
            _mm512_shuffle_f32x4(ab, cd, 0b10_00_10_00),
            _mm512_shuffle_f32x4(ab, cd, 0b11_01_11_01),
        );
        let t = _mm512_add_ps(t, _mm512_permute_ps(t, 0b10_11_00_01));
        let t = _mm512_add_ps(t, _mm512_permute_ps(t, 0b01_00_11_10));
        // Lane 0 of each chunk holds its sum.
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, t))
    }

    /// `out_i = Σ_j p[i·n + j] · v_j` for `i < mb`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weighted_sum(
        p: &[f32],
        mb: usize,
        v: Rows<'_>,
        n: usize,
        dh: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        // Passes of 4 vectors (64 floats) keep 4·MB accumulators in registers.
        for c0 in (0..dh / 16).step_by(4) {
            match mb {
                1 => wsum::<1>(p, v, n, c0, out, out_stride),
                2 => wsum::<2>(p, v, n, c0, out, out_stride),
                3 => wsum::<3>(p, v, n, c0, out, out_stride),
                4 => wsum::<4>(p, v, n, c0, out, out_stride),
                _ => wsum::<QB>(p, v, n, c0, out, out_stride),
            }
        }
    }

    #[inline(always)]
    unsafe fn wsum<const MB: usize>(
        p: &[f32],
        v: Rows<'_>,
        n: usize,
        c0: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let vp = v.data.as_ptr().add(v.offset + c0 * 16);
        let mut acc = [[_mm512_setzero_ps(); 4]; MB];
        for j in 0..n {
            prefetch_lines(vp.wrapping_add((j + AHEAD) * v.stride), 4);
            let row = vp.add(j * v.stride);
            let vv: [__m512; 4] = std::array::from_fn(|c| _mm512_loadu_ps(row.add(c * 16)));
            for i in 0..MB {
                let w = _mm512_set1_ps(*p.get_unchecked(i * n + j));
                for c in 0..4 {
                    acc[i][c] = _mm512_fmadd_ps(w, vv[c], acc[i][c]);
                }
            }
        }
        for i in 0..MB {
            let o = out.as_mut_ptr().add(i * out_stride + c0 * 16);
            for c in 0..4 {
                _mm512_storeu_ps(o.add(c * 16), acc[i][c]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // parallel register arrays, indexed alike
mod x86_avx2 {
    //! The AVX2 + FMA build: 16 vector registers of 8 floats, so a query row
    //! (8 or 16 vectors) cannot stay in registers as in the AVX-512 build.
    //! Scores take two keys at a time for 3 to 5 queries (up to 10
    //! accumulators; the query chunks come from L1 as FMA memory operands),
    //! four for one or two queries; the weighted sum takes 16 columns per
    //! pass for 3 to 5 queries (2 accumulators each), 32 or 64 for fewer.
    //! At least 8 independent FMA chains either way: fewer left one query
    //! (greedy decoding, the fifth of a beam) at the FMA latency.
    //! Loop bounds are compile-time constants, as in the AVX-512 build.
    use super::{Rows, AHEAD, QB};
    use crate::cpu::prefetch::lines as prefetch_lines;
    use std::arch::x86_64::*;

    /// `p[i·n + j] = scale · q_{i0+i} · k_j` for `i < mb`, `j < n`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores(
        q: Rows<'_>,
        i0: usize,
        mb: usize,
        k: Rows<'_>,
        n: usize,
        dh: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        macro_rules! go {
            ($v:literal) => {
                match mb {
                    1 => scores_mv::<1, $v, 2>(q, i0, k, n, scale, p),
                    2 => scores_mv::<2, $v, 2>(q, i0, k, n, scale, p),
                    3 => scores_mv::<3, $v, 1>(q, i0, k, n, scale, p),
                    4 => scores_mv::<4, $v, 1>(q, i0, k, n, scale, p),
                    _ => scores_mv::<QB, $v, 1>(q, i0, k, n, scale, p),
                }
            };
        }
        if dh == 64 {
            go!(8)
        } else {
            go!(16)
        }
    }

    /// The 8 lane sums of `a` and of `b`, as `[Σa, Σb]`.
    #[inline(always)]
    unsafe fn sum2(a: __m256, b: __m256) -> (f32, f32) {
        // [a01 a23 b01 b23 | a45 a67 b45 b67]
        let h = _mm256_hadd_ps(a, b);
        let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        // [Σa Σb Σa Σb]
        let s = _mm_hadd_ps(s, s);
        (_mm_cvtss_f32(s), _mm_cvtss_f32(_mm_shuffle_ps(s, s, 0b01)))
    }

    /// Scores of keys `j..j + 2·PAIRS` for the `MB` queries at `qp`. Every
    /// (query, key) sum runs over the same chunks in the same order and is
    /// reduced by `sum2` with its pair, so `PAIRS` changes no bits.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn key_pairs<const MB: usize, const V: usize, const PAIRS: usize>(
        qp: &[*const f32; MB],
        kp: *const f32,
        stride: usize,
        j: usize,
        n: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        for t in 0..2 * PAIRS {
            prefetch_lines(kp.wrapping_add((j + AHEAD + t) * stride), V / 2);
        }
        let kr: [*const f32; 2] = [kp.add(j * stride), kp.add((j + 1) * stride)];
        let mut acc = [[[_mm256_setzero_ps(); 2]; PAIRS]; MB];
        for c in 0..V {
            let kv: [[__m256; 2]; PAIRS] = std::array::from_fn(|r| {
                std::array::from_fn(|t| _mm256_loadu_ps(kr[t].add((2 * r) * stride + c * 8)))
            });
            for i in 0..MB {
                let qv = _mm256_loadu_ps(qp[i].add(c * 8));
                for r in 0..PAIRS {
                    acc[i][r][0] = _mm256_fmadd_ps(qv, kv[r][0], acc[i][r][0]);
                    acc[i][r][1] = _mm256_fmadd_ps(qv, kv[r][1], acc[i][r][1]);
                }
            }
        }
        for i in 0..MB {
            for r in 0..PAIRS {
                let (s0, s1) = sum2(acc[i][r][0], acc[i][r][1]);
                *p.get_unchecked_mut(i * n + j + 2 * r) = s0 * scale;
                *p.get_unchecked_mut(i * n + j + 2 * r + 1) = s1 * scale;
            }
        }
    }

    /// `PAIRS` pairs of keys per iteration ([`key_pairs`]), then leftover
    /// pairs one at a time and a last odd key.
    #[inline(always)]
    unsafe fn scores_mv<const MB: usize, const V: usize, const PAIRS: usize>(
        q: Rows<'_>,
        i0: usize,
        k: Rows<'_>,
        n: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        let qp: [*const f32; MB] =
            std::array::from_fn(|i| q.data.as_ptr().add(q.offset + (i0 + i) * q.stride));
        let kp = k.data.as_ptr().add(k.offset);
        let mut j = 0;
        while j + 2 * PAIRS <= n {
            key_pairs::<MB, V, PAIRS>(&qp, kp, k.stride, j, n, scale, p);
            j += 2 * PAIRS;
        }
        while j + 2 <= n {
            key_pairs::<MB, V, 1>(&qp, kp, k.stride, j, n, scale, p);
            j += 2;
        }
        if j < n {
            let row = kp.add(j * k.stride);
            let mut acc = [_mm256_setzero_ps(); MB];
            for c in 0..V {
                let kv = _mm256_loadu_ps(row.add(c * 8));
                for i in 0..MB {
                    acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(qp[i].add(c * 8)), kv, acc[i]);
                }
            }
            for i in 0..MB {
                let (s, _) = sum2(acc[i], _mm256_setzero_ps());
                *p.get_unchecked_mut(i * n + j) = s * scale;
            }
        }
    }

    /// `out_i = Σ_j p[i·n + j] · v_j` for `i < mb`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted_sum(
        p: &[f32],
        mb: usize,
        v: Rows<'_>,
        n: usize,
        dh: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        // Passes of 8·CV columns keep CV·MB accumulators and a broadcast
        // weight in registers: 16 columns for 3 to 5 queries, more for one
        // or two, so that at least 8 FMA chains run (columns are separate
        // sums: the pass width changes no bits).
        macro_rules! passes {
            ($mb:literal, $cv:literal) => {
                for c0 in (0..dh).step_by(8 * $cv) {
                    wsum::<$mb, $cv>(p, v, n, c0, out, out_stride);
                }
            };
        }
        // `dh` is 64 or 128 (`available`).
        match mb {
            1 => passes!(1, 8),
            2 => passes!(2, 4),
            3 => passes!(3, 2),
            4 => passes!(4, 2),
            _ => passes!(5, 2),
        }
    }

    #[inline(always)]
    unsafe fn wsum<const MB: usize, const CV: usize>(
        p: &[f32],
        v: Rows<'_>,
        n: usize,
        c0: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let vp = v.data.as_ptr().add(v.offset + c0);
        let mut acc = [[_mm256_setzero_ps(); CV]; MB];
        for j in 0..n {
            // Each pass reads its own 32·CV bytes of every row.
            prefetch_lines(vp.wrapping_add((j + AHEAD) * v.stride), CV.div_ceil(2));
            let row = vp.add(j * v.stride);
            let rv: [__m256; CV] = std::array::from_fn(|c| _mm256_loadu_ps(row.add(8 * c)));
            for i in 0..MB {
                let w = _mm256_broadcast_ss(p.get_unchecked(i * n + j));
                for c in 0..CV {
                    acc[i][c] = _mm256_fmadd_ps(w, rv[c], acc[i][c]);
                }
            }
        }
        for i in 0..MB {
            let o = out.as_mut_ptr().add(i * out_stride + c0);
            for c in 0..CV {
                _mm256_storeu_ps(o.add(8 * c), acc[i][c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_attention_on_odd_counts() {
        if !available(64) {
            eprintln!("attend_few: neither AVX-512F nor AVX2 here, nothing to test");
            return;
        }
        for dh in [64, 128] {
            check(dh, false);
            if vkw_math::has_avx512() {
                check(dh, true);
            } else {
                eprintln!("attend_few: no AVX-512F here (or VKW_CPU_ISA=avx2), AVX2 build only");
            }
        }
    }

    /// Each query's result is the same bits whether it runs alone or in a
    /// group of any size (what lets `QB` change without moving a
    /// transcript).
    #[test]
    fn a_query_gives_the_same_bits_in_any_group() {
        if !available(64) {
            eprintln!("attend_few: neither AVX-512F nor AVX2 here, nothing to test");
            return;
        }
        let isas: &[bool] = if vkw_math::has_avx512() {
            &[false, true]
        } else {
            &[false]
        };
        let (dh, n) = (64, 303);
        let gen = |len: usize, s: u32| {
            (0..len)
                .map(|i| (((i as u32).wrapping_mul(2246822519) ^ s) % 2000) as f32 / 700.0 - 1.4)
                .collect::<Vec<f32>>()
        };
        let (q, k, v) = (gen(8 * dh, 3), gen(n * dh, 4), gen(n * dh, 5));
        let rows = |data| Rows {
            data,
            offset: 0,
            stride: dh,
        };
        for &avx512 in isas {
            let mut alone = vec![0f32; 8 * dh];
            for i in 0..8 {
                let qi = Rows {
                    data: &q,
                    offset: i * dh,
                    stride: dh,
                };
                let o = &mut alone[i * dh..(i + 1) * dh];
                attend_with(avx512, qi, 1, rows(&k), rows(&v), n, dh, 0.125, o, dh);
            }
            for m in 2..=8 {
                let mut out = vec![0f32; m * dh];
                attend_with(
                    avx512,
                    rows(&q),
                    m,
                    rows(&k),
                    rows(&v),
                    n,
                    dh,
                    0.125,
                    &mut out,
                    dh,
                );
                for (t, (a, b)) in out.iter().zip(&alone).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "avx512={avx512} m={m} value {t}");
                }
            }
        }
    }

    fn check(dh: usize, avx512: bool) {
        let gen = |n: usize, s: u32| {
            (0..n)
                .map(|i| (((i as u32).wrapping_mul(2654435761) ^ s) % 1000) as f32 / 500.0 - 1.0)
                .collect::<Vec<f32>>()
        };
        for &(m, n, kstride) in &[
            (1, 1, 64),
            (5, 37, 200),
            (8, 1500, 768),
            (3, 17, 128),
            (2, 2, 64),
            (4, 33, 130),
        ] {
            let kstride = kstride.max(dh);
            let q = gen(m * 3 * dh, 1);
            let kv = gen(n * kstride + 2 * dh, 2);
            let mut out = vec![0f32; m * 2 * dh];
            let rows = |offset, stride| Rows {
                data: &kv,
                offset,
                stride,
            };
            let qr = Rows {
                data: &q,
                offset: 5,
                stride: 3 * dh,
            };
            let scale = 0.125;
            attend_with(
                avx512,
                qr,
                m,
                rows(3, kstride),
                rows(3 + dh.min(kstride - dh), kstride),
                n,
                dh,
                scale,
                &mut out,
                2 * dh,
            );
            for i in 0..m {
                let qi = &q[5 + i * 3 * dh..5 + i * 3 * dh + dh];
                let voff = 3 + dh.min(kstride - dh);
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..dh)
                            .map(|t| f64::from(qi[t]) * f64::from(kv[3 + j * kstride + t]))
                            .sum::<f64>()
                            * f64::from(scale)
                    })
                    .collect();
                let mx = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|x| (x - mx).exp()).sum();
                for t in 0..dh {
                    let want: f64 = (0..n)
                        .map(|j| (s[j] - mx).exp() / z * f64::from(kv[voff + j * kstride + t]))
                        .sum();
                    let got = out[i * 2 * dh + t];
                    assert!(
                        (f64::from(got) - want).abs() < 2e-5,
                        "avx512={avx512} dh={dh} m={m} n={n} i={i} t={t}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
