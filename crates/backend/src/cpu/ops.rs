//! Element-wise and row-wise operations of the forward pass (spec §4.4–§4.5).

use rayon::prelude::*;

/// LayerNorm over rows of width `d`: `(x − mean) / sqrt(var + eps) · γ + β`
/// with the biased variance (spec §4.4).
pub fn layer_norm(x: &[f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let rows = x.len() / d;
    let work = |(xi, oi): (&[f32], &mut [f32])| {
        let mean = xi.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = xi
            .iter()
            .map(|&v| {
                let c = f64::from(v) - mean;
                c * c
            })
            .sum::<f64>()
            / d as f64;
        let inv = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
        let mean = mean as f32;
        for j in 0..d {
            oi[j] = (xi[j] - mean) * inv * gamma[j] + beta[j];
        }
    };
    if rows >= 64 {
        x.par_chunks(d).zip(out.par_chunks_mut(d)).for_each(work);
    } else {
        x.chunks(d).zip(out.chunks_mut(d)).for_each(work);
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
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(p, q)| *p += q));
    } else {
        x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
    }
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
