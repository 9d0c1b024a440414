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
            for j in lo..hi {
                let mut acc = [0f32; MAX_ROWS];
                if fast {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: simd_available() checked the CPU features.
                    unsafe {
                        x86::row_dots(x, m, k, x_stride, w, j, &mut acc)
                    };
                } else {
                    widen_row(w, j, k, row);
                    for (i, a) in acc.iter_mut().enumerate().take(m) {
                        *a = dot(&x[i * x_stride..i * x_stride + k], row);
                    }
                }
                let bj = bias.map_or(0.0, |bb| bb[j]);
                for (i, a) in acc.iter().enumerate().take(m) {
                    // SAFETY: column j belongs to this task only; i < m and
                    // j < n keep the index inside out[m, n].
                    unsafe { *p.0.add(i * n + j) = a + bj };
                }
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
    use std::arch::x86_64::*;
    use vkw_model::WeightView;

    /// Load 8 weights of row `j` at column `c` as f32.
    #[inline(always)]
    unsafe fn load8(w: WeightView<'_>, idx: usize) -> __m256 {
        match w {
            WeightView::F32(v) => _mm256_loadu_ps(v.as_ptr().add(idx)),
            WeightView::F16(v) => {
                _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(idx) as *const __m128i))
            }
            WeightView::BF16(v) => {
                // bfloat16 is the upper half of a float32.
                let h = _mm_loadu_si128(v.as_ptr().add(idx) as *const __m128i);
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
            }
            WeightView::I8 { .. } => _mm256_setzero_ps(),
        }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[inline(always)]
    unsafe fn kernel<const M: usize>(
        x: &[f32],
        k: usize,
        xs: usize,
        w: WeightView<'_>,
        j: usize,
        out: &mut [f32; MAX_ROWS],
    ) {
        let base = j * k;
        let mut acc = [_mm256_setzero_ps(); M];
        let mut c = 0;
        while c + 8 <= k {
            let wv = load8(w, base + c);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(x.as_ptr().add(i * xs + c)), wv, *a);
            }
            c += 8;
        }
        for i in 0..M {
            let mut s = hsum(acc[i]);
            for t in c..k {
                let wt = match w {
                    WeightView::F32(v) => v[base + t],
                    WeightView::F16(v) => v[base + t].to_f32(),
                    WeightView::BF16(v) => v[base + t].to_f32(),
                    WeightView::I8 { .. } => 0.0,
                };
                s += x[i * xs + t] * wt;
            }
            out[i] = s;
        }
    }

    /// Dot products of weight row `j` with the `m` rows of `x`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn row_dots(
        x: &[f32],
        m: usize,
        k: usize,
        xs: usize,
        w: WeightView<'_>,
        j: usize,
        out: &mut [f32; MAX_ROWS],
    ) {
        match m {
            1 => kernel::<1>(x, k, xs, w, j, out),
            2 => kernel::<2>(x, k, xs, w, j, out),
            3 => kernel::<3>(x, k, xs, w, j, out),
            4 => kernel::<4>(x, k, xs, w, j, out),
            5 => kernel::<5>(x, k, xs, w, j, out),
            6 => kernel::<6>(x, k, xs, w, j, out),
            7 => kernel::<7>(x, k, xs, w, j, out),
            _ => kernel::<8>(x, k, xs, w, j, out),
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
}
