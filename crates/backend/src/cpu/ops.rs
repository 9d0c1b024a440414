//! Element-wise and row-wise operations of the forward pass (spec §4.4–§4.5).

use rayon::prelude::*;

/// LayerNorm over rows of width `d`: `(x − mean) / sqrt(var + eps) · γ + β`
/// with the biased variance (spec §4.4).
pub fn layer_norm(x: &[f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let rows = x.len() / d;
    let work = |(xi, oi): (&[f32], &mut [f32])| layer_norm_row(xi, gamma, beta, eps, oi);
    if rows >= 64 {
        x.par_chunks(d).zip(out.par_chunks_mut(d)).for_each(work);
    } else {
        x.chunks(d).zip(out.chunks_mut(d)).for_each(work);
    }
}

fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if vkw_math::has_avx2() {
        // SAFETY: the CPU features were checked.
        return unsafe { layer_norm_row_avx2(x, gamma, beta, eps, out) };
    }
    layer_norm_row_impl(x, gamma, beta, eps, out)
}

/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn layer_norm_row_avx2(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    layer_norm_row_impl(x, gamma, beta, eps, out)
}

/// Sum of `f(v)` in float64 over 8 independent lanes: a single running
/// sum is one dependent add per value, which the compiler may not reorder
/// (the encoder's LayerNorms were a scalar loop). The lanes change the
/// float64 rounding only, far below the float32 result's.
#[inline(always)]
fn sum_f64(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    const L: usize = 8;
    let mut acc = [0f64; L];
    let chunks = x.chunks_exact(L);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(f64::from(v))).sum();
    for c in chunks {
        for l in 0..L {
            acc[l] += f(f64::from(c[l]));
        }
    }
    tail + acc.iter().sum::<f64>()
}

#[inline(always)]
fn layer_norm_row_impl(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = x.len();
    let mean = sum_f64(x, |v| v) / d as f64;
    let var = sum_f64(x, |v| (v - mean) * (v - mean)) / d as f64;
    let inv = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
    let mean = mean as f32;
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
        *o = (v - mean) * inv * g + b;
    }
}

/// Exact (erf) GELU, `0.5·x·(1 + erf(x/√2))` (spec §4.4), in place.
pub fn gelu(x: &mut [f32]) {
    if x.len() >= 1 << 14 {
        x.par_chunks_mut(4096).for_each(vkw_math::gelu);
    } else {
        vkw_math::gelu(x);
    }
}

/// Numerically stable softmax of one row, in place.
pub fn softmax(x: &mut [f32]) {
    vkw_math::softmax(x);
}

/// `x += y`, element-wise.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    if x.len() >= 1 << 15 {
        x.par_chunks_mut(8192)
            .zip(y.par_chunks(8192))
            .for_each(|(a, b)| add_chunk(a, b));
    } else {
        add_chunk(x, y);
    }
}

fn add_chunk(x: &mut [f32], y: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if vkw_math::has_avx2() {
        // SAFETY: the CPU features were checked.
        return unsafe { add_chunk_avx2(x, y) };
    }
    x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
}

/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_chunk_avx2(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_known_values() {
        let mut v = [0.0f32, 1.0, -1.0, 3.0];
        gelu(&mut v);
        let want = [0.0, 0.841_344_7, -0.158_655_26, 2.995_950_5];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn layer_norm_normalises() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let mut o = [0f32; 4];
        layer_norm(&x, 4, &[1.0; 4], &[0.0; 4], 1e-5, &mut o);
        let mean: f32 = o.iter().sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        assert!((o[3] - 1.341_635).abs() < 1e-4);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut v = [1000.0f32, 1001.0, 999.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[1] > v[0] && v[0] > v[2]);
    }
}
