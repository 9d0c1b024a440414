//! The alignment pass of word timestamps on the CPU (spec §7.1): the whole
//! token sequence through the decoder in one causal pass over one window,
//! keeping the cross-attention scores of the alignment heads.
//!
//! The layer maths is the decoder's (`decoder.rs`, spec §4.6); only the
//! bookkeeping differs: no KV cache (keys and values of the self-attention
//! are read straight from the fused QKV projection), logits at every
//! position, and the pre-softmax cross-attention scores `q·kᵀ/√dh` of the
//! requested heads copied out before the attention consumes them.

use super::attention::{attention, Mat};
use super::decoder::cross_view;
use super::decoder::CpuState;
use super::matmul::{dot, gemm_nt};
use super::ops::add_assign;
use super::weights::{ffn_residual, project_residual, Linear, Scratch, Weights};
use crate::{Alignment, BackendError};
use rayon::prelude::*;
use vkw_model::HParams;

/// Check the inputs of an alignment pass against the model's shape.
pub fn validate(
    hp: &HParams,
    tokens: &[u32],
    heads: &[(usize, usize)],
) -> Result<(), BackendError> {
    if tokens.is_empty() {
        return Err(BackendError::Shape("align: no tokens".into()));
    }
    if tokens.len() > hp.n_text_ctx {
        return Err(BackendError::Shape(format!(
            "align: {} tokens exceed the model's {} text positions",
            tokens.len(),
            hp.n_text_ctx
        )));
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
        return Err(BackendError::Shape(format!(
            "align: token {bad} is outside the vocabulary"
        )));
    }
    if let Some(&(l, h)) = heads
        .iter()
        .find(|&&(l, h)| l >= hp.decoder_layers || h >= hp.decoder_heads)
    {
        return Err(BackendError::Shape(format!(
            "align: head ({l}, {h}) outside the decoder's {} layers x {} heads",
            hp.decoder_layers, hp.decoder_heads
        )));
    }
    Ok(())
}

/// Run `tokens` (one sequence from position 0) over the window whose cross
/// K/V `st` holds (a fresh state from `decoder::start`); see
/// [`crate::Backend::align`].
pub fn align(
    w: &Weights,
    hp: &HParams,
    eps: f32,
    st: &CpuState,
    tokens: &[u32],
    heads: &[(usize, usize)],
) -> Result<Alignment, BackendError> {
    validate(hp, tokens, heads)?;
    let (d, n, frames) = (hp.d_model, tokens.len(), st.enc_len);
    let nh = hp.decoder_heads;
    let dh = d / nh;
    let scale = 1.0 / (dh as f32).sqrt();
    // Embeddings plus learned positions 0..n (spec §4.6).
    let mut x = vec![0f32; n * d];
    for (r, row) in x.chunks_mut(d).enumerate() {
        w.embed.row(tokens[r] as usize, row);
        add_assign(row, &w.dec_pos[r * d..(r + 1) * d]);
    }
    let mut qkv = vec![0f32; n * 3 * d];
    let mut q = vec![0f32; n * d];
    let mut ctx = vec![0f32; n * d];
    let mut s = Scratch::new(n, d, hp.d_ffn);
    let mut scores = vec![0f32; heads.len() * n * frames];
    let slot = st.seq_window.first().copied().unwrap_or(0);
    for (li, layer) in w.dec_layers.iter().enumerate() {
        // Causal self-attention over the sequence itself (no cache).
        layer.self_norm.forward(&x, eps, &mut s.h);
        layer.self_qkv.forward(&s.h, n, &mut qkv);
        let part = |offset| Mat {
            data: &qkv,
            rows: n,
            stride: 3 * d,
            offset,
            head_stride: dh,
        };
        attention(part(0), part(d), part(2 * d), nh, dh, Some(0), &mut ctx);
        project_residual(&mut x, &ctx, n, &layer.self_out, &mut s);
        // Cross-attention over the window's K/V (keys then values per frame).
        layer.cross_norm.forward(&x, eps, &mut s.h);
        layer.cross_q.forward(&s.h, n, &mut q);
        let ckv = &st.cross[li];
        let keys = cross_view(ckv, slot, 0, frames, d, dh);
        for (hi, _) in heads.iter().enumerate().filter(|(_, &(l, _))| l == li) {
            let h = heads[hi].1;
            // Scores before softmax, scaled by 1/√dh as the attention does.
            scores[hi * n * frames..(hi + 1) * n * frames]
                .par_chunks_mut(frames)
                .enumerate()
                .for_each(|(i, row)| {
                    let qi = &q[i * d + h * dh..i * d + (h + 1) * dh];
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = dot(qi, keys.row(j, h, dh)) * scale;
                    }
                });
        }
        let qm = Mat {
            data: &q,
            rows: n,
            stride: d,
            offset: 0,
            head_stride: dh,
        };
        let values = cross_view(ckv, slot, 1, frames, d, dh);
        attention(qm, keys, values, nh, dh, None, &mut ctx);
        project_residual(&mut x, &ctx, n, &layer.cross_out, &mut s);
        ffn_residual(
            &mut x,
            n,
            &layer.ffn_norm,
            &layer.fc1,
            &layer.fc2,
            eps,
            &mut s,
        );
    }
    let mut normed = vec![0f32; n * d];
    w.dec_norm.forward(&x, eps, &mut normed);
    let mut logits = vec![0f32; n * hp.n_vocab];
    project_blocked(&w.proj, &normed, n, &mut logits);
    Ok(Alignment { scores, logits })
}

/// Vocabulary rows widened per block for [`project_blocked`].
const VOCAB_BLOCK: usize = 4096;

/// `out[n, V] = x · Wᵀ (+ b)` for the output projection over all `n`
/// positions, widening the weight one block of vocabulary rows at a time.
/// `Linear::forward` would widen the whole 51k-row embedding for a
/// many-row product (≈80 MB for tiny, 5× that for large models) just for
/// this one pass; blocks keep the extra memory to a few MB.
fn project_blocked(proj: &Linear, x: &[f32], n: usize, out: &mut [f32]) {
    let (v, d) = (proj.rows, proj.cols);
    let mut wb = vec![0f32; VOCAB_BLOCK.min(v) * d];
    let mut ob = vec![0f32; n * VOCAB_BLOCK.min(v)];
    for b0 in (0..v).step_by(VOCAB_BLOCK) {
        let nb = VOCAB_BLOCK.min(v - b0);
        wb[..nb * d]
            .par_chunks_mut(d)
            .enumerate()
            .for_each(|(i, row)| proj.row(b0 + i, row));
        let bias = proj.bias.as_deref().map(|b| &b[b0..b0 + nb]);
        gemm_nt(x, n, d, d, &wb[..nb * d], nb, bias, &mut ob[..n * nb]);
        for (r, src) in ob[..n * nb].chunks(nb).enumerate() {
            out[r * v + b0..r * v + b0 + nb].copy_from_slice(src);
        }
    }
}
