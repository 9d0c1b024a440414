//! `y = x · Wᵀ + b` for weights in their stored dtype.
//!
//! Two paths: many rows (encoder, prompt pre-pass) widen the weight to f32 and
//! call the `gemm` crate's SIMD kernels (AVX-512 where the CPU has it); a few
//! rows (decoder steps, beams) stream the weight once, widening one row at a
//! time, since that case is bound by memory bandwidth, not arithmetic. Both
//! accumulate in f32, as CTranslate2 does for float32 compute (spec §2.6).

use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use vkw_model::WeightView;

/// Rows of `x` from which the gemm path is used; fewer go to [`super::gemv`].
const GEMM_MIN_ROWS: usize = super::gemv::MAX_ROWS + 1;

/// Widen row `r` (length `cols`) of a weight into `out`.
pub fn widen_row(w: WeightView<'_>, r: usize, cols: usize, out: &mut [f32]) {
    let range = r * cols..(r + 1) * cols;
    match w {
        WeightView::F32(v) => out.copy_from_slice(&v[range]),
        WeightView::F16(v) => v[range].convert_to_f32_slice(out),
        WeightView::BF16(v) => v[range].convert_to_f32_slice(out),
        WeightView::I8 { data, scale } => {
            // Dequantise by dividing by the row scale (spec §2.6).
            let s = scale[r];
            for (o, &q) in out.iter_mut().zip(&data[range]) {
                *o = f32::from(q) / s;
            }
        }
    }
}

/// The whole weight as f32 (borrowed when it already is).
pub fn widen<'a>(w: WeightView<'a>, rows: usize, cols: usize) -> std::borrow::Cow<'a, [f32]> {
    if let WeightView::F32(v) = w {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = vec![0f32; rows * cols];
    out.par_chunks_mut(cols.max(1) * 64)
        .enumerate()
        .for_each(|(chunk, block)| {
            for (i, row) in block.chunks_mut(cols).enumerate() {
                widen_row(w, chunk * 64 + i, cols, row);
            }
        });
    std::borrow::Cow::Owned(out)
}

/// `out[m, n] = x[m, k] · W[n, k]ᵀ + bias[n]`.
///
/// `x` rows are `x_stride` apart; `out` rows are `n` apart.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    x: &[f32],
    m: usize,
    k: usize,
    x_stride: usize,
    w: WeightView<'_>,
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    debug_assert!(out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if m >= GEMM_MIN_ROWS {
        let wf = widen(w, n, k);
        gemm_nt(x, m, k, x_stride, &wf, n, bias, out);
    } else {
        super::gemv::gemv(x, m, k, x_stride, w, n, bias, out);
    }
}

/// f32 `out = x · Wᵀ (+ bias)` through the `gemm` crate.
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt(
    x: &[f32],
    m: usize,
    k: usize,
    x_stride: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!(x.len() >= (m - 1) * x_stride + k && w.len() >= n * k && out.len() >= m * n);
    if let Some(b) = bias {
        for row in out[..m * n].chunks_mut(n) {
            row.copy_from_slice(b);
        }
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && m * n * k > 1 << 18 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every index gemm touches: x is
    // [m, k] with row stride x_stride, Wᵀ is read as [k, n] (row stride 1,
    // column stride k) and out is [m, n] row-major.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            bias.is_some(),
            x.as_ptr(),
            1,
            x_stride as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Dot product with independent lanes so the compiler vectorises it.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0f32; L];
    let ca = a.chunks_exact(L);
    let cb = b.chunks_exact(L);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..L {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail = x.mul_add(*y, tail);
    }
    // Pairwise reduction of the lanes.
    let mut w = L;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0] + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// Dot product, using FMA instructions where the CPU has them.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if vkw_math::has_avx2() {
            // SAFETY: the features were just detected.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: &[f32]) -> Vec<f32> {
        let mut o = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = f64::from(b[j]);
                for t in 0..k {
                    s += f64::from(x[i * k + t]) * f64::from(w[j * k + t]);
                }
                o[i * n + j] = s as f32;
            }
        }
        o
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn both_paths_match_reference_on_odd_shapes() {
        for &(m, k, n) in &[(1, 37, 129), (3, 64, 300), (8, 33, 17), (19, 100, 65)] {
            let x = pseudo(m * k, 1);
            let w = pseudo(n * k, 2);
            let b = pseudo(n, 3);
            let r = reference(&x, m, k, &w, n, &b);
            let mut o = vec![0f32; m * n];
            linear(&x, m, k, k, WeightView::F32(&w), n, Some(&b), &mut o);
            let err = r
                .iter()
                .zip(&o)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-4, "m={m} k={k} n={n}: {err}");
            let wh: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
            let wr: Vec<f32> = wh.iter().map(|v| v.to_f32()).collect();
            let r = reference(&x, m, k, &wr, n, &b);
            linear(&x, m, k, k, WeightView::F16(&wh), n, Some(&b), &mut o);
            let err = r
                .iter()
                .zip(&o)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-4, "f16 m={m} k={k} n={n}: {err}");
        }
    }
}
