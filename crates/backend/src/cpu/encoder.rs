//! The Whisper encoder on the CPU (spec §4.4).

use super::attention::{attention, Mat};
use super::ops::{add_assign, gelu};
use super::weights::{ffn_residual, project_residual, Linear, Scratch, Weights};
use vkw_model::HParams;

/// Conv1D with kernel 3 and zero padding 1 as im2col + matmul.
///
/// `x` is time-major `[t_in, c_in]` (or channel-major when `channel_major`,
/// as the mel input is); the result is time-major `[t_out, d]`.
fn conv3(
    x: &[f32],
    t_in: usize,
    c_in: usize,
    channel_major: bool,
    stride: usize,
    w: &Linear,
) -> (Vec<f32>, usize) {
    let t_out = (t_in + 2 - 3) / stride + 1;
    let kk = c_in * 3;
    let mut cols = vec![0f32; t_out * kk];
    for (t, row) in cols.chunks_mut(kk).enumerate() {
        for j in 0..3 {
            // Input frame for tap j, with one zero column of padding each side.
            let src = (t * stride + j) as isize - 1;
            if src < 0 || src as usize >= t_in {
                continue;
            }
            let s = src as usize;
            for i in 0..c_in {
                row[i * 3 + j] = if channel_major {
                    x[i * t_in + s]
                } else {
                    x[s * c_in + i]
                };
            }
        }
    }
    let mut out = vec![0f32; t_out * w.rows];
    // The weight [out, in, 3] is the matrix [out, in·3] matching `cols`.
    w.forward(&cols, t_out, &mut out);
    gelu(&mut out);
    (out, t_out)
}

/// Encode one log-mel window `[n_mels, frames]` into `[frames / 2, d]`.
pub fn encode(w: &Weights, hp: &HParams, eps: f32, mel: &[f32], frames: usize) -> Vec<f32> {
    let d = hp.d_model;
    let (h1, t1) = conv3(mel, frames, hp.n_mels, true, 1, &w.conv1);
    let (mut x, t) = conv3(&h1, t1, d, false, 2, &w.conv2);
    drop(h1);
    add_assign(&mut x, &w.enc_pos[..t * d]);
    let heads = hp.encoder_heads;
    let dh = d / heads;
    let mut qkv = vec![0f32; t * 3 * d];
    let mut ctx = vec![0f32; t * d];
    let mut s = Scratch::new(t, d, hp.d_ffn);
    for layer in &w.enc_layers {
        layer.attn_norm.forward(&x, eps, &mut s.h);
        layer.qkv.forward(&s.h, t, &mut qkv);
        let view = |offset| Mat {
            data: &qkv,
            rows: t,
            stride: 3 * d,
            offset,
            head_stride: dh,
        };
        attention(view(0), view(d), view(2 * d), heads, dh, None, &mut ctx);
        project_residual(&mut x, &ctx, t, &layer.out, &mut s);
        ffn_residual(
            &mut x,
            t,
            &layer.ffn_norm,
            &layer.fc1,
            &layer.fc2,
            eps,
            &mut s,
        );
    }
    w.enc_norm.forward(&x, eps, &mut s.h);
    s.h
}
