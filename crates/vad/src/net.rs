//! The Silero VAD v6 network (spec §8.2) and faster-whisper's input framing
//! (§8.3), in float32.
//!
//! Everything before the LSTM is independent per 576-sample row, so rows are
//! processed in blocks: the STFT and the four convolutions become matrix
//! products over a whole block (`gemm`), blocks run in parallel on rayon, and
//! only the LSTM's recurrent half (`R·h`, 512×128 per row) runs row by row.
//! Blocks are bounded, so memory does not grow with the input length.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::onnx::{read_initializers, Tensor};
use crate::VadError;
use vkw_audio::Samples;

/// Samples per VAD chunk at 16 kHz; probability `i` covers samples
/// `[512·i, 512·i + 512)` (§8.3).
pub const WINDOW_SAMPLES: usize = 512;
/// Samples of the previous chunk prepended to each chunk (§8.3).
pub(crate) const CONTEXT: usize = 64;
/// Input row: context + chunk.
pub(crate) const ROW: usize = CONTEXT + WINDOW_SAMPLES;
/// Reflect padding on each side before the STFT (§8.2 step 1).
const PAD: usize = 128;
/// STFT kernel and hop.
const FFT: usize = 256;
const HOP: usize = 128;
/// STFT frames kept per row (frame 0 of 5 is dropped, §8.2 step 2).
const FRAMES: usize = 4;
/// Frequency bins (real and imaginary halves of the basis).
const BINS: usize = 129;
/// LSTM hidden size.
pub(crate) const HIDDEN: usize = 128;
/// LSTM gate values per step (i, o, f, c).
const GATES: usize = 4 * HIDDEN;
/// Rows per parallel block of the convolutional front end.
const BLOCK: usize = 64;
/// Rows whose features are held at once (bounds memory on long inputs).
const SUPER_BLOCK: usize = 64 * BLOCK;

/// One `Conv1d(k=3, pad=1)` of the encoder, weights laid out for an
/// im2col product: `[c_out][k][c_in]`.
#[derive(Debug, Clone)]
struct Conv {
    c_in: usize,
    c_out: usize,
    stride: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// Silero VAD v6 with its weights in memory (about 1.2 MB). Immutable and
/// shareable across threads; the LSTM state lives in each call.
#[derive(Debug, Clone)]
pub struct SileroVad {
    /// STFT basis `[258, 256]`: rows 0..129 real, 129..258 imaginary.
    basis: Vec<f32>,
    convs: [Conv; 4],
    /// LSTM input weights `[512, 128]` (gate order i, o, f, c).
    w_ih: Vec<f32>,
    /// LSTM recurrent weights `[512, 128]`.
    w_hh: Vec<f32>,
    /// Input + recurrent biases `[512]`.
    bias: Vec<f32>,
    /// The 1×1 output convolution.
    out_w: Vec<f32>,
    out_b: f32,
}

fn take(
    map: &mut HashMap<String, Tensor>,
    name: &str,
    dims: &[usize],
) -> Result<Vec<f32>, VadError> {
    let q = crate::onnx::quote(name);
    let t = map.remove(name).ok_or_else(|| {
        VadError::Format(format!(
            "initializer {q} is missing (not a Silero VAD v6 model)"
        ))
    })?;
    if t.dims != dims {
        let mut found = format!("{:?}", &t.dims[..t.dims.len().min(8)]);
        if t.dims.len() > 8 {
            found.push_str(&format!(" (rank {})", t.dims.len()));
        }
        return Err(VadError::Format(format!(
            "initializer {q} has shape {found}, expected {dims:?} (not a Silero VAD v6 model)"
        )));
    }
    // NaN or infinite weights would make every probability NaN, and every
    // threshold comparison false: refuse them here, by name.
    if t.data.iter().any(|x| !x.is_finite()) {
        return Err(VadError::Format(format!(
            "initializer {q} holds NaN or infinite values (the file is damaged)"
        )));
    }
    Ok(t.data)
}

impl SileroVad {
    /// Loads `silero_vad_v6.onnx` (faster-whisper 1.2.1's asset, spec §8.1).
    pub fn load(path: &Path) -> Result<Self, VadError> {
        let bytes = std::fs::read(path).map_err(|e| VadError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_onnx_bytes(&bytes).map_err(|e| match e {
            VadError::Format(m) => VadError::File {
                path: path.to_path_buf(),
                detail: m,
            },
            other => other,
        })
    }

    /// Builds the network from the bytes of the ONNX file.
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<Self, VadError> {
        let mut init = read_initializers(bytes).map_err(VadError::Format)?;
        let basis = take(
            &mut init,
            "encoder.feature_extractor.forward_basis_buffer",
            &[2 * BINS, 1, FFT],
        )?;
        let mut conv = |i: usize, c_in: usize, c_out: usize, stride: usize| {
            let w = take(
                &mut init,
                &format!("encoder.conv_layers.{i}.weight"),
                &[c_out, c_in, 3],
            )?;
            let bias = take(
                &mut init,
                &format!("encoder.conv_layers.{i}.bias"),
                &[c_out],
            )?;
            // [c_out][c_in][k] → [c_out][k][c_in], the im2col column order.
            let mut weight = vec![0f32; c_out * 3 * c_in];
            for o in 0..c_out {
                for c in 0..c_in {
                    for k in 0..3 {
                        weight[(o * 3 + k) * c_in + c] = w[(o * c_in + c) * 3 + k];
                    }
                }
            }
            Ok::<_, VadError>(Conv {
                c_in,
                c_out,
                stride,
                weight,
                bias,
            })
        };
        let convs = [
            conv(0, BINS, 128, 1)?,
            conv(1, 128, 64, 2)?,
            conv(2, 64, 64, 2)?,
            conv(3, 64, HIDDEN, 1)?,
        ];
        let out_w = take(&mut init, "decoder.conv1d.weight", &[1, HIDDEN, 1])?;
        let out_b = take(&mut init, "decoder.conv1d.bias", &[1])?[0];
        // The exporter names the LSTM's W, R and B by node output number
        // (`onnx::LSTM_209/210/211` in v6): in that numeric order.
        let mut lstm: Vec<(u64, String)> = init
            .keys()
            .filter_map(|k| {
                let n = k.strip_prefix("onnx::LSTM_")?.parse().ok()?;
                Some((n, k.clone()))
            })
            .collect();
        lstm.sort();
        if lstm.len() != 3 {
            return Err(VadError::Format(format!(
                "expected 3 LSTM initializers (W, R, B), found {} (not a Silero VAD v6 model)",
                lstm.len()
            )));
        }
        let w_ih = take(&mut init, &lstm[0].1, &[1, 4 * HIDDEN, HIDDEN])?;
        let w_hh = take(&mut init, &lstm[1].1, &[1, 4 * HIDDEN, HIDDEN])?;
        let b = take(&mut init, &lstm[2].1, &[1, 8 * HIDDEN])?;
        let bias = (0..4 * HIDDEN).map(|j| b[j] + b[4 * HIDDEN + j]).collect();
        Ok(Self {
            basis,
            convs,
            w_ih,
            w_hh,
            bias,
            out_w,
            out_b,
        })
    }

    /// Speech probability of every 512-sample chunk of `samples` (16 kHz
    /// mono), as faster-whisper's `SileroVADModel` computes it: padding and
    /// the tail-zeroing quirk of §8.3, state starting at zero. Returns
    /// `samples.len() / 512 + 1` values.
    pub fn speech_probs<S: Samples + ?Sized>(&self, samples: &S) -> Vec<f32> {
        let rows = samples.len() / WINDOW_SAMPLES + 1;
        let mut probs = Vec::with_capacity(rows);
        let mut h = [0f32; HIDDEN];
        let mut c = [0f32; HIDDEN];
        // Per row: the LSTM's input half `W·x + biases` (4·128 gate values),
        // computed in parallel blocks; only `R·h` is left to the row loop.
        let mut gates = vec![0f32; SUPER_BLOCK.min(rows) * GATES];
        let mut first = 0;
        while first < rows {
            let n = SUPER_BLOCK.min(rows - first);
            let gates = &mut gates[..n * GATES];
            gates
                .par_chunks_mut(BLOCK * GATES)
                .enumerate()
                .for_each(|(b, out)| {
                    let start = first + b * BLOCK;
                    let n = out.len() / GATES;
                    let mut feats = vec![0f32; n * HIDDEN];
                    self.encode_block(samples, start, rows, &mut feats);
                    matmul_nt(&feats, n, HIDDEN, &self.w_ih, GATES, &self.bias, out);
                });
            for g in gates.chunks_exact_mut(GATES) {
                probs.push(self.lstm_step(g, &mut h, &mut c));
            }
            first += n;
        }
        probs
    }

    /// Builds row `i` of §8.3 into `out` (576 values).
    fn row<S: Samples + ?Sized>(samples: &S, i: usize, rows: usize, out: &mut [f32]) {
        let at = |j: usize| samples.at(j);
        let chunk = i * WINDOW_SAMPLES;
        for (k, o) in out[..CONTEXT].iter_mut().enumerate() {
            // Row 0's context is zeros; later rows take the previous chunk's tail.
            *o = if i == 0 { 0.0 } else { at(chunk - CONTEXT + k) };
        }
        // FW 1.2.1 zeroes the last 64 samples of the last chunk (§8.3 quirk).
        let keep = if i + 1 == rows {
            WINDOW_SAMPLES - CONTEXT
        } else {
            WINDOW_SAMPLES
        };
        for (k, o) in out[CONTEXT..].iter_mut().enumerate() {
            *o = if k < keep { at(chunk + k) } else { 0.0 };
        }
    }

    /// Rows `start..start + out.len()/128` (clipped to `rows`) through the STFT
    /// and the four convolutions; writes 128 features per row.
    fn encode_block<S: Samples + ?Sized>(
        &self,
        samples: &S,
        start: usize,
        rows: usize,
        out: &mut [f32],
    ) {
        debug_assert!(start + out.len() / HIDDEN <= rows);
        self.encode_rows(|r, row| Self::row(samples, start + r, rows, row), out);
    }

    /// The rows `fill(r, row)` builds (576 samples each) through the STFT
    /// and the four convolutions; writes 128 features per row.
    fn encode_rows(&self, fill: impl Fn(usize, &mut [f32]), out: &mut [f32]) {
        let n = out.len() / HIDDEN;
        // §8.2 step 1–2: reflect-pad each row and cut frames 1..=4.
        let mut frames = vec![0f32; n * FRAMES * FFT];
        let mut row = [0f32; ROW];
        let mut padded = [0f32; ROW + 2 * PAD];
        for r in 0..n {
            fill(r, &mut row);
            for j in 0..PAD {
                padded[j] = row[PAD - j];
                padded[PAD + ROW + j] = row[ROW - 2 - j];
            }
            padded[PAD..PAD + ROW].copy_from_slice(&row);
            for f in 0..FRAMES {
                let src = (f + 1) * HOP;
                frames[(r * FRAMES + f) * FFT..][..FFT].copy_from_slice(&padded[src..src + FFT]);
            }
        }
        let mut spec = vec![0f32; n * FRAMES * 2 * BINS];
        matmul_nt(
            &frames,
            n * FRAMES,
            FFT,
            &self.basis,
            2 * BINS,
            &[],
            &mut spec,
        );
        // Magnitudes, laid out [row][time][channel].
        let mut x: Vec<f32> = spec
            .chunks_exact(2 * BINS)
            .flat_map(|s| (0..BINS).map(move |b| s[b].hypot(s[BINS + b])))
            .collect();
        let mut t = FRAMES;
        for conv in &self.convs {
            let (y, t_out) = conv.forward(&x, n, t);
            x = y;
            t = t_out;
        }
        debug_assert_eq!(t, 1);
        out.copy_from_slice(&x);
    }

    /// The speech probability of one 576-sample row (64 samples of context,
    /// then the 512-sample chunk), carrying the LSTM state `h`, `c` from the
    /// previous row: the streaming form of [`SileroVad::speech_probs`].
    pub(crate) fn row_prob(
        &self,
        row: &[f32; ROW],
        h: &mut [f32; HIDDEN],
        c: &mut [f32; HIDDEN],
    ) -> f32 {
        let mut feats = [0f32; HIDDEN];
        self.encode_rows(|_, out| out.copy_from_slice(row), &mut feats);
        let mut g = vec![0f32; GATES];
        matmul_nt(&feats, 1, HIDDEN, &self.w_ih, GATES, &self.bias, &mut g);
        self.lstm_step(&mut g, h, c)
    }

    /// One LSTM step (§8.2 step 4) given `g = W·x + biases`, then the output
    /// probability (step 5).
    fn lstm_step(&self, g: &mut [f32], h: &mut [f32; HIDDEN], c: &mut [f32; HIDDEN]) -> f32 {
        add_matvec(&self.w_hh, h, g);
        let (i_g, rest) = g.split_at(HIDDEN);
        let (o_g, rest) = rest.split_at(HIDDEN);
        let (f_g, c_g) = rest.split_at(HIDDEN);
        for j in 0..HIDDEN {
            c[j] = sigmoid(f_g[j]) * c[j] + sigmoid(i_g[j]) * c_g[j].tanh();
            h[j] = sigmoid(o_g[j]) * c[j].tanh();
        }
        let z: f32 = h
            .iter()
            .zip(&self.out_w)
            .map(|(hj, w)| hj.max(0.0) * w)
            .sum::<f32>()
            + self.out_b;
        sigmoid(z)
    }
}

impl Conv {
    /// `x` is `[n][t][c_in]`; returns ReLU(conv(x)) as `[n][t_out][c_out]`.
    fn forward(&self, x: &[f32], n: usize, t: usize) -> (Vec<f32>, usize) {
        let t_out = (t - 1) / self.stride + 1;
        let k = 3 * self.c_in;
        let mut cols = vec![0f32; n * t_out * k];
        for r in 0..n {
            for to in 0..t_out {
                let dst = &mut cols[(r * t_out + to) * k..][..k];
                for tap in 0..3 {
                    // Input time `stride·to + tap − 1`; outside [0, t) is the zero padding.
                    let ti = (self.stride * to + tap).wrapping_sub(1);
                    if ti < t {
                        dst[tap * self.c_in..][..self.c_in]
                            .copy_from_slice(&x[(r * t + ti) * self.c_in..][..self.c_in]);
                    }
                }
            }
        }
        let mut y = vec![0f32; n * t_out * self.c_out];
        matmul_nt(
            &cols,
            n * t_out,
            k,
            &self.weight,
            self.c_out,
            &self.bias,
            &mut y,
        );
        for v in &mut y {
            *v = v.max(0.0);
        }
        (y, t_out)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out[j] += w[j] · h` for each 128-wide row `j` of `w` (the recurrent
/// half of an LSTM step, 64k multiply-adds per row of input: the part of
/// the network that cannot be batched). Compiled twice, and the AVX2+FMA
/// copy chosen at run time where the CPU has it.
fn add_matvec(w: &[f32], h: &[f32; HIDDEN], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { add_matvec_avx2(w, h, out) };
        return;
    }
    add_matvec_body(w, h, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_matvec_avx2(w: &[f32], h: &[f32; HIDDEN], out: &mut [f32]) {
    add_matvec_body(w, h, out);
}

#[inline(always)]
fn add_matvec_body(w: &[f32], h: &[f32; HIDDEN], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(w.chunks_exact(HIDDEN)) {
        *o += dot(row, h);
    }
}

/// Dot product with independent lanes, so the compiler vectorises it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0f32; L];
    for (x, y) in a.chunks_exact(L).zip(b.chunks_exact(L)) {
        for l in 0..L {
            acc[l] += x[l] * y[l];
        }
    }
    let tail = a.len() / L * L;
    let rest: f32 = a[tail..].iter().zip(&b[tail..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + rest
}

/// `out[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n])`, all row-major, single
/// threaded (callers parallelise over blocks).
fn matmul_nt(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, bias: &[f32], out: &mut [f32]) {
    assert!(x.len() >= m * k && w.len() >= n * k && out.len() >= m * n);
    assert!(bias.is_empty() || bias.len() == n);
    if m == 0 {
        return;
    }
    let with_bias = !bias.is_empty();
    if with_bias {
        for row in out[..m * n].chunks_exact_mut(n) {
            row.copy_from_slice(bias);
        }
    }
    // SAFETY: the asserts bound every index gemm touches: x is [m, k]
    // (row stride k), wᵀ is read as [k, n] (column stride k, row stride 1),
    // out is [m, n] (row stride n).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            with_bias,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_faster_whisper() {
        // 1100 samples → padded to 1536 → 3 rows.
        let s: Vec<f32> = (0..1100).map(|i| i as f32 + 1.0).collect();
        let rows = s.len() / WINDOW_SAMPLES + 1;
        assert_eq!(rows, 3);
        let mut r = [0f32; ROW];
        SileroVad::row(&s, 0, rows, &mut r);
        assert!(r[..CONTEXT].iter().all(|&v| v == 0.0));
        assert_eq!(r[CONTEXT], 1.0);
        SileroVad::row(&s, 1, rows, &mut r);
        assert_eq!(r[0], s[512 - 64]);
        assert_eq!(r[CONTEXT], s[512]);
        SileroVad::row(&s, 2, rows, &mut r);
        assert_eq!(r[CONTEXT], s[1024]);
        // Past the input: zero padding; last 64 of the last chunk: zeroed.
        assert_eq!(r[CONTEXT + 76], 0.0);
        assert!(r[ROW - CONTEXT..].iter().all(|&v| v == 0.0));
        // A length that is a multiple of 512 gets a whole zero chunk.
        assert_eq!(1024 / WINDOW_SAMPLES + 1, 3);
    }

    #[test]
    fn matmul_matches_naive() {
        let (m, k, n) = (5, 7, 3);
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let b = [0.5, -1.0, 2.0];
        let mut out = vec![0f32; m * n];
        matmul_nt(&x, m, k, &w, n, &b, &mut out);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|q| x[i * k + q] * w[j * k + q]).sum::<f32>() + b[j];
                assert!((out[i * n + j] - want).abs() < 1e-5);
            }
        }
        assert!((dot(&x[..k], &w[..k]) - (0..k).map(|q| x[q] * w[q]).sum::<f32>()).abs() < 1e-6);
    }
}
