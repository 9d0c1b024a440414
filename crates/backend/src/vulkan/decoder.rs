//! The Whisper decoder on the GPU (spec §4.6): the cross-attention K/V of
//! each window are computed once per state; a call (a step or a prompt
//! pre-pass) is recorded — embedding, per layer the cached causal
//! self-attention, cross-attention and FFN, then the final norm and
//! projection of only the rows asked for — and run through the state's
//! [`Plan`], so a decoder step reuses its bind groups and params buffer and
//! allocates nothing; only the logits are read back, with one host wait.
//!
//! A step of up to [`gemv::MAX_ROWS`] rows uses the fused kernels: each
//! LayerNorm runs inside the following matmul's input staging and the K/V
//! cache append inside the QKV projection's store (8 dispatches per
//! layer). A larger call (a batched step) runs LayerNorm dispatches and the
//! tiled matmuls, or, with the `VKW_BATCH_GEMV=chunks` candidate, the fused
//! kernels over chunks of whole sequences ([`Projections`]).
//!
//! Cross-attention of every step (one token per sequence, at most
//! [`flash::MAX_ROWS`] rows per window, batched steps included) is
//! flash-decoding over each window's keys for all its beams at once.
//! Beam reorder copies nothing on the GPU: each sequence's history is a
//! row of slot indices (the history table) that self-attention reads, and
//! a step writes sequence `i`'s new K/V into slot `i`, which no history
//! references at that position yet.

use super::encoder::linear;
use super::gpu::{Buf, Gpu, Plan, Read, Recorder, Staging};
use super::ops::flash::{self, Flash};
use super::ops::gemm;
use super::ops::gemv::{self, Gemv, KvAppend};
use super::ops::kv_cache::{self, Layout};
use super::ops::logits::{self as logit_ops, LogitTop};
use super::ops::matmul::MatMul;
use super::ops::sdpa::{Kv, Sdpa, Slots};
use super::ops::{embed, layer_norm, WType};
use super::weights::{GLinear, GNorm, GWeights};
use crate::logits::{LogitMasks, TopRequest};
use crate::{BackendError, LogitsAt};
use vkw_model::HParams;

/// Self-attention caches up to this size (all layers) are allocated for
/// the model's whole text context at once, so no step ever grows them.
const FULL_CACHE_BYTES: usize = 512 << 20;
/// Layers per submission of a step: the GPU starts on the first layers
/// while the host records the rest (at most 4 submissions per step).
const SUBMIT_LAYERS: usize = 8;
/// Cache slots made at once when the budget allows (beam 5 and best-of 5
/// fit): expanding a one-sequence state to beams then allocates nothing.
const MIN_SLOTS: usize = 8;

/// Per-stream decoder state, resident on the GPU.
pub struct VulkanState {
    /// Cross K/V, one buffer per layer, each `[windows][frames][2d]`: one
    /// buffer for all layers would pass drivers' storage-binding limit
    /// (128 MiB on lavapipe) already at tiny.en × 8 windows.
    cross: Vec<Buf>,
    windows: usize,
    frames: usize,
    /// Window slot of each sequence.
    seq_window: Vec<usize>,
    /// Slot holding each position of each sequence (the history table).
    hist: Vec<Vec<u32>>,
    /// Self-attention cache, one buffer per layer (`[2][slots][cap][d]`,
    /// for the same binding-limit reason as `cross`), and its geometry.
    cache: Option<(Vec<Buf>, Layout)>,
    /// Device copies of `seq_window` (`map`), `hist` (`table`,
    /// `[slots][cap]`) and the flash-decoding row lists (`grp`).
    map: Buf,
    table: Buf,
    grp: Buf,
    /// Row capacity of `grp` per window (0: flash-decoding not usable).
    grp_cap: usize,
    /// `map` and `grp` need uploading.
    dirty: bool,
    pub(crate) len: usize,
    pub(crate) num_seqs: usize,
    scratch: Option<Scratch>,
    /// Reused host buffer for the table upload.
    table_host: Vec<u32>,
    /// This state's read-back buffer and step plan.
    staging: Staging,
    plan: Plan,
    /// Decoder steps run so far (for the counters' "after the first step").
    pub(crate) steps: usize,
    /// Work of reorders since the last step, counted with the next step.
    pub(crate) pending: super::stats::Tally,
    /// Buffers of the logit rules on the GPU (made at the first
    /// temperature-0 step).
    rules: Option<RulesBufs>,
}

/// The GPU logit rules' buffers of a state: sized once for the most rows
/// and candidates a search of this state can have, so later steps create
/// nothing.
struct RulesBufs {
    /// The masks uploaded into `masks` (re-uploaded when a call's differ).
    key: LogitMasks,
    masks: Buf,
    rowp: Buf,
    stats: Buf,
    out: Buf,
    rows: usize,
    nch: usize,
    /// Reused host buffer for the row parameters.
    rowp_host: Vec<u32>,
}

impl VulkanState {
    /// Vocabulary chunks of the GPU logit rules' output (0 before the first
    /// temperature-0 step).
    pub(crate) fn rules_chunks(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.nch)
    }
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
    /// Flash-decoding partials, sized for `nch` chunks of `cap` rows.
    part: Buf,
    part_len: usize,
    /// Split-K partials of the small-M products (9–64 rows; empty where
    /// nothing is split, as on software Vulkan).
    gpart: Buf,
}

impl Scratch {
    fn new(gpu: &Gpu, hp: &HParams, rows: usize, part_len: usize) -> Result<Self, BackendError> {
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
            part: f(part_len, "attention partials")?,
            part_len,
            gpart: f(gemm_partials(gpu, hp, rows), "split-K partials")?,
        })
    }
}

/// Floats of split-K partials the decoder's many-row products of `rows`
/// rows need at most (the four Linear shapes and the vocabulary
/// projection).
fn gemm_partials(gpu: &Gpu, hp: &HParams, rows: usize) -> usize {
    let (d, f) = (hp.d_model, hp.d_ffn);
    [(3 * d, d), (d, d), (f, d), (d, f), (hp.n_vocab, d)]
        .iter()
        .map(|&(n, k)| gemm::partials_len(gpu, rows, n, k))
        .max()
        .unwrap_or(0)
}

/// Compute the cross-attention K/V of windows `indices` of `enc`
/// (`[batch, frames, d]` of f32 or, with float16 activations, f16); sequence
/// `i` of the new state attends `indices[i]`.
pub fn start(
    gpu: &Gpu,
    w: &GWeights,
    hp: &HParams,
    (enc, et): (&Buf, WType),
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
            mm.xt = et;
            mm.o_off = slot * frames * 2 * d;
            mm.scale = kv.scale.as_ref();
            mm.bias = kv.bias.as_ref().map(|b| (b, 0));
            mm.record(gpu, &mut rec)?;
        }
    }
    gpu.submit(rec)?;
    let u4 = |n: usize, what: &str| gpu.alloc((n.max(1) * 4) as u64, what);
    Ok(VulkanState {
        cross,
        windows: nw,
        frames,
        seq_window: (0..nw).collect(),
        hist: vec![Vec::new(); nw],
        cache: None,
        map: u4(nw, "window map")?,
        table: u4(nw, "history table")?,
        grp: u4(nw * (flash::MAX_ROWS + 1), "attention row groups")?,
        grp_cap: 0,
        dirty: true,
        len: 0,
        num_seqs: nw,
        scratch: None,
        table_host: Vec::new(),
        staging: Staging::default(),
        plan: Plan::default(),
        steps: 0,
        pending: Default::default(),
        rules: None,
    })
}

/// The layers whose cross-attention scores a call keeps (alignment).
pub struct Capture<'a> {
    /// Decoder layers, in the order of the scores buffer.
    pub layers: &'a [usize],
    /// `[layers.len(), heads, rows, frames]`.
    pub scores: &'a Buf,
}

/// Make the cache hold `need` positions in at least `seqs` slots (growth
/// is its own submission, not part of the step's plan; it keeps every
/// slot's positions in place, so the history table stays valid). With the
/// whole text context in the budget, at least [`MIN_SLOTS`] slots are made
/// at once, so expanding to beams later needs no new buffers.
fn reserve(
    gpu: &Gpu,
    st: &mut VulkanState,
    hp: &HParams,
    need: usize,
    seqs: usize,
) -> Result<(), BackendError> {
    let cur = st.cache.as_ref().map(|c| c.1);
    if cur.is_some_and(|l| l.cap >= need && l.seqs >= seqs) {
        return Ok(());
    }
    let mut slots = seqs.max(cur.map_or(0, |l| l.seqs));
    let full = |slots: usize| hp.decoder_layers * 2 * slots * hp.n_text_ctx * hp.d_model * 4;
    if full(slots.max(MIN_SLOTS)) <= FULL_CACHE_BYTES {
        slots = slots.max(MIN_SLOTS);
    }
    let cap = if full(slots) <= FULL_CACHE_BYTES {
        hp.n_text_ctx.max(need)
    } else {
        let old_cap = cur.map_or(0, |l| l.cap);
        need.max(old_cap * 2).max(32).min(hp.n_text_ctx).max(need)
    };
    let lay = Layout {
        layers: 1,
        seqs: slots,
        cap,
        d: hp.d_model,
    };
    let bufs = (0..hp.decoder_layers)
        .map(|_| gpu.alloc((lay.elems() * 4) as u64, "self-attention cache"))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((old, old_lay)) = &st.cache {
        if st.len > 0 {
            // Slot i keeps slot i's positions (the last slot is repeated
            // into new ones, which nothing reads before they are written).
            let ident: Vec<u32> = (0..slots).map(|i| i.min(old_lay.seqs - 1) as u32).collect();
            let origin = gpu.upload(bytemuck::cast_slice(&ident), "cache origins")?;
            let mut rec = gpu.recorder();
            for (o, b) in old.iter().zip(&bufs) {
                kv_cache::gather(gpu, &mut rec, &origin, o, *old_lay, b, lay, st.len)?;
            }
            gpu.submit(rec)?;
        }
    }
    if st.map.bytes < (slots * 4) as u64 {
        st.map = gpu.alloc((slots * 4) as u64, "window map")?;
        st.dirty = true;
    }
    if st.table.bytes < (slots * cap * 4) as u64 {
        st.table = gpu.alloc((slots * cap * 4) as u64, "history table")?;
    }
    st.cache = Some((bufs, lay));
    Ok(())
}

/// Upload the history table (every sequence's first `n` positions), and
/// the window map and flash row groups when they changed.
fn upload_tables(gpu: &Gpu, st: &mut VulkanState, cap: usize, n: usize) {
    st.table_host.clear();
    st.table_host.resize(st.num_seqs * cap, 0);
    for (row, h) in st.table_host.chunks_mut(cap).zip(&st.hist) {
        row[..n].copy_from_slice(&h[..n]);
    }
    gpu.write(&st.table, 0, bytemuck::cast_slice(&st.table_host));
    if st.dirty {
        let map: Vec<u32> = st.seq_window.iter().map(|&w| w as u32).collect();
        gpu.write(&st.map, 0, bytemuck::cast_slice(&map));
        match flash::groups(&st.seq_window, st.windows) {
            Some((grp, cap)) => {
                gpu.write(&st.grp, 0, bytemuck::cast_slice(&grp));
                st.grp_cap = cap;
            }
            None => st.grp_cap = 0,
        }
        st.dirty = false;
    }
}

/// A few-row matmul of `l` on `x` (with LN `norm` first) into `out`.
fn gemv<'a>(l: &'a GLinear, x: &'a Buf, rows: usize, out: &'a Buf) -> Gemv<'a> {
    let mut g = Gemv::new(x, &l.w, l.wt, out, rows, l.rows, l.cols);
    g.scale = l.scale.as_ref();
    g.bias = l.bias.as_ref().map(|b| (b, 0));
    g
}

/// How a projection's result is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Written as it is.
    Write,
    /// Through GELU (the FFN's first matmul).
    Gelu,
    /// Added into the output (the residual stream).
    Add,
}

/// The projections of one decoder call, recorded the same way for every
/// layer: a fused step (few rows) runs each as one few-row matmul with the
/// LayerNorm in its input staging; a larger one runs the LayerNorm into
/// `h`, then the tiled matmul, or (the `VKW_BATCH_GEMV=chunks` candidate)
/// few-row matmuls over chunks of its rows.
struct Projections<'a> {
    gpu: &'a Gpu,
    /// Rows per few-row matmul: all of them in a small step, a chunk in a
    /// chunked one; 0 for the LayerNorm and tiled matmul.
    chunk: usize,
    rows: usize,
    d: usize,
    eps: f32,
    /// LayerNorm output of an unfused step.
    h: &'a Buf,
    /// Split-K partials of the tiled matmul.
    gpart: &'a Buf,
}

impl Projections<'_> {
    /// `l` on `x` (LayerNorm `norm` first, when given) into `out`, stored as
    /// `store`; with `kv` the few-row matmuls also append the K/V columns
    /// to the cache in their store (with `chunk` 0 the caller appends them).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        rec: &mut Recorder,
        l: &GLinear,
        x: &Buf,
        norm: Option<&GNorm>,
        out: &Buf,
        store: Store,
        kv: Option<KvAppend<'_>>,
    ) -> Result<(), BackendError> {
        if self.chunk > 0 {
            // A chunk is a multiple of the positions per sequence (`chunk`'s
            // choice), so its rows are whole sequences from slot r0 / t.
            for r0 in (0..self.rows).step_by(self.chunk) {
                let m = self.chunk.min(self.rows - r0);
                let mut g = gemv(l, x, m, out);
                g.x_off = r0 * l.cols;
                g.o_off = r0 * l.rows;
                g.norm = norm.map(|n| (&n.0, 0, self.eps));
                g.gelu = store == Store::Gelu;
                g.accumulate = store == Store::Add;
                g.kv = kv.map(|kv| KvAppend {
                    first: kv.first + r0 / kv.t,
                    ..kv
                });
                g.record(self.gpu, rec)?;
            }
            return Ok(());
        }
        let input = match norm {
            Some(n) => {
                layer_norm::record(
                    self.gpu,
                    rec,
                    x,
                    0,
                    self.d,
                    self.rows,
                    self.d,
                    (&n.0, 0),
                    self.eps,
                    self.h,
                    0,
                )?;
                self.h
            }
            None => x,
        };
        linear(
            self.gpu,
            rec,
            l,
            input,
            self.rows,
            out,
            store == Store::Gelu,
            store == Store::Add,
            Some(self.gpart),
        )
    }
}

/// Rows per few-row matmul of a decoder call of `rows` rows, `t` positions
/// per sequence (see [`Projections`]): all of them where they fit; else,
/// with the `VKW_BATCH_GEMV=chunks` candidate, the most whole sequences
/// that fit; else 0 (LayerNorm and tiled matmul).
fn chunk_rows(gpu: &Gpu, hp: &HParams, rows: usize, t: usize) -> usize {
    let fits = |m| gemv::fits(gpu, m, hp.d_model, 0) && gemv::fits(gpu, m, hp.d_ffn, 0);
    if fits(rows) {
        return rows;
    }
    if !gpu.candidates.batch_gemv {
        return 0;
    }
    (1..=gemv::MAX_ROWS / t.max(1))
        .rev()
        .map(|s| s * t)
        .find(|&m| fits(m))
        .unwrap_or(0)
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
    top: Option<&TopRequest<'_>>,
) -> Result<(), BackendError> {
    let (d, ns) = (hp.d_model, st.num_seqs);
    if let Some(req) = top {
        if t != 1 || at != LogitsAt::Last || req.rows.len() != ns {
            return Err(BackendError::Shape(format!(
                "decode_top: {} row rules for {ns} sequences of {t} tokens",
                req.rows.len()
            )));
        }
    }
    crate::check_decode(hp, ns, st.len, tokens, t, at)?;
    let rows = ns * t;
    // Rows whose logits are computed: `picked` rows `in_stride` apart.
    let (picked, in_off, in_stride) = match at {
        LogitsAt::Last => (ns, (t - 1) * d, t * d),
        // check_decode refused an index past the call's positions.
        LogitsAt::Index(i) => (ns, i * d, t * d),
        LogitsAt::All => (rows, 0, d),
    };
    reserve(gpu, st, hp, st.len + t, ns)?;
    let mut rec = gpu.recorder();
    let base = st.len;
    for (i, h) in st.hist.iter_mut().enumerate() {
        h.truncate(base);
        h.extend(std::iter::repeat_n(i as u32, t));
    }
    let Some(lay) = st.cache.as_ref().map(|c| c.1) else {
        return Err(BackendError::Device("decoder cache not allocated".into()));
    };
    upload_tables(gpu, st, lay.cap, base + t);
    let heads = hp.decoder_heads;
    let dh = d / heads;
    let chunk = chunk_rows(gpu, hp, rows, t);
    // Flash-decoding does not depend on the fused matmuls: a batched step
    // (windows × beams > 16 rows, e.g. 8 × 5) has at most 16 rows per window
    // and takes it too, instead of the per-(row, head) loop over 1500 keys.
    let use_flash = t == 1
        && capture.is_none()
        && st.grp_cap > 0
        && Flash::fits(dh, &[0, d, 2 * d, st.frames * 2 * d]);
    let nch = flash::chunks(gpu, st.windows, heads, st.frames);
    // Sized for the most rows a window can have, so the step after the
    // expansion to beams reuses the same scratch.
    let part_len = if use_flash {
        Flash::partials_len(st.windows, heads, nch, flash::MAX_ROWS, dh)
    } else {
        0
    };
    // Steps of a few rows get scratch for MIN_SLOTS rows (tiny), likewise.
    let alloc_rows = if rows <= MIN_SLOTS { MIN_SLOTS } else { rows };
    if st
        .scratch
        .as_ref()
        .is_none_or(|s| s.rows < rows || s.part_len < part_len)
    {
        let keep = st.scratch.as_ref().map_or(0, |s| s.part_len);
        let keep_rows = st.scratch.as_ref().map_or(0, |s| s.rows);
        st.scratch = Some(Scratch::new(
            gpu,
            hp,
            alloc_rows.max(keep_rows),
            part_len.max(keep),
        )?);
    }
    let (Some(s), Some((cache, _))) = (st.scratch.as_ref(), st.cache.as_ref()) else {
        return Err(BackendError::Device("decoder state not allocated".into()));
    };
    gpu.write(&s.tok, 0, bytemuck::cast_slice(tokens));
    embed::record(
        gpu,
        &mut rec,
        &s.tok,
        (&w.embed.w, w.embed.wt, w.embed.scale.as_ref()),
        &w.dec_pos,
        rows,
        t,
        base,
        d,
        &s.x,
    )?;
    let layers = w.dec_layers.len();
    let proj = Projections {
        gpu,
        chunk,
        rows,
        d,
        eps,
        h: &s.h,
        gpart: &s.gpart,
    };
    for (li, l) in w.dec_layers.iter().enumerate() {
        let cache = &cache[li];
        // Self-attention: LN → QKV (and K/V into the cache) → attention
        // over the history table → output projection + residual.
        let kv = KvAppend {
            cache,
            cap: lay.cap,
            slots: lay.seqs,
            d,
            base,
            t,
            first: 0,
        };
        let norm = Some(&l.self_norm);
        proj.record(
            &mut rec,
            &l.self_qkv,
            &s.x,
            norm,
            &s.qkv,
            Store::Write,
            Some(kv),
        )?;
        if chunk == 0 {
            let cl = Layout { seqs: ns, ..lay };
            kv_cache::append_slots(gpu, &mut rec, &s.qkv, cache, cl, lay.seqs, t, base)?;
        }
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
                slots: lay.seqs,
                lk: base + t,
                map: Slots::Table(&st.table, lay.cap),
            },
            causal: Some(base),
            out: &s.ctx,
            scores: None,
        }
        .record(gpu, &mut rec)?;
        proj.record(&mut rec, &l.self_out, &s.ctx, None, &s.x, Store::Add, None)?;
        // Cross-attention over each sequence's window.
        let norm = Some(&l.cross_norm);
        proj.record(&mut rec, &l.cross_q, &s.x, norm, &s.q, Store::Write, None)?;
        if use_flash {
            Flash {
                q: &s.q,
                q_stride: d,
                rows,
                grp: &st.grp,
                cap: st.grp_cap,
                kv: &st.cross[li],
                k_off: 0,
                v_off: d,
                row_stride: 2 * d,
                slot_stride: st.frames * 2 * d,
                windows: st.windows,
                lk: st.frames,
                heads,
                dh,
                nch,
                part: &s.part,
                out: &s.ctx,
            }
            .record(gpu, &mut rec)?;
        } else {
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
                    map: Slots::Map(&st.map),
                },
                causal: None,
                out: &s.ctx,
                scores,
            }
            .record(gpu, &mut rec)?;
        }
        proj.record(&mut rec, &l.cross_out, &s.ctx, None, &s.x, Store::Add, None)?;
        // FFN: LN → fc1 + GELU → fc2 + residual.
        let norm = Some(&l.ffn_norm);
        proj.record(&mut rec, &l.fc1, &s.x, norm, &s.ff, Store::Gelu, None)?;
        proj.record(&mut rec, &l.fc2, &s.ff, None, &s.x, Store::Add, None)?;
        if (li + 1) % SUBMIT_LAYERS == 0 && li + 1 < layers {
            rec.split();
        }
    }
    // Only the positions asked for go through the final LN and projection.
    let out_proj = w.proj();
    // All picked rows in one few-row matmul, or in chunks of them (the
    // candidate), or the LayerNorm and tiled matmul.
    let out_chunk = if gemv::fits(gpu, picked, d, 0) {
        picked
    } else if gpu.candidates.batch_gemv && gemv::fits(gpu, gemv::MAX_ROWS, d, 0) {
        gemv::MAX_ROWS
    } else {
        0
    };
    if out_chunk > 0 {
        for r0 in (0..picked).step_by(out_chunk) {
            let m = out_chunk.min(picked - r0);
            let mut g = gemv(out_proj, &s.x, m, &s.logits);
            g.x_off = in_off + r0 * in_stride;
            g.ldx = in_stride;
            g.o_off = r0 * hp.n_vocab;
            g.norm = Some((&w.dec_norm.0, 0, eps));
            g.record(gpu, &mut rec)?;
        }
    } else {
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
            out_proj,
            &s.normed,
            picked,
            &s.logits,
            false,
            false,
            Some(&s.gpart),
        )?;
    }
    let (src, len) = match top {
        None => (&s.logits, picked * hp.n_vocab),
        Some(req) => {
            let r = rules_bufs(gpu, &mut st.rules, hp, st.windows, req)?;
            let k = req.k;
            LogitTop {
                logits: &s.logits,
                l_off: 0,
                ldl: hp.n_vocab,
                rows: picked,
                v: hp.n_vocab,
                masks: &r.masks,
                rowp: &r.rowp,
                stats: &r.stats,
                out: &r.out,
                nch: r.nch,
                k,
                tb: req.masks.timestamp_begin as usize,
                no_speech: req.no_speech,
            }
            .record(gpu, &mut rec)?;
            (&r.out, picked * logit_ops::out_stride(r.nch, k))
        }
    };
    let read = Read {
        src,
        offset: 0,
        len,
        out: logits,
        staging: &mut st.staging,
        min_len: MIN_SLOTS * hp.n_vocab,
    };
    gpu.run(rec, &mut st.plan, Some(read))?;
    st.len += t;
    Ok(())
}

/// The state's logit-rule buffers, made at its first temperature-0 step
/// for the most rows its searches can have (every window's beams: `k / 2`
/// rows per window for `k = 2 · beam` candidates), with the call's masks
/// and row rules written for the next submission.
fn rules_bufs<'a>(
    gpu: &Gpu,
    slot: &'a mut Option<RulesBufs>,
    hp: &HParams,
    windows: usize,
    req: &TopRequest<'_>,
) -> Result<&'a RulesBufs, BackendError> {
    let v = hp.n_vocab;
    let rows = req.rows.len();
    if slot.as_ref().is_none_or(|r| r.rows < rows) {
        let nch = logit_ops::chunks(gpu, v);
        let cap = rows
            .max(windows * req.k.div_ceil(2))
            .max(MIN_SLOTS)
            .max(slot.as_ref().map_or(0, |r| r.rows));
        let f = |n: usize, what: &str| gpu.alloc((n * 4) as u64, what);
        *slot = Some(RulesBufs {
            key: LogitMasks::default(),
            masks: f(2 * logit_ops::mask_words(v), "logit masks")?,
            rowp: f(cap * logit_ops::ROW_WORDS, "logit row rules")?,
            stats: f(logit_ops::stats_len(cap, nch), "logit statistics")?,
            out: f(
                cap * logit_ops::out_stride(nch, logit_ops::MAX_K),
                "logit candidates",
            )?,
            rows: cap,
            nch,
            rowp_host: Vec::new(),
        });
    }
    let Some(r) = slot.as_mut() else {
        return Err(BackendError::Device("logit buffers not allocated".into()));
    };
    // A new buffer is zeroed, which is the default masks' bits.
    if r.key != *req.masks {
        gpu.write(
            &r.masks,
            0,
            bytemuck::cast_slice(&logit_ops::mask_bits(req.masks, v)),
        );
        r.key = req.masks.clone();
    }
    logit_ops::row_params(req.rows, &mut r.rowp_host);
    gpu.write(&r.rowp, 0, bytemuck::cast_slice(&r.rowp_host));
    Ok(r)
}

/// New sequence `i` continues old sequence `origins[i]`: the history rows
/// and window slots are gathered on the host; nothing is copied on the GPU.
pub fn reorder(st: &mut VulkanState, origins: &[usize]) -> Result<(), BackendError> {
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
    st.hist = origins.iter().map(|&o| st.hist[o].clone()).collect();
    st.seq_window = origins.iter().map(|&o| st.seq_window[o]).collect();
    st.num_seqs = origins.len();
    st.dirty = true;
    Ok(())
}
