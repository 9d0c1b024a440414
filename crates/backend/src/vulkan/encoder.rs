//! The Whisper encoder on the GPU (spec §4.4): two convolutions, positions,
//! pre-norm attention blocks and FFNs, final LayerNorm. Each layer of a
//! window is one command buffer; the output stays in a device buffer for
//! the decoder's cross-attention.

use super::gpu::{Buf, Gpu};
use super::ops::{add, conv1d, layer_norm, matmul::MatMul, softmax, WType};
use super::weights::{GLinear, GWeights};
use crate::BackendError;
use vkw_model::HParams;

/// Score buffer budget for the encoder's attention: heads are processed in
/// chunks whose `[heads, frames, frames]` probabilities fit in it.
const SCORES_BYTES: usize = 64 << 20;

/// A Linear layer from `x` into `out` (bias fused), optionally with GELU
/// or accumulated into `out` (the residual).
#[allow(clippy::too_many_arguments)]
pub fn linear(
    gpu: &Gpu,
    rec: &mut super::gpu::Recorder,
    l: &GLinear,
    x: &Buf,
    rows: usize,
    out: &Buf,
    gelu: bool,
    accumulate: bool,
) -> Result<(), BackendError> {
    let mut mm = MatMul::new(x, &l.w, l.wt, out, rows, l.rows, l.cols);
    mm.bias = l.bias.as_ref().map(|b| (b, 0));
    mm.gelu = gelu;
    mm.accumulate = accumulate;
    mm.record(gpu, rec)
}

/// Encode `batch` windows of `mel` (`[batch, n_mels, 2·n_audio_ctx]`, on
/// the device) into `[batch, n_audio_ctx, d]`.
pub fn encode(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    eps: f32,
    mel: &Buf,
    batch: usize,
) -> Result<Buf, BackendError> {
    let (d, frames_in, n_mels) = (hp.d_model, 2 * hp.n_audio_ctx, hp.n_mels);
    let frames = conv1d::out_frames(conv1d::out_frames(frames_in, 1), 2);
    if frames != hp.n_audio_ctx {
        return Err(BackendError::Shape(format!(
            "encoder: {frames_in} mel frames give {frames} positions, the model has {}",
            hp.n_audio_ctx
        )));
    }
    let f4 = |n: usize| (n * 4) as u64;
    let out = gpu.alloc(f4(batch * frames * d), "encoder output")?;
    let cols = gpu.alloc(
        f4((frames_in * n_mels * 3).max(frames * 3 * d)),
        "conv columns",
    )?;
    let h1 = gpu.alloc(f4(frames_in * d), "conv1 output")?;
    let x = gpu.alloc(f4(frames * d), "encoder state")?;
    let h = gpu.alloc(f4(frames * d), "encoder norm")?;
    let qkv = gpu.alloc(f4(frames * 3 * d), "encoder qkv")?;
    let ctx = gpu.alloc(f4(frames * d), "encoder attention")?;
    let ff = gpu.alloc(f4(frames * hp.d_ffn), "encoder ffn")?;
    let heads = hp.encoder_heads;
    let dh = d / heads;
    let chunk = (SCORES_BYTES / (frames * frames * 4)).clamp(1, heads);
    let scores = gpu.alloc(f4(chunk * frames * frames), "encoder attention scores")?;
    for b in 0..batch {
        let mut rec = gpu.recorder();
        let c1 = conv1d::Conv {
            x: mel,
            x_off: b * n_mels * frames_in,
            t_in: frames_in,
            c_in: n_mels,
            channel_major: true,
            stride: 1,
            w: &w.conv1.w,
            wtype: w.conv1.wt,
            bias: bias(&w.conv1)?,
            c_out: d,
        };
        let t1 = c1.record(gpu, &mut rec, &cols, &h1)?;
        let c2 = conv1d::Conv {
            x: &h1,
            x_off: 0,
            t_in: t1,
            c_in: d,
            channel_major: false,
            stride: 2,
            w: &w.conv2.w,
            wtype: w.conv2.wt,
            bias: bias(&w.conv2)?,
            c_out: d,
        };
        c2.record(gpu, &mut rec, &cols, &x)?;
        add::record(gpu, &mut rec, &x, 0, &w.enc_pos, 0, frames * d, frames * d)?;
        for l in &w.enc_layers {
            layer_norm::record(
                gpu,
                &mut rec,
                &x,
                0,
                d,
                frames,
                d,
                (&l.attn_norm.0, 0),
                eps,
                &h,
                0,
            )?;
            linear(gpu, &mut rec, &l.qkv, &h, frames, &qkv, false, false)?;
            let mut h0 = 0;
            while h0 < heads {
                let hc = chunk.min(heads - h0);
                // scores[z] = Q_h K_hᵀ / √dh for heads h0 .. h0 + hc.
                let mut s = MatMul::new(&qkv, &qkv, WType::F32, &scores, frames, frames, dh);
                s.ldx = 3 * d;
                s.x_off = h0 * dh;
                s.ldw = 3 * d;
                s.w_off = d + h0 * dh;
                s.alpha = 1.0 / (dh as f32).sqrt();
                s.batch = (hc, dh, dh, frames * frames);
                s.record(gpu, &mut rec)?;
                softmax::record(gpu, &mut rec, &scores, 0, hc * frames, frames, frames)?;
                // ctx[:, h] = P_h V_h.
                let mut pv = MatMul::new(&scores, &qkv, WType::F32, &ctx, frames, dh, frames);
                pv.w_kn = true;
                pv.ldw = 3 * d;
                pv.w_off = 2 * d + h0 * dh;
                pv.ldo = d;
                pv.o_off = h0 * dh;
                pv.batch = (hc, frames * frames, dh, dh);
                pv.record(gpu, &mut rec)?;
                h0 += hc;
            }
            linear(gpu, &mut rec, &l.out, &ctx, frames, &x, false, true)?;
            layer_norm::record(
                gpu,
                &mut rec,
                &x,
                0,
                d,
                frames,
                d,
                (&l.ffn_norm.0, 0),
                eps,
                &h,
                0,
            )?;
            linear(gpu, &mut rec, &l.fc1, &h, frames, &ff, true, false)?;
            linear(gpu, &mut rec, &l.fc2, &ff, frames, &x, false, true)?;
            // One submission per layer keeps each command buffer short:
            // Windows resets a GPU whose command buffer runs over ~2 s (TDR),
            // which a large model's whole encoder could on a small GPU.
            gpu.submit(std::mem::replace(&mut rec, gpu.recorder()))?;
        }
        layer_norm::record(
            gpu,
            &mut rec,
            &x,
            0,
            d,
            frames,
            d,
            (&w.enc_norm.0, 0),
            eps,
            &out,
            b * frames * d,
        )?;
        gpu.submit(rec)?;
    }
    Ok(out)
}

fn bias(l: &GLinear) -> Result<&Buf, BackendError> {
    l.bias
        .as_ref()
        .ok_or_else(|| BackendError::Shape("encoder convolution without a bias".into()))
}
