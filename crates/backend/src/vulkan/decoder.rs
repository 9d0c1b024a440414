//! The Whisper decoder on the GPU (spec §4.6): the cross-attention K/V of
//! each window are computed once per state; a step (or a prompt pre-pass)
//! is recorded into one command buffer — embedding, per layer the cached
//! causal self-attention, cross-attention and FFN, then the final norm and
//! projection of only the rows asked for — submitted once, and only those
//! logits are read back.

use super::encoder::linear;
use super::gpu::{Buf, Gpu};
use super::ops::kv_cache::{self, Layout};
use super::ops::matmul::MatMul;
use super::ops::sdpa::{Kv, Sdpa};
use super::ops::{embed, layer_norm};
use super::weights::GWeights;
use crate::{BackendError, LogitsAt};
use vkw_model::HParams;

/// Per-stream decoder state, resident on the GPU.
pub struct VulkanState {
    /// Cross K/V, one buffer per layer, each `[windows][frames][2d]`: one
    /// buffer for all layers would pass drivers' storage-binding limit
    /// (128 MiB on lavapipe) already at tiny.en × 8 windows.
    cross: Vec<Buf>,
    windows: usize,
    frames: usize,
    /// Window slot of each sequence (host copy of `map`).
    seq_window: Vec<usize>,
    map: Buf,
    /// Self-attention cache, one buffer per layer (`[2][seqs][cap][d]`,
    /// for the same binding-limit reason as `cross`), and their geometry.
    cache: Option<(Vec<Buf>, Layout)>,
    /// The buffers the next reorder gathers into.
    spare: Option<Vec<Buf>>,
    pub(crate) len: usize,
    pub(crate) num_seqs: usize,
    scratch: Option<Scratch>,
}

/// Activations of one call, sized for `rows` positions.
struct Scratch {
    rows: usize,
    tok: Buf,
    x: Buf,
    h: Buf,
    qkv: Buf,
    q: Buf,
    ctx: Buf,
    ff: Buf,
    normed: Buf,
    logits: Buf,
}

impl Scratch {
    fn new(gpu: &Gpu, hp: &HParams, rows: usize) -> Result<Self, BackendError> {
        let f = |n: usize, what: &str| gpu.alloc((n * 4) as u64, what);
        let d = hp.d_model;
        Ok(Self {
            rows,
            tok: f(rows, "tokens")?,
            x: f(rows * d, "decoder state")?,
            h: f(rows * d, "decoder norm")?,
            qkv: f(rows * 3 * d, "decoder qkv")?,
            q: f(rows * d, "decoder cross query")?,
            ctx: f(rows * d, "decoder attention")?,
            ff: f(rows * hp.d_ffn, "decoder ffn")?,
            normed: f(rows * d, "decoder final norm")?,
            logits: f(rows * hp.n_vocab, "logits")?,
        })
    }
}

/// Compute the cross-attention K/V of windows `indices` of `enc`
/// (`[batch, frames, d]`); sequence `i` of the new state attends `indices[i]`.
pub fn start(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    enc: &Buf,
    frames: usize,
    indices: &[usize],
) -> Result<VulkanState, BackendError> {
    let (d, nw) = (hp.d_model, indices.len());
    let cross = (0..w.dec_layers.len())
        .map(|_| gpu.alloc((nw * frames * 2 * d * 4) as u64, "cross-attention K/V"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rec = gpu.recorder();
    for (l, layer_kv) in w.dec_layers.iter().zip(&cross) {
        for (slot, &win) in indices.iter().enumerate() {
            let kv = &l.cross_kv;
            let mut mm = MatMul::new(enc, &kv.w, kv.wt, layer_kv, frames, kv.rows, kv.cols);
            mm.x_off = win * frames * d;
            mm.o_off = slot * frames * 2 * d;
            mm.bias = kv.bias.as_ref().map(|b| (b, 0));
            mm.record(gpu, &mut rec)?;
        }
    }
    gpu.submit(rec)?;
    let slots: Vec<u32> = (0..nw as u32).collect();
    Ok(VulkanState {
        cross,
        windows: nw,
        frames,
        seq_window: (0..nw).collect(),
        map: gpu.upload(bytemuck::cast_slice(&slots), "window map")?,
        cache: None,
        spare: None,
        len: 0,
        num_seqs: nw,
        scratch: None,
    })
}

/// The layers whose cross-attention scores a call keeps (alignment).
pub struct Capture<'a> {
    /// Decoder layers, in the order of the scores buffer.
    pub layers: &'a [usize],
    /// `[layers.len(), heads, rows, frames]`.
    pub scores: &'a Buf,
}

/// Grow the cache to hold `need` positions per sequence (recorded into `rec`).
fn reserve(
    gpu: &Gpu,
    rec: &mut super::gpu::Recorder,
    st: &mut VulkanState,
    hp: &HParams,
    need: usize,
) -> Result<(), BackendError> {
    let cur = st.cache.as_ref().map(|c| c.1);
    if cur.is_some_and(|l| l.cap >= need && l.seqs == st.num_seqs) {
        return Ok(());
    }
    let old_cap = cur.map_or(0, |l| l.cap);
    let cap = need.max(old_cap * 2).max(32).min(hp.n_text_ctx).max(need);
    let lay = Layout {
        layers: 1,
        seqs: st.num_seqs,
        cap,
        d: hp.d_model,
    };
    let bufs = alloc_cache(gpu, hp.decoder_layers, lay)?;
    if let Some((old, old_lay)) = &st.cache {
        if st.len > 0 {
            let ident: Vec<u32> = (0..st.num_seqs as u32).collect();
            let origin = gpu.upload(bytemuck::cast_slice(&ident), "cache origins")?;
            for (o, b) in old.iter().zip(&bufs) {
                kv_cache::gather(gpu, rec, &origin, o, *old_lay, b, lay, st.len)?;
            }
        }
    }
    st.cache = Some((bufs, lay));
    st.spare = None;
    Ok(())
}

/// One self-attention cache buffer per decoder layer, each of geometry `lay`.
fn alloc_cache(gpu: &Gpu, layers: usize, lay: Layout) -> Result<Vec<Buf>, BackendError> {
    (0..layers)
        .map(|_| gpu.alloc((lay.elems() * 4) as u64, "self-attention cache"))
        .collect()
}

/// Run `tokens` (`[num_seqs, t]`) through the decoder; see
/// [`crate::Backend::decode`]. With `capture`, also keep the pre-softmax
/// cross-attention scores of its layers.
#[allow(clippy::too_many_arguments)]
pub fn decode(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    eps: f32,
    st: &mut VulkanState,
    tokens: &[u32],
    t: usize,
    at: LogitsAt,
    logits: &mut Vec<f32>,
    capture: Option<Capture<'_>>,
) -> Result<(), BackendError> {
    let (d, ns) = (hp.d_model, st.num_seqs);
    if tokens.len() != ns * t || t == 0 {
        return Err(BackendError::Shape(format!(
            "decode: {} tokens for {ns} sequences of {t}",
            tokens.len()
        )));
    }
    if st.len + t > hp.n_text_ctx {
        return Err(BackendError::Shape(format!(
            "decode: position {} exceeds the model's {} text positions",
            st.len + t,
            hp.n_text_ctx
        )));
    }
    if let Some(&bad) = tokens.iter().find(|&&tok| tok as usize >= hp.n_vocab) {
        return Err(BackendError::Shape(format!(
            "decode: token {bad} is outside the vocabulary"
        )));
    }
    let rows = ns * t;
    // Rows whose logits are computed: `picked` rows `in_stride` apart.
    let (picked, in_off, in_stride) = match at {
        LogitsAt::Last => (ns, (t - 1) * d, t * d),
        LogitsAt::Index(i) if i < t => (ns, i * d, t * d),
        LogitsAt::Index(i) => {
            return Err(BackendError::Shape(format!(
                "decode: logits at {i} of {t} positions"
            )))
        }
        LogitsAt::All => (rows, 0, d),
    };
    let mut rec = gpu.recorder();
    reserve(gpu, &mut rec, st, hp, st.len + t)?;
    if st.scratch.as_ref().is_none_or(|s| s.rows < rows) {
        st.scratch = Some(Scratch::new(gpu, hp, rows)?);
    }
    let (Some(s), Some((cache, lay))) = (st.scratch.as_ref(), st.cache.as_ref()) else {
        return Err(BackendError::Device("decoder state not allocated".into()));
    };
    let lay = *lay;
    gpu.write(&s.tok, 0, bytemuck::cast_slice(tokens));
    let base = st.len;
    let heads = hp.decoder_heads;
    let dh = d / heads;
    embed::record(
        gpu,
        &mut rec,
        &s.tok,
        (&w.embed.w, w.embed.wt),
        &w.dec_pos,
        rows,
        t,
        base,
        d,
        &s.x,
    )?;
    for (li, l) in w.dec_layers.iter().enumerate() {
        layer_norm::record(
            gpu,
            &mut rec,
            &s.x,
            0,
            d,
            rows,
            d,
            (&l.self_norm.0, 0),
            eps,
            &s.h,
            0,
        )?;
        linear(gpu, &mut rec, &l.self_qkv, &s.h, rows, &s.qkv, false, false)?;
        let cache = &cache[li];
        kv_cache::append(gpu, &mut rec, &s.qkv, cache, lay, 0, t, base)?;
        Sdpa {
            q: &s.qkv,
            q_off: 0,
            q_stride: 3 * d,
            rows,
            t,
            heads,
            dh,
            kv: Kv {
                buf: cache,
                k_off: 0,
                v_off: lay.kv_stride(),
                row_stride: d,
                slot_stride: lay.cap * d,
                slots: ns,
                lk: base + t,
                map: None,
            },
            causal: Some(base),
            out: &s.ctx,
            scores: None,
        }
        .record(gpu, &mut rec)?;
        linear(gpu, &mut rec, &l.self_out, &s.ctx, rows, &s.x, false, true)?;
        layer_norm::record(
            gpu,
            &mut rec,
            &s.x,
            0,
            d,
            rows,
            d,
            (&l.cross_norm.0, 0),
            eps,
            &s.h,
            0,
        )?;
        linear(gpu, &mut rec, &l.cross_q, &s.h, rows, &s.q, false, false)?;
        let scores = capture.as_ref().and_then(|c| {
            let pos = c.layers.iter().position(|&x| x == li)?;
            Some((c.scores, pos * heads * rows * st.frames))
        });
        Sdpa {
            q: &s.q,
            q_off: 0,
            q_stride: d,
            rows,
            t,
            heads,
            dh,
            kv: Kv {
                buf: &st.cross[li],
                k_off: 0,
                v_off: d,
                row_stride: 2 * d,
                slot_stride: st.frames * 2 * d,
                slots: st.windows,
                lk: st.frames,
                map: Some(&st.map),
            },
            causal: None,
            out: &s.ctx,
            scores,
        }
        .record(gpu, &mut rec)?;
        linear(gpu, &mut rec, &l.cross_out, &s.ctx, rows, &s.x, false, true)?;
        layer_norm::record(
            gpu,
            &mut rec,
            &s.x,
            0,
            d,
            rows,
            d,
            (&l.ffn_norm.0, 0),
            eps,
            &s.h,
            0,
        )?;
        linear(gpu, &mut rec, &l.fc1, &s.h, rows, &s.ff, true, false)?;
        linear(gpu, &mut rec, &l.fc2, &s.ff, rows, &s.x, false, true)?;
    }
    // Only the positions asked for go through the final LN and projection.
    layer_norm::record(
        gpu,
        &mut rec,
        &s.x,
        in_off,
        in_stride,
        picked,
        d,
        (&w.dec_norm.0, 0),
        eps,
        &s.normed,
        0,
    )?;
    linear(
        gpu,
        &mut rec,
        w.proj(),
        &s.normed,
        picked,
        &s.logits,
        false,
        false,
    )?;
    gpu.submit_read(rec, &s.logits, 0, picked * hp.n_vocab, logits)?;
    st.len += t;
    Ok(())
}

/// New sequence `i` continues old sequence `origins[i]` (cache gathered on
/// the GPU, window slots carried along).
pub fn reorder(gpu: &Gpu, st: &mut VulkanState, origins: &[usize]) -> Result<(), BackendError> {
    if let Some(&bad) = origins.iter().find(|&&o| o >= st.num_seqs) {
        return Err(BackendError::Shape(format!(
            "reorder: sequence {bad} does not exist ({} sequences)",
            st.num_seqs
        )));
    }
    if origins.is_empty() {
        return Err(BackendError::Shape("reorder: no sequences".into()));
    }
    if origins.len() == st.num_seqs && origins.iter().enumerate().all(|(i, &o)| i == o) {
        return Ok(());
    }
    let seq_window: Vec<usize> = origins.iter().map(|&o| st.seq_window[o]).collect();
    let slots: Vec<u32> = seq_window.iter().map(|&s| s as u32).collect();
    if st.map.bytes < (slots.len() * 4) as u64 {
        st.map = gpu.alloc((slots.len() * 4) as u64, "window map")?;
    }
    gpu.write(&st.map, 0, bytemuck::cast_slice(&slots));
    if let Some((cache, lay)) = st.cache.take() {
        let new_lay = Layout {
            seqs: origins.len(),
            ..lay
        };
        let bytes = (new_lay.elems() * 4) as u64;
        let dst = match st.spare.take() {
            Some(b) if b.iter().all(|b| b.bytes == bytes) => b,
            _ => alloc_cache(gpu, cache.len(), new_lay)?,
        };
        if st.len > 0 {
            let o: Vec<u32> = origins.iter().map(|&o| o as u32).collect();
            let ob = gpu.upload(bytemuck::cast_slice(&o), "beam origins")?;
            let mut rec = gpu.recorder();
            for (src, d) in cache.iter().zip(&dst) {
                kv_cache::gather(gpu, &mut rec, &ob, src, lay, d, new_lay, st.len)?;
            }
            gpu.submit(rec)?;
        }
        st.cache = Some((dst, new_lay));
        st.spare = (lay.seqs == new_lay.seqs).then_some(cache);
    }
    st.seq_window = seq_window;
    st.num_seqs = origins.len();
    Ok(())
}
