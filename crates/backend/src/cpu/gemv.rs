//! Few-row matmul (`m ≤ 8` rows of `x`: decoder steps, beams as one batch).
//!
//! This case is bound by memory bandwidth: each weight row is read once and
//! used for all `m` rows of `x` while it is in registers. On x86-64 with
//! AVX2+FMA+F16C, float16 weights are widened in registers (`vcvtph2ps`), so
//! a float16 model streams half the bytes of a float32 one. Elsewhere the
//! portable path widens a row into a buffer and uses the lane-parallel dot.

use super::matmul::{dot, widen_row};
use rayon::prelude::*;
use vkw_model::WeightView;

/// Largest `m` the register kernels handle.
pub const MAX_ROWS: usize = 8;

/// Output columns per parallel task.
const BLOCK: usize = 64;

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint columns of the output (see `gemv`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `out[m, n] = x[m, k] · W[n, k]ᵀ + bias`, for `1 ≤ m ≤ MAX_ROWS`.
#[allow(clippy::too_many_arguments)]
pub fn gemv(
    x: &[f32],
    m: usize,
    k: usize,
    x_stride: usize,
    w: WeightView<'_>,
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!((1..=MAX_ROWS).contains(&m));
    assert!(x.len() >= (m - 1) * x_stride + k && out.len() >= m * n);
    let ptr = OutPtr(out.as_mut_ptr());
    let fast = simd_available() && !matches!(w, WeightView::I8 { .. });
    (0..n.div_ceil(BLOCK)).into_par_iter().for_each_init(
        || vec![0f32; k],
        |row, b| {
            let lo = b * BLOCK;
            let hi = (lo + BLOCK).min(n);
            let p = ptr;
            // Passed as `&mut` to the x86-64 kernels only.
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
            let mut put = |j: usize, acc: &[f32; MAX_ROWS]| {
                let bj = bias.map_or(0.0, |bb| bb[j]);
                for (i, a) in acc.iter().enumerate().take(m) {
                    // SAFETY: column j belongs to this task only; i < m and
                    // j < n keep the index inside out[m, n].
                    unsafe { *p.0.add(i * n + j) = a + bj };
                }
            };
            if fast {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: simd_available() checked the CPU features.
                unsafe {
                    x86::row_dots(x, m, k, x_stride, w, lo..hi, &mut put)
                };
                return;
            }
            for j in lo..hi {
                let mut acc = [0f32; MAX_ROWS];
                widen_row(w, j, k, row);
                for (i, a) in acc.iter_mut().enumerate().take(m) {
                    *a = dot(&x[i * x_stride..i * x_stride + k], row);
                }
                put(j, &acc);
            }
        },
    );
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        vkw_math::has_avx2() && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::MAX_ROWS;
    use half::{bf16, f16};
    use std::arch::x86_64::*;
    use std::ops::Range;
    use vkw_model::WeightView;

    /// A weight element type the kernels widen to f32 in registers. The
    /// kernels are generic over it so the type is chosen once per call, not
    /// per load.
    trait Weight: Copy {
        /// 8 weights at `p`, as f32.
        unsafe fn load8(p: *const Self) -> __m256;
        /// 8 weights at `p` in the low half and 8 at `q` in the high half.
        unsafe fn load8x2(p: *const Self, q: *const Self) -> __m512;
        fn widen(self) -> f32;
    }

    impl Weight for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load8x2(p: *const f32, q: *const f32) -> __m512 {
            let lo = _mm512_castps256_ps512(_mm256_loadu_ps(p));
            let hi = _mm256_castps_pd(_mm256_loadu_ps(q));
            _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(lo), hi, 1))
        }
        #[inline(always)]
        fn widen(self) -> f32 {
            self
        }
    }

    impl Weight for f16 {
        #[inline(always)]
        unsafe fn load8(p: *const f16) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn load8x2(p: *const f16, q: *const f16) -> __m512 {
            let lo = _mm256_castsi128_si256(_mm_loadu_si128(p as *const __m128i));
            let both = _mm256_inserti128_si256(lo, _mm_loadu_si128(q as *const __m128i), 1);
            _mm512_cvtph_ps(both)
        }
        #[inline(always)]
        fn widen(self) -> f32 {
            self.to_f32()
        }
    }

    impl Weight for bf16 {
        #[inline(always)]
        unsafe fn load8(p: *const bf16) -> __m256 {
            // bfloat16 is the upper half of a float32.
            let h = _mm_loadu_si128(p as *const __m128i);
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
        }
        #[inline(always)]
        unsafe fn load8x2(p: *const bf16, q: *const bf16) -> __m512 {
            let lo = _mm256_castsi128_si256(_mm_loadu_si128(p as *const __m128i));
            let both = _mm256_inserti128_si256(lo, _mm_loadu_si128(q as *const __m128i), 1);
            _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(both), 16))
        }
        #[inline(always)]
        fn widen(self) -> f32 {
            self.to_f32()
        }
    }

    /// At column `c` of `rows` weight rows from `w` (`k` apart), prefetch
    /// each row's line `prefetch::AHEAD` bytes ahead, once per 64-byte line:
    /// the projection to the vocabulary and the layers stream tens to
    /// hundreds of MB per step (see `cpu::prefetch`).
    #[inline(always)]
    fn ahead<T>(w: *const T, k: usize, rows: usize, c: usize) {
        if (c * std::mem::size_of::<T>()).is_multiple_of(64) {
            for r in 0..rows {
                crate::cpu::prefetch::ahead(w.wrapping_add(r * k + c));
            }
        }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// `hsum` of the row's 8-lane sum plus its scalar tail (columns `c..k`):
    /// every kernel ends a (row of `x`, weight row) pair this way.
    #[inline(always)]
    unsafe fn finish<T: Weight>(v: __m256, x: *const f32, w: *const T, c: usize, k: usize) -> f32 {
        let mut s = hsum(v);
        for t in c..k {
            s += *x.add(t) * (*w.add(t)).widen();
        }
        s
    }

    /// Dot products of weight rows `j..j + J` with the `m = M` rows of `x`.
    ///
    /// Each (row of `x`, weight row) pair keeps its own 8-lane accumulator,
    /// summed in column order and reduced by `finish`: the same operations
    /// in the same order whatever `J` is, so every blocking gives the same
    /// bits. `J` weight rows at once give `M·J` independent FMA chains (one
    /// row alone left the FMA latency exposed at beam sizes below 8) and
    /// reuse each load of `x` `J` times.
    #[inline(always)]
    // Indexes two dimensions of the register block at once.
    #[allow(clippy::needless_range_loop)]
    unsafe fn kernel<T: Weight, const M: usize, const J: usize>(
        x: *const f32,
        k: usize,
        xs: usize,
        w: *const T,
        out: &mut [[f32; MAX_ROWS]; J],
    ) {
        let mut acc = [[_mm256_setzero_ps(); M]; J];
        let mut c = 0;
        while c + 8 <= k {
            ahead(w, k, J, c);
            let mut wv = [_mm256_setzero_ps(); J];
            for (r, v) in wv.iter_mut().enumerate() {
                *v = T::load8(w.add(r * k + c));
            }
            for i in 0..M {
                let xv = _mm256_loadu_ps(x.add(i * xs + c));
                for r in 0..J {
                    acc[r][i] = _mm256_fmadd_ps(xv, wv[r], acc[r][i]);
                }
            }
            c += 8;
        }
        for r in 0..J {
            for i in 0..M {
                out[r][i] = finish(acc[r][i], x.add(i * xs), w.add(r * k), c, k);
            }
        }
    }

    /// [`kernel`] with two weight rows per 16-lane AVX-512 vector: row
    /// `2p` in the low 8 lanes, row `2p + 1` in the high 8, `x` broadcast
    /// to both halves. Every lane sees exactly the FMAs of the 8-lane
    /// kernel, and each half is reduced by the same `hsum`, so the bits are
    /// the AVX2 kernel's — with half the FMAs and `x` loads.
    #[inline(always)]
    // Indexes two dimensions of the register block at once.
    #[allow(clippy::needless_range_loop)]
    unsafe fn kernel_pairs<T: Weight, const M: usize, const P: usize, const J: usize>(
        x: *const f32,
        k: usize,
        xs: usize,
        w: *const T,
        out: &mut [[f32; MAX_ROWS]; J],
    ) {
        debug_assert_eq!(2 * P, J);
        let mut acc = [[_mm512_setzero_ps(); M]; P];
        let mut c = 0;
        while c + 8 <= k {
            ahead(w, k, J, c);
            let mut wv = [_mm512_setzero_ps(); P];
            for (p, v) in wv.iter_mut().enumerate() {
                *v = T::load8x2(w.add(2 * p * k + c), w.add((2 * p + 1) * k + c));
            }
            for i in 0..M {
                let x8 = _mm256_loadu_pd(x.add(i * xs + c) as *const f64);
                let xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(x8));
                for p in 0..P {
                    acc[p][i] = _mm512_fmadd_ps(xv, wv[p], acc[p][i]);
                }
            }
            c += 8;
        }
        for p in 0..P {
            for i in 0..M {
                let v = acc[p][i];
                let lo = _mm512_castps512_ps256(v);
                let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
                let xi = x.add(i * xs);
                out[2 * p][i] = finish(lo, xi, w.add(2 * p * k), c, k);
                out[2 * p + 1][i] = finish(hi, xi, w.add((2 * p + 1) * k), c, k);
            }
        }
    }

    /// Weight rows `cols` in blocks of `J` (by [`kernel_pairs`] with `P`
    /// pairs when `PAIRS`, else by [`kernel`]), the remainder one at a time
    /// by the 8-lane kernel (same bits).
    #[inline(always)]
    unsafe fn blocked<
        T: Weight,
        const M: usize,
        const J: usize,
        const P: usize,
        const PAIRS: bool,
    >(
        x: &[f32],
        k: usize,
        xs: usize,
        w: &[T],
        cols: Range<usize>,
        put: &mut impl FnMut(usize, &[f32; MAX_ROWS]),
    ) {
        debug_assert!(cols.end * k <= w.len());
        let (x, w) = (x.as_ptr(), w.as_ptr());
        let mut j = cols.start;
        let mut out = [[0f32; MAX_ROWS]; J];
        while j + J <= cols.end {
            if PAIRS {
                kernel_pairs::<T, M, P, J>(x, k, xs, w.add(j * k), &mut out);
            } else {
                kernel::<T, M, J>(x, k, xs, w.add(j * k), &mut out);
            }
            for (r, o) in out.iter().enumerate() {
                put(j + r, o);
            }
            j += J;
        }
        let mut one = [[0f32; MAX_ROWS]; 1];
        while j < cols.end {
            kernel::<T, M, 1>(x, k, xs, w.add(j * k), &mut one);
            put(j, &one[0]);
            j += 1;
        }
    }

    /// AVX2 has 16 vector registers: `m·J` accumulators + `J` weights + one
    /// `x` stay at or below 16.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_avx2<T: Weight>(
        x: &[f32],
        m: usize,
        k: usize,
        xs: usize,
        w: &[T],
        cols: Range<usize>,
        put: &mut impl FnMut(usize, &[f32; MAX_ROWS]),
    ) {
        macro_rules! go {
            ($m:literal, $j:literal) => {
                blocked::<T, $m, $j, 0, false>(x, k, xs, w, cols, put)
            };
        }
        match m {
            1 => go!(1, 4),
            2 => go!(2, 4),
            3 => go!(3, 3),
            4 => go!(4, 2),
            5 => go!(5, 2),
            6 => go!(6, 2),
            7 => go!(7, 1),
            _ => go!(8, 1),
        }
    }

    /// AVX-512: 32 vector registers, two weight rows per vector
    /// ([`kernel_pairs`]): `m·P` accumulators + `P` weights + one `x`.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn rows_avx512<T: Weight>(
        x: &[f32],
        m: usize,
        k: usize,
        xs: usize,
        w: &[T],
        cols: Range<usize>,
        put: &mut impl FnMut(usize, &[f32; MAX_ROWS]),
    ) {
        macro_rules! go {
            ($m:literal, $p:literal) => {
                blocked::<T, $m, { 2 * $p }, $p, true>(x, k, xs, w, cols, put)
            };
        }
        match m {
            1 => go!(1, 4),
            2 => go!(2, 4),
            3 => go!(3, 4),
            4 => go!(4, 4),
            5 => go!(5, 4),
            6 => go!(6, 3),
            7 => go!(7, 3),
            _ => go!(8, 3),
        }
    }

    /// Dot products of weight rows `cols` with the `m` rows of `x`, each
    /// weight row's results handed to `put` in order.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `x` must hold `m` rows of `k`
    /// values `xs` apart and `w` at least `cols.end` rows of `k` values.
    pub unsafe fn row_dots(
        x: &[f32],
        m: usize,
        k: usize,
        xs: usize,
        w: WeightView<'_>,
        cols: Range<usize>,
        put: &mut impl FnMut(usize, &[f32; MAX_ROWS]),
    ) {
        row_dots_with(vkw_math::has_avx512(), x, m, k, xs, w, cols, put)
    }

    /// [`row_dots`] on the AVX-512 build (`avx512`) or the AVX2 one (the
    /// bit-identity test runs both where the CPU has them).
    ///
    /// # Safety
    /// As [`row_dots`]; `avx512` needs AVX-512F.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn row_dots_with(
        avx512: bool,
        x: &[f32],
        m: usize,
        k: usize,
        xs: usize,
        w: WeightView<'_>,
        cols: Range<usize>,
        put: &mut impl FnMut(usize, &[f32; MAX_ROWS]),
    ) {
        macro_rules! on {
            ($v:expr) => {
                if avx512 {
                    rows_avx512(x, m, k, xs, $v, cols, put)
                } else {
                    rows_avx2(x, m, k, xs, $v, cols, put)
                }
            };
        }
        match w {
            WeightView::F32(v) => on!(v),
            WeightView::F16(v) => on!(v),
            WeightView::BF16(v) => on!(v),
            WeightView::I8 { .. } => unreachable!("int8 weights take the int8 path"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_row_counts_and_dtypes_match_reference() {
        let (k, n) = (45, 131);
        let x: Vec<f32> = (0..MAX_ROWS * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let wf: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0)
            .collect();
        let wh: Vec<half::f16> = wf.iter().map(|&v| half::f16::from_f32(v)).collect();
        let wb: Vec<half::bf16> = wf.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
        for m in 1..=MAX_ROWS {
            for w in [
                WeightView::F32(&wf),
                WeightView::F16(&wh),
                WeightView::BF16(&wb),
            ] {
                let mut out = vec![0f32; m * n];
                gemv(&x, m, k, k, w, n, Some(&bias), &mut out);
                let mut row = vec![0f32; k];
                for j in 0..n {
                    widen_row(w, j, k, &mut row);
                    for i in 0..m {
                        let want: f32 = x[i * k..(i + 1) * k]
                            .iter()
                            .zip(&row)
                            .map(|(a, b)| a * b)
                            .sum::<f32>()
                            + bias[j];
                        assert!((out[i * n + j] - want).abs() < 1e-4, "m={m} j={j}");
                    }
                }
            }
        }
    }

    /// What the 8-lane kernel computes, in scalar code: lane `l` sums
    /// `x[c]·w[c]` (fused) over columns `c ≡ l (mod 8)` in order, the lanes
    /// reduce as `hsum` does, then the tail adds unfused products.
    #[cfg(target_arch = "x86_64")]
    fn lane_order_dot(x: &[f32], w: &[f32]) -> f32 {
        let k = x.len();
        let full = k / 8 * 8;
        let mut lane = [0f32; 8];
        for c in (0..full).step_by(8) {
            for l in 0..8 {
                lane[l] = x[c + l].mul_add(w[c + l], lane[l]);
            }
        }
        let q: Vec<f32> = (0..4).map(|l| lane[l] + lane[l + 4]).collect();
        let (a, b) = (q[0] + q[2], q[1] + q[3]);
        let mut s = a + b;
        for t in full..k {
            s += x[t] * w[t];
        }
        s
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_isa_build_gives_the_lane_order_bits() {
        if !simd_available() {
            eprintln!("skipped: no AVX2 + FMA + F16C");
            return;
        }
        let avx512 = std::is_x86_feature_detected!("avx512f");
        for k in [8, 45, 384] {
            let n = 37;
            let x: Vec<f32> = (0..MAX_ROWS * k)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
                .collect();
            let wf: Vec<f32> = (0..n * k)
                .map(|i| ((i * 104729 % 2003) as f32 - 1001.0) / 311.0)
                .collect();
            let wh: Vec<half::f16> = wf.iter().map(|&v| half::f16::from_f32(v)).collect();
            let wb: Vec<half::bf16> = wf.iter().map(|&v| half::bf16::from_f32(v)).collect();
            for w in [
                WeightView::F32(&wf),
                WeightView::F16(&wh),
                WeightView::BF16(&wb),
            ] {
                let mut row = vec![0f32; k];
                for m in 1..=MAX_ROWS {
                    for isa512 in [false, true] {
                        if isa512 && !avx512 {
                            continue;
                        }
                        let mut out = vec![0f32; m * n];
                        let mut put = |j: usize, a: &[f32; MAX_ROWS]| {
                            for i in 0..m {
                                out[i * n + j] = a[i];
                            }
                        };
                        // SAFETY: features checked above; x holds m rows of
                        // k, w holds n rows of k.
                        unsafe { x86::row_dots_with(isa512, &x, m, k, k, w, 0..n, &mut put) };
                        for j in 0..n {
                            widen_row(w, j, k, &mut row);
                            for i in 0..m {
                                let want = lane_order_dot(&x[i * k..(i + 1) * k], &row);
                                assert_eq!(
                                    out[i * n + j].to_bits(),
                                    want.to_bits(),
                                    "k={k} m={m} j={j} i={i} avx512={isa512}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
