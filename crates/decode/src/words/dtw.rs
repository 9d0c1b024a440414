//! The numeric part of the alignment (spec §7.1 steps 3–8, §7.2): from the
//! alignment heads' cross-attention scores to a monotonic token ↔ frame path.
//!
//! Everything is float32 as in CTranslate2, which runs these steps in C++
//! (`WhisperReplica::align`, `dtw.cc`) on float32 tensors.
//!
//! Follows CTranslate2 4.8.5 `src/models/whisper.cc` (the DTW and alignment matrix of
//! `WhisperReplica::align`) and `src/ops/median_filter.cc`.

/// Width of the median filter CTranslate2's `align` uses by default (§9.2).
pub const MEDIAN_FILTER_WIDTH: usize = 7;

/// Turn raw scores `[heads, n_tokens, n_ctx]` into the alignment matrix
/// `[rows.len(), frames]` (spec §7.1 steps 3–7): softmax over the first
/// `frames` encoder frames per (head, token), normalise each (head, frame)
/// column over the tokens, median-filter along frames, average the heads,
/// and keep the token rows `rows`.
pub fn alignment_matrix(
    scores: &[f32],
    heads: usize,
    n_tokens: usize,
    n_ctx: usize,
    frames: usize,
    rows: std::ops::Range<usize>,
) -> Vec<f32> {
    let frames = frames.min(n_ctx);
    let mut matrix = vec![0f32; rows.len() * frames];
    if frames == 0 || heads == 0 {
        return matrix;
    }
    let mut w = vec![0f32; n_tokens * frames];
    for h in 0..heads {
        // Step 3: softmax over the kept frames only.
        for t in 0..n_tokens {
            let src = &scores[(h * n_tokens + t) * n_ctx..][..frames];
            let dst = &mut w[t * frames..(t + 1) * frames];
            let m = src.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0f32;
            for (o, &x) in dst.iter_mut().zip(src) {
                *o = (x - m).exp();
                z += *o;
            }
            dst.iter_mut().for_each(|o| *o /= z);
        }
        // Step 4: (w − mean) / std over the token axis, population std, no ε.
        for f in 0..frames {
            let col = |t: usize| w[t * frames + f];
            let mean = (0..n_tokens).map(col).sum::<f32>() / n_tokens as f32;
            let var = (0..n_tokens).map(|t| (col(t) - mean).powi(2)).sum::<f32>() / n_tokens as f32;
            let std = var.sqrt();
            for t in 0..n_tokens {
                w[t * frames + f] = (w[t * frames + f] - mean) / std;
            }
        }
        // Step 5: median filter along frames; step 6/7: sum the kept rows.
        let mut filtered = vec![0f32; frames];
        for (r, t) in rows.clone().enumerate() {
            median_filter(
                &w[t * frames..(t + 1) * frames],
                MEDIAN_FILTER_WIDTH,
                &mut filtered,
            );
            for (m, &x) in matrix[r * frames..(r + 1) * frames]
                .iter_mut()
                .zip(&filtered)
            {
                *m += x;
            }
        }
    }
    let inv = 1.0 / heads as f32;
    matrix.iter_mut().for_each(|m| *m *= inv);
    matrix
}

/// Median of a sliding window of odd `width` with reflect padding (the edge
/// is not repeated: index −k reads k). Rows not longer than `width / 2` are
/// copied unchanged, as in CTranslate2 and openai-whisper.
pub fn median_filter(x: &[f32], width: usize, out: &mut [f32]) {
    let n = x.len();
    let pad = width / 2;
    if n <= pad {
        out[..n].copy_from_slice(x);
        return;
    }
    let reflect = |i: isize| -> f32 {
        let n = n as isize;
        let j = if i < 0 {
            -i
        } else if i >= n {
            2 * (n - 1) - i
        } else {
            i
        };
        x[j.clamp(0, n - 1) as usize]
    };
    let mut win = vec![0f32; width];
    for (i, o) in out[..n].iter_mut().enumerate() {
        for (k, v) in win.iter_mut().enumerate() {
            *v = reflect(i as isize + k as isize - pad as isize);
        }
        win.sort_unstable_by(|a, b| a.total_cmp(b));
        *o = win[pad];
    }
}

/// Dynamic time warping of the cost `x` (`[n, m]`, row-major) as CTranslate2
/// and openai-whisper do it (spec §7.2); returns `(row, column)` pairs ending
/// at `(n−1, m−1)`. Ties prefer the horizontal move, then vertical.
///
/// With finite costs the path starts at `(0, 0)`. With NaN costs (a window
/// of one encoder frame: the per-frame normalisation divides 0 by 0) the
/// walk runs along the matrix border and, as in the reference backtrace,
/// emits pairs with index −1; they are kept, since word times are read from
/// them (−1 frame = −0.02 s) exactly as faster-whisper reads them.
pub fn dtw(x: &[f32], n: usize, m: usize) -> Vec<(isize, isize)> {
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let w = m + 1;
    let mut cost = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![-1i8; (n + 1) * w];
    cost[0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let c0 = cost[(i - 1) * w + j - 1];
            let c1 = cost[(i - 1) * w + j];
            let c2 = cost[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            cost[i * w + j] = x[(i - 1) * m + j - 1] + c;
            trace[i * w + j] = t;
        }
    }
    // Borders: the first row can only move left, the first column only up.
    trace[..=m].iter_mut().for_each(|t| *t = 2);
    for i in 0..=n {
        trace[i * w] = 1;
    }
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        path.push((i as isize - 1, j as isize - 1));
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_filter_reflects_edges() {
        let x = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 0.0, 7.0];
        let mut out = [0f32; 8];
        median_filter(&x, 7, &mut out);
        // i = 0 window (reflect): x[3] x[2] x[1] x[0] x[1] x[2] x[3]
        // = 2 4 1 5 1 4 2 → sorted 1 1 2 2 4 4 5 → 2.
        assert_eq!(out[0], 2.0);
        // i = 3: x[0..7] = 5 1 4 2 3 9 0 → 0 1 2 3 4 5 9 → 3.
        assert_eq!(out[3], 3.0);
        // i = 7: x[4..8] then x[6] x[5] x[4] = 3 9 0 7 0 9 3 → 0 0 3 3 7 9 9 → 3.
        assert_eq!(out[7], 3.0);
        // Short rows stay as they are.
        let mut o = [0f32; 3];
        median_filter(&[3.0, 1.0, 2.0], 7, &mut o);
        assert_eq!(o, [3.0, 1.0, 2.0]);
        // A row of 4 (just longer than the pad) is filtered with reflection.
        let mut o = [0f32; 4];
        median_filter(&[1.0, 9.0, 2.0, 8.0], 7, &mut o);
        // i = 0: x3 x2 x1 x0 x1 x2 x3 = 8 2 9 1 9 2 8 → 1 2 2 8 8 9 9 → 8.
        assert_eq!(o[0], 8.0);
    }

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // Cost 0 on the diagonal-ish path, 1 elsewhere.
        let (n, m) = (3, 5);
        let cheap: [(isize, isize); 5] = [(0, 0), (0, 1), (1, 2), (2, 3), (2, 4)];
        let mut x = vec![1f32; n * m];
        for &(i, j) in &cheap {
            x[i as usize * m + j as usize] = 0.0;
        }
        assert_eq!(dtw(&x, n, m), cheap.to_vec());
    }

    #[test]
    fn dtw_with_nan_costs_walks_the_border_as_the_reference() {
        // One frame, NaN costs (what a one-frame window gives): openai-whisper's
        // backtrace yields (0,−1) (1,−1) (2,−1) (3,−1) (3,0).
        let p = dtw(&[f32::NAN; 4], 4, 1);
        assert_eq!(p, vec![(0, -1), (1, -1), (2, -1), (3, -1), (3, 0)]);
    }

    #[test]
    fn dtw_ties_prefer_horizontal() {
        // Equal costs everywhere: every interior cell ties, and ties take the
        // horizontal move, so the backtrace runs left along the last row and
        // then down the first column (only vertical moves are finite there).
        let p = dtw(&[0f32; 3 * 6], 3, 6);
        let mut want = vec![(0, 0), (1, 0)];
        want.extend((0..6).map(|j| (2, j)));
        assert_eq!(p, want);
        assert_eq!(dtw(&[0f32; 4], 2, 2), vec![(0, 0), (1, 0), (1, 1)]);
        // A strictly cheaper diagonal wins over the tie rule.
        assert_eq!(dtw(&[-1.0, 5.0, 5.0, -1.0], 2, 2), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn normalisation_and_head_mean() {
        // Two tokens, one head, 12 frames: token 0 attends early frames,
        // token 1 late ones. After the softmax each column holds two values;
        // normalised over the tokens they become ±1, and the median filter
        // keeps the step.
        let f = 12;
        let mut scores = vec![0f32; 2 * f];
        for j in 0..f {
            scores[j] = (f - j) as f32 * 0.5;
            scores[f + j] = j as f32 * 0.5;
        }
        let m = alignment_matrix(&scores, 1, 2, f, f, 0..2);
        for j in 0..f {
            let (a, b) = (m[j], m[f + j]);
            assert!(
                (a + b).abs() < 1e-5 && (a.abs() - 1.0).abs() < 1e-5,
                "{a} {b}"
            );
        }
        assert!(m[0] > 0.0 && m[f - 1] < 0.0 && m[f] < 0.0 && m[2 * f - 1] > 0.0);
        // Frames past `frames` are ignored: large scores there change nothing.
        let wide_ctx = f + 3;
        let mut wide = vec![0f32; 2 * wide_ctx];
        for t in 0..2 {
            wide[t * wide_ctx..t * wide_ctx + f].copy_from_slice(&scores[t * f..(t + 1) * f]);
            wide[t * wide_ctx + f + 1] = 100.0 * (t as f32 + 1.0);
        }
        assert_eq!(alignment_matrix(&wide, 1, 2, wide_ctx, f, 0..2), m);
        // Two identical heads average to the same matrix; `rows` selects.
        let two: Vec<f32> = scores.iter().chain(&scores).copied().collect();
        let m2 = alignment_matrix(&two, 2, 2, f, f, 1..2);
        let d = m2
            .iter()
            .zip(&m[f..])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-6);
    }
}
