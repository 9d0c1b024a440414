//! The Whisper encoder on the GPU (spec §4.4): two convolutions, positions,
//! pre-norm attention blocks and FFNs, final LayerNorm. Each layer of a
//! window is one command buffer; the output stays in a device buffer for
//! the decoder's cross-attention.
//!
//! Self-attention is flash attention ([`attn`]): no `[heads, frames,
//! frames]` score matrix is written (the score path, kept for head widths
//! the kernel does not take and for measuring, wrote, re-read and rewrote
//! it). In the float16 compute modes the activations between kernels (the
//! norms' outputs, Q/K/V, attention output, FFN hidden) are float16; the
//! residual stream stays float32 and every product accumulates in float32.
//! The scratch buffers of a window are pooled across calls ([`Pool`]).

use super::gpu::{Buf, Gpu, Recorder};
use super::ops::attn::Attn;
use super::ops::{add, conv1d, layer_norm, matmul::MatMul, softmax, WType};
use super::weights::{GLinear, GWeights};
use crate::BackendError;
use std::sync::Mutex;
use vkw_model::HParams;

/// Score buffer budget for the score path: heads are processed in chunks
/// whose `[heads, frames, frames]` probabilities fit in it.
const SCORES_BYTES: usize = 64 << 20;

/// How the encoder runs, chosen at model load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderPlan {
    /// Element type of the activations between kernels.
    pub act: WType,
    /// Flash attention (else the score path).
    pub flash: bool,
}

impl EncoderPlan {
    /// Flash attention where the head width fits the kernel (every Whisper
    /// model: 64), unless `scores` asks for the score path; float16
    /// activations when `f16` (the float16 modes) and flash attention runs
    /// (the score path's batched products are float32 kernels).
    pub fn new(hp: &HParams, f16: bool, scores: bool) -> Self {
        let dh = hp.d_model / hp.encoder_heads.max(1);
        let flash = !scores && dh.is_multiple_of(4) && (4..=128).contains(&dh);
        let act = if f16 && flash { WType::F16 } else { WType::F32 };
        Self { act, flash }
    }
}

/// One window's scratch buffers.
pub struct Scratch {
    plan: EncoderPlan,
    cols: Buf,
    h1: Buf,
    x: Buf,
    h: Buf,
    qkv: Buf,
    ctx: Buf,
    ff: Buf,
    scores: Option<(Buf, usize)>,
}

impl Scratch {
    fn new(gpu: &Gpu, hp: &HParams, plan: EncoderPlan) -> Result<Self, BackendError> {
        let (d, frames_in, n_mels) = (hp.d_model, 2 * hp.n_audio_ctx, hp.n_mels);
        let frames = hp.n_audio_ctx;
        let f4 = |n: usize| (n * 4) as u64;
        let fa = |n: usize| (n * plan.act.size()) as u64;
        let scores = if plan.flash {
            None
        } else {
            let chunk = (SCORES_BYTES / (frames * frames * 4).max(1)).clamp(1, hp.encoder_heads);
            let b = gpu.alloc(f4(chunk * frames * frames), "encoder attention scores")?;
            Some((b, chunk))
        };
        Ok(Self {
            plan,
            cols: gpu.alloc(
                f4((frames_in * n_mels * 3).max(frames * 3 * d)),
                "conv columns",
            )?,
            h1: gpu.alloc(f4(frames_in * d), "conv1 output")?,
            x: gpu.alloc(f4(frames * d), "encoder state")?,
            h: gpu.alloc(fa(frames * d), "encoder norm")?,
            qkv: gpu.alloc(fa(frames * 3 * d), "encoder qkv")?,
            ctx: gpu.alloc(fa(frames * d), "encoder attention")?,
            ff: gpu.alloc(fa(frames * hp.d_ffn), "encoder ffn")?,
            scores,
        })
    }
}

/// Encoder scratch kept between calls: a call takes one set (or makes
/// one) and gives it back, so windows after the first allocate only their
/// output. Commands run in submission order on the one queue, so a set is
/// never overwritten while an earlier call's kernels still read it.
#[derive(Default)]
pub struct Pool(Mutex<Vec<Scratch>>);

impl Pool {
    fn take(&self, gpu: &Gpu, hp: &HParams, plan: EncoderPlan) -> Result<Scratch, BackendError> {
        let found = self.0.lock().ok().and_then(|mut v| {
            let i = v.iter().position(|s| s.plan == plan)?;
            Some(v.swap_remove(i))
        });
        match found {
            Some(s) => Ok(s),
            None => Scratch::new(gpu, hp, plan),
        }
    }

    fn give(&self, s: Scratch) {
        if let Ok(mut v) = self.0.lock() {
            v.push(s);
        }
    }
}

/// A Linear layer from `x` into `out` (bias fused), optionally with GELU
/// or accumulated into `out` (the residual); `part`: split-K scratch for a
/// small-M product (see [`MatMul::part`]).
#[allow(clippy::too_many_arguments)]
pub fn linear(
    gpu: &Gpu,
    rec: &mut Recorder,
    l: &GLinear,
    x: &Buf,
    rows: usize,
    out: &Buf,
    gelu: bool,
    accumulate: bool,
    part: Option<&Buf>,
) -> Result<(), BackendError> {
    linear_t(
        gpu,
        rec,
        l,
        (x, WType::F32),
        rows,
        (out, WType::F32),
        gelu,
        accumulate,
        part,
    )
}

/// [`linear`] with the element types of `x` and `out` (f32 or f16).
#[allow(clippy::too_many_arguments)]
fn linear_t(
    gpu: &Gpu,
    rec: &mut Recorder,
    l: &GLinear,
    (x, xt): (&Buf, WType),
    rows: usize,
    (out, ot): (&Buf, WType),
    gelu: bool,
    accumulate: bool,
    part: Option<&Buf>,
) -> Result<(), BackendError> {
    let mut mm = MatMul::new(x, &l.w, l.wt, out, rows, l.rows, l.cols);
    mm.scale = l.scale.as_ref();
    mm.bias = l.bias.as_ref().map(|b| (b, 0));
    mm.gelu = gelu;
    mm.accumulate = accumulate;
    mm.xt = xt;
    mm.ot = ot;
    mm.part = part;
    mm.record(gpu, rec)
}

/// Encode `batch` windows of `mel` (`[batch, n_mels, 2·n_audio_ctx]`, on
/// the device) into `[batch, n_audio_ctx, d]` float32, and, with float16
/// activations, the same in float16: the input of the decoder's
/// cross-attention K/V products, which then run on float16 activations
/// (matrix cores where the adapter has them) as the encoder's own do. For
/// large-v3 those products are a third of the encoder's Linear work.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    eps: f32,
    mel: &Buf,
    batch: usize,
    plan: EncoderPlan,
    pool: &Pool,
) -> Result<(Buf, Option<Buf>), BackendError> {
    let (d, frames_in) = (hp.d_model, 2 * hp.n_audio_ctx);
    let frames = conv1d::out_frames(conv1d::out_frames(frames_in, 1), 2);
    if frames != hp.n_audio_ctx {
        return Err(BackendError::Shape(format!(
            "encoder: {frames_in} mel frames give {frames} positions, the model has {}",
            hp.n_audio_ctx
        )));
    }
    let out = gpu.alloc((batch * frames * d * 4) as u64, "encoder output")?;
    let out16 = if plan.act == WType::F16 {
        Some(gpu.alloc((batch * frames * d * 2) as u64, "encoder output (f16)")?)
    } else {
        None
    };
    let sc = pool.take(gpu, hp, plan)?;
    let r = windows(gpu, w, hp, eps, mel, batch, &sc, (&out, out16.as_ref()));
    pool.give(sc);
    r.map(|()| (out, out16))
}

/// The windows of [`encode`] on scratch `sc`.
#[allow(clippy::too_many_arguments)]
fn windows(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    eps: f32,
    mel: &Buf,
    batch: usize,
    sc: &Scratch,
    (out, out16): (&Buf, Option<&Buf>),
) -> Result<(), BackendError> {
    let (d, frames_in, n_mels) = (hp.d_model, 2 * hp.n_audio_ctx, hp.n_mels);
    let frames = hp.n_audio_ctx;
    let (cols, h1, x, h, qkv, ctx, ff) = (&sc.cols, &sc.h1, &sc.x, &sc.h, &sc.qkv, &sc.ctx, &sc.ff);
    let at = sc.plan.act;
    let heads = hp.encoder_heads;
    let dh = d / heads;
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
            ct: at,
        };
        let t1 = c1.record(gpu, &mut rec, cols, h1)?;
        let c2 = conv1d::Conv {
            x: h1,
            x_off: 0,
            t_in: t1,
            c_in: d,
            channel_major: false,
            stride: 2,
            w: &w.conv2.w,
            wtype: w.conv2.wt,
            bias: bias(&w.conv2)?,
            c_out: d,
            ct: at,
        };
        c2.record(gpu, &mut rec, cols, x)?;
        add::record(gpu, &mut rec, x, 0, &w.enc_pos, 0, frames * d, frames * d)?;
        for l in &w.enc_layers {
            let norm = |rec: &mut Recorder, g: &Buf| {
                layer_norm::record_to(gpu, rec, x, 0, d, frames, d, (g, 0), eps, (h, 0, at))
            };
            norm(&mut rec, &l.attn_norm.0)?;
            linear_t(
                gpu,
                &mut rec,
                &l.qkv,
                (h, at),
                frames,
                (qkv, at),
                false,
                false,
                None,
            )?;
            match &sc.scores {
                None => Attn {
                    qkv,
                    xt: at,
                    ld: 3 * d,
                    base: 0,
                    q_off: 0,
                    k_off: d,
                    v_off: 2 * d,
                    frames,
                    heads,
                    dh,
                    out: ctx,
                    ot: at,
                    o_ld: d,
                    o_off: 0,
                }
                .record(gpu, &mut rec)?,
                Some((scores, chunk)) => {
                    score_attention(gpu, &mut rec, qkv, ctx, scores, *chunk, frames, heads, dh)?
                }
            }
            linear_t(
                gpu,
                &mut rec,
                &l.out,
                (ctx, at),
                frames,
                (x, WType::F32),
                false,
                true,
                None,
            )?;
            norm(&mut rec, &l.ffn_norm.0)?;
            linear_t(
                gpu,
                &mut rec,
                &l.fc1,
                (h, at),
                frames,
                (ff, at),
                true,
                false,
                None,
            )?;
            linear_t(
                gpu,
                &mut rec,
                &l.fc2,
                (ff, at),
                frames,
                (x, WType::F32),
                false,
                true,
                None,
            )?;
            // One submission per layer keeps each command buffer short:
            // Windows resets a GPU whose command buffer runs over ~2 s (TDR),
            // which a large model's whole encoder could on a small GPU.
            gpu.submit(std::mem::replace(&mut rec, gpu.recorder()))?;
        }
        layer_norm::record(
            gpu,
            &mut rec,
            x,
            0,
            d,
            frames,
            d,
            (&w.enc_norm.0, 0),
            eps,
            out,
            b * frames * d,
        )?;
        if let Some(o16) = out16 {
            layer_norm::record_to(
                gpu,
                &mut rec,
                x,
                0,
                d,
                frames,
                d,
                (&w.enc_norm.0, 0),
                eps,
                (o16, b * frames * d, WType::F16),
            )?;
        }
        gpu.submit(rec)?;
    }
    Ok(())
}

/// Self-attention through a score matrix (float32 activations): per chunk
/// of heads, `scores = Q Kᵀ/√dh`, softmax in place, `ctx = P V`.
#[allow(clippy::too_many_arguments)]
fn score_attention(
    gpu: &Gpu,
    rec: &mut Recorder,
    qkv: &Buf,
    ctx: &Buf,
    scores: &Buf,
    chunk: usize,
    frames: usize,
    heads: usize,
    dh: usize,
) -> Result<(), BackendError> {
    let d = heads * dh;
    let mut h0 = 0;
    while h0 < heads {
        let hc = chunk.min(heads - h0);
        let mut s = MatMul::new(qkv, qkv, WType::F32, scores, frames, frames, dh);
        s.ldx = 3 * d;
        s.x_off = h0 * dh;
        s.ldw = 3 * d;
        s.w_off = d + h0 * dh;
        s.alpha = 1.0 / (dh as f32).sqrt();
        s.batch = (hc, dh, dh, frames * frames);
        s.record(gpu, rec)?;
        softmax::record(gpu, rec, scores, 0, hc * frames, frames, frames)?;
        let mut pv = MatMul::new(scores, qkv, WType::F32, ctx, frames, dh, frames);
        pv.w_kn = true;
        pv.ldw = 3 * d;
        pv.w_off = 2 * d + h0 * dh;
        pv.ldo = d;
        pv.o_off = h0 * dh;
        pv.batch = (hc, frames * frames, dh, dh);
        pv.record(gpu, rec)?;
        h0 += hc;
    }
    Ok(())
}

fn bias(l: &GLinear) -> Result<&Buf, BackendError> {
    l.bias
        .as_ref()
        .ok_or_else(|| BackendError::Shape("encoder convolution without a bias".into()))
}
