//! The Whisper decoder on the CPU (spec §4.6): token + position embeddings,
//! causal self-attention over a KV cache, cross-attention over K/V computed
//! once per window, FFN, and the tied output projection.

use super::attention::{attention, cached_self_attention, Mat};
use super::gemv::MAX_ROWS;
use super::ops::add_assign;
use super::weights::{ffn_residual, project_residual, Linear, Scratch, Weights};
use crate::{BackendError, LogitsAt};
use std::sync::Arc;
use vkw_model::HParams;

/// Per-stream decoder state: the cross K/V of one or more windows and the
/// self-attention caches of each hypothesis.
///
/// Batched mode (spec §9.3) decodes the beams of several windows in one
/// state: sequence `s` attends window slot `seq_window[s]`, and `reorder`
/// carries that slot with the sequence. With one window (the sequential
/// path) every sequence has slot 0 and nothing else changes.
pub struct CpuState {
    /// Per layer and window: all heads' keys `[heads, n_audio_ctx, dh]`,
    /// then the values likewise (see [`head_major`]).
    pub(crate) cross: Arc<Vec<Vec<f32>>>,
    /// Encoder frames per window in the cross K/V.
    pub(crate) enc_len: usize,
    /// Window slot (index into `cross`) of each sequence.
    pub(crate) seq_window: Vec<usize>,
    /// Per layer: `[slots, cap, d]` keys; sequence `s` owns slot `slot[s]`.
    pub(crate) k: Vec<Vec<f32>>,
    /// Per layer: `[slots, cap, d]` values.
    pub(crate) v: Vec<Vec<f32>>,
    /// Cache slot of each sequence: `reorder` hands a parent's slot to its
    /// first child instead of moving caches (see there).
    pub(crate) slot: Vec<usize>,
    /// Slots allocated per layer buffer (at least `num_seqs`).
    pub(crate) slots: usize,
    /// Positions filled per sequence.
    pub(crate) len: usize,
    /// Positions allocated per sequence.
    pub(crate) cap: usize,
    /// Number of sequences.
    pub(crate) num_seqs: usize,
}

/// `[frames, 2d]` rows (keys then values of each frame) into head-major
/// blocks: all heads' keys `[heads, frames, dh]`, then the values likewise.
/// Every decoder step reads each head's 1,500 keys and values; as rows
/// `2d` floats apart each key was a separate page touched at a 256-byte
/// piece, which the prefetchers did not follow (the cross-attention of a
/// medium-shaped beam step read its K/V at under half the machine's
/// bandwidth); head-major, a head's keys are one contiguous stream.
///
/// Appended to `out`: the caller reserves the room, so the window's K/V
/// (~300 MB at the medium shape) is not zero-filled before being written.
pub(crate) fn head_major(rows: &[f32], frames: usize, d: usize, dh: usize, out: &mut Vec<f32>) {
    let heads = d / dh;
    let start = out.len();
    for part in 0..2 {
        for h in 0..heads {
            for j in 0..frames {
                let src = j * 2 * d + part * d + h * dh;
                out.extend_from_slice(&rows[src..src + dh]);
            }
        }
    }
    debug_assert_eq!(out.len() - start, 2 * heads * frames * dh);
}

/// The cross K/V view of part 0 (keys) or 1 (values) of window `slot`
/// (see [`head_major`]).
pub(crate) fn cross_view(
    ckv: &[f32],
    slot: usize,
    part: usize,
    frames: usize,
    d: usize,
    dh: usize,
) -> Mat<'_> {
    Mat {
        data: ckv,
        rows: frames,
        stride: dh,
        offset: slot * frames * 2 * d + part * frames * d,
        head_stride: frames * dh,
    }
}

/// Compute the cross-attention K/V of one encoder output `[frames, d]`.
pub fn start(w: &Weights, hp: &HParams, enc: &[f32], frames: usize) -> CpuState {
    start_batch(w, hp, &[enc], frames)
}

/// Compute the cross-attention K/V of several encoder outputs (`[frames, d]`
/// each); sequence `i` of the new state attends `windows[i]`.
pub fn start_batch(w: &Weights, hp: &HParams, windows: &[&[f32]], frames: usize) -> CpuState {
    let d = hp.d_model;
    let dh = d / hp.decoder_heads;
    let per = frames * 2 * d;
    let mut rows = vec![0f32; per];
    let cross = w
        .dec_layers
        .iter()
        .map(|l| {
            let mut kv = Vec::with_capacity(windows.len() * per);
            for enc in windows {
                l.cross_kv.forward(enc, frames, &mut rows);
                head_major(&rows, frames, d, dh, &mut kv);
            }
            kv
        })
        .collect();
    CpuState {
        cross: Arc::new(cross),
        enc_len: frames,
        seq_window: (0..windows.len()).collect(),
        k: vec![Vec::new(); hp.decoder_layers],
        v: vec![Vec::new(); hp.decoder_layers],
        len: 0,
        cap: 0,
        num_seqs: windows.len(),
        slot: (0..windows.len()).collect(),
        slots: windows.len(),
    }
}

impl CpuState {
    /// Make room for `extra` more positions per sequence.
    fn reserve(&mut self, d: usize, extra: usize) {
        let need = self.len + extra;
        if need <= self.cap {
            return;
        }
        let cap = need.max(self.cap * 2).max(32);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            let mut nb = vec![0f32; self.slots * cap * d];
            for s in 0..self.slots {
                let n = self.len * d;
                if n > 0 {
                    nb[s * cap * d..s * cap * d + n]
                        .copy_from_slice(&buf[s * self.cap * d..s * self.cap * d + n]);
                }
            }
            *buf = nb;
        }
        self.cap = cap;
    }

    /// New sequence `i` continues old sequence `origins[i]`.
    pub fn reorder(&mut self, d: usize, origins: &[usize]) -> Result<(), BackendError> {
        if let Some(&bad) = origins.iter().find(|&&o| o >= self.num_seqs) {
            return Err(BackendError::Shape(format!(
                "reorder: sequence {bad} does not exist ({} sequences)",
                self.num_seqs
            )));
        }
        if origins.len() == self.num_seqs && origins.iter().enumerate().all(|(i, &o)| i == o) {
            return Ok(());
        }
        self.seq_window = origins.iter().map(|&o| self.seq_window[o]).collect();
        // Each parent's slot goes to its first child: no copy. Only the
        // further children of a parent (two beams continuing one
        // hypothesis) copy its rows, into slots whose sequences ended
        // (no children) or new ones. Moving every reordered sequence's
        // cache was 7–10 % of a medium-shaped beam step; in beam search
        // most children keep their parent but change rank, i.e. index.
        let mut taken = vec![false; self.slots];
        let mut given = vec![false; self.num_seqs];
        let mut slot = vec![usize::MAX; origins.len()];
        for (i, &o) in origins.iter().enumerate() {
            if !given[o] {
                given[o] = true;
                slot[i] = self.slot[o];
                taken[self.slot[o]] = true;
            }
        }
        let mut free = (0..self.slots).filter(|&p| !taken[p]);
        let mut copies = Vec::new();
        for (i, &o) in origins.iter().enumerate() {
            if slot[i] == usize::MAX {
                let p = free.next().unwrap_or_else(|| {
                    self.slots += 1;
                    self.slots - 1
                });
                slot[i] = p;
                copies.push((self.slot[o], p));
            }
        }
        let (cap, n) = (self.cap, self.len * d);
        for buf in self.k.iter_mut().chain(self.v.iter_mut()) {
            // New slots extend the buffer; existing slots stay in place.
            buf.resize(self.slots * cap * d, 0.0);
            // Sources are slots kept by a first child, destinations free
            // ones: no copy reads a slot another copy writes.
            for &(src, dst) in &copies {
                buf.copy_within(src * cap * d..src * cap * d + n, dst * cap * d);
            }
        }
        self.slot = slot;
        self.num_seqs = origins.len();
        Ok(())
    }
}

/// `lin.forward` over `rows` rows of width `d_in`. A decoding step (`t == 1`)
/// of more rows than the few-row kernel takes (batched mode: the beams of
/// several windows) goes through it in groups of rows instead of the
/// many-row path, which would widen the whole weight matrix to f32 on every
/// step (80 MB for the 51k-token projection). Each row's result is what the
/// few-row kernel gives it alone, as in a single window's step.
fn forward_rows(lin: &Linear, x: &[f32], rows: usize, t: usize, d_in: usize, out: &mut [f32]) {
    forward_rows_with(lin, x, rows, t, d_in, out, Linear::forward);
}

/// [`forward_rows`] with the GELU epilogue (FFN up-projection).
fn forward_rows_gelu(lin: &Linear, x: &[f32], rows: usize, t: usize, d_in: usize, out: &mut [f32]) {
    forward_rows_with(lin, x, rows, t, d_in, out, Linear::forward_gelu);
}

fn forward_rows_with(
    lin: &Linear,
    x: &[f32],
    rows: usize,
    t: usize,
    d_in: usize,
    out: &mut [f32],
    f: fn(&Linear, &[f32], usize, &mut [f32]),
) {
    if t != 1 || rows <= MAX_ROWS || lin.is_int8() {
        f(lin, x, rows, out);
        return;
    }
    let d_out = out.len() / rows.max(1);
    for (xs, os) in x[..rows * d_in]
        .chunks(MAX_ROWS * d_in)
        .zip(out[..rows * d_out].chunks_mut(MAX_ROWS * d_out))
    {
        f(lin, xs, xs.len() / d_in, os);
    }
}

/// `x += out(ctx)` ([`project_residual`]) with [`forward_rows`]' grouping.
fn project_residual_rows(
    x: &mut [f32],
    ctx: &[f32],
    rows: usize,
    t: usize,
    d: usize,
    out: &Linear,
    s: &mut Scratch,
) {
    if t != 1 || rows <= MAX_ROWS || out.is_int8() {
        project_residual(x, ctx, rows, out, s);
        return;
    }
    forward_rows(out, ctx, rows, t, d, &mut s.proj[..rows * d]);
    add_assign(x, &s.proj[..rows * d]);
}

/// `x += FC2(GELU(FC1(LN(x))))` ([`ffn_residual`]) with [`forward_rows`]' grouping.
#[allow(clippy::too_many_arguments)]
fn ffn_residual_rows(
    x: &mut [f32],
    rows: usize,
    t: usize,
    hp: &HParams,
    layer: &super::weights::DecoderLayer,
    eps: f32,
    s: &mut Scratch,
) {
    let (d, d_ffn) = (hp.d_model, hp.d_ffn);
    if t != 1 || rows <= MAX_ROWS || layer.fc1.is_int8() || layer.fc2.is_int8() {
        ffn_residual(x, rows, &layer.ffn_norm, &layer.fc1, &layer.fc2, eps, s);
        return;
    }
    layer.ffn_norm.forward(x, eps, &mut s.h);
    forward_rows_gelu(&layer.fc1, &s.h, rows, t, d, &mut s.ff[..rows * d_ffn]);
    forward_rows(&layer.fc2, &s.ff, rows, t, d_ffn, &mut s.proj[..rows * d]);
    add_assign(x, &s.proj[..rows * d]);
}

/// Run `tokens` (`[num_seqs, t]`) through the decoder; see [`crate::Backend::decode`].
#[allow(clippy::too_many_arguments)]
pub fn decode(
    w: &Weights,
    hp: &HParams,
    eps: f32,
    st: &mut CpuState,
    tokens: &[u32],
    t: usize,
    at: LogitsAt,
    logits: &mut Vec<f32>,
) -> Result<(), BackendError> {
    let (d, ns) = (hp.d_model, st.num_seqs);
    crate::check_decode(hp, ns, st.len, tokens, t, at)?;
    st.reserve(d, t);
    let rows = ns * t;
    let base = st.len;
    // Embeddings (no √d scaling, spec §4.6) plus learned positions.
    let mut x = vec![0f32; rows * d];
    for (r, row) in x.chunks_mut(d).enumerate() {
        w.embed.row(tokens[r] as usize, row);
        let pos = base + r % t;
        add_assign(row, &w.dec_pos[pos * d..(pos + 1) * d]);
    }
    let heads = hp.decoder_heads;
    let dh = d / heads;
    let mut qkv = vec![0f32; rows * 3 * d];
    let mut ctx = vec![0f32; rows * d];
    let mut q = vec![0f32; rows * d];
    let mut s = Scratch::new(rows, d, hp.d_ffn);
    let cap = st.cap;
    for (li, layer) in w.dec_layers.iter().enumerate() {
        // Self-attention over the cache (causal).
        layer.self_norm.forward(&x, eps, &mut s.h);
        forward_rows(&layer.self_qkv, &s.h, rows, t, d, &mut qkv);
        for sq in 0..ns {
            for i in 0..t {
                let src = &qkv[(sq * t + i) * 3 * d..(sq * t + i + 1) * 3 * d];
                let dst = (st.slot[sq] * cap + base + i) * d;
                st.k[li][dst..dst + d].copy_from_slice(&src[d..2 * d]);
                st.v[li][dst..dst + d].copy_from_slice(&src[2 * d..3 * d]);
            }
        }
        if t < 16 {
            cached_self_attention(
                &qkv, &st.slot, t, heads, dh, &st.k[li], &st.v[li], cap, base, &mut ctx,
            );
        } else {
            // A prompt pre-pass: many queries per sequence, gemm per head.
            for sq in 0..ns {
                let qm = Mat {
                    data: &qkv,
                    rows: t,
                    stride: 3 * d,
                    offset: sq * t * 3 * d,
                    head_stride: dh,
                };
                let kv = |buf| Mat {
                    data: buf,
                    rows: base + t,
                    stride: d,
                    offset: st.slot[sq] * cap * d,
                    head_stride: dh,
                };
                let out = &mut ctx[sq * t * d..(sq + 1) * t * d];
                attention(qm, kv(&st.k[li]), kv(&st.v[li]), heads, dh, Some(base), out);
            }
        }
        project_residual_rows(&mut x, &ctx, rows, t, d, &layer.self_out, &mut s);
        // Cross-attention over each sequence's window (no mask). Sequences
        // of one window are usually adjacent (beams stay grouped), so each
        // run of them is one attention call over that window's K/V.
        layer.cross_norm.forward(&x, eps, &mut s.h);
        forward_rows(&layer.cross_q, &s.h, rows, t, d, &mut q);
        let ckv = &st.cross[li];
        let mut first = 0;
        while first < ns {
            let slot = st.seq_window[first];
            let mut end = first + 1;
            while end < ns && st.seq_window[end] == slot {
                end += 1;
            }
            let kv = |part| cross_view(ckv, slot, part, st.enc_len, d, dh);
            let qm = Mat {
                data: &q,
                rows: (end - first) * t,
                stride: d,
                offset: first * t * d,
                head_stride: dh,
            };
            let out = &mut ctx[first * t * d..end * t * d];
            attention(qm, kv(0), kv(1), heads, dh, None, out);
            first = end;
        }
        project_residual_rows(&mut x, &ctx, rows, t, d, &layer.cross_out, &mut s);
        ffn_residual_rows(&mut x, rows, t, hp, layer, eps, &mut s);
    }
    st.len += t;
    // Only the positions asked for go through the final LN and the projection.
    let picked: Vec<usize> = match at {
        LogitsAt::Last => (0..ns).map(|s| s * t + t - 1).collect(),
        LogitsAt::Index(i) => (0..ns).map(|s| s * t + i).collect(),
        LogitsAt::All => (0..rows).collect(),
    };
    let mut sel = vec![0f32; picked.len() * d];
    for (o, &r) in sel.chunks_mut(d).zip(&picked) {
        o.copy_from_slice(&x[r * d..(r + 1) * d]);
    }
    let mut normed = vec![0f32; sel.len()];
    w.dec_norm.forward(&sel, eps, &mut normed);
    // Every element is overwritten by the projection: resize without clearing,
    // so a step does not also memset a megabyte of logits.
    logits.resize(picked.len() * hp.n_vocab, 0.0);
    forward_rows(&w.proj, &normed, picked.len(), 1, d, logits);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_gives_each_sequence_its_parents_cache() {
        let (d, cap, len) = (3, 4, 2);
        // Successive reorders (slots keep moving), shrinking and growing.
        let steps: [&[usize]; 9] = [
            &[1, 0, 2, 3],
            &[2, 2, 0, 1],
            &[3, 3, 3, 3],
            &[1, 2, 3, 0],
            &[0, 1, 2, 3],
            &[2, 0, 1, 1, 3, 0],
            &[5, 4, 4],
            &[0, 0, 1, 2, 2, 1, 0],
            &[6],
        ];
        let ns = 4;
        let fill = |base: f32| -> Vec<f32> { (0..ns * cap * d).map(|i| base + i as f32).collect() };
        let mut st = CpuState {
            cross: Arc::new(Vec::new()),
            enc_len: 0,
            seq_window: (0..ns).collect(),
            k: vec![fill(0.0), fill(1000.0)],
            v: vec![fill(2000.0), fill(3000.0)],
            slot: (0..ns).collect(),
            slots: ns,
            len,
            cap,
            num_seqs: ns,
        };
        // What each logical sequence's cache must hold.
        let logical = |st: &CpuState| -> Vec<Vec<Vec<f32>>> {
            st.k.iter()
                .chain(&st.v)
                .map(|buf| {
                    (0..st.num_seqs)
                        .map(|s| {
                            let p = st.slot[s];
                            buf[p * cap * d..p * cap * d + len * d].to_vec()
                        })
                        .collect()
                })
                .collect()
        };
        for origins in steps {
            let before = logical(&st);
            let windows = st.seq_window.clone();
            st.reorder(d, origins).unwrap();
            assert_eq!(st.num_seqs, origins.len());
            let want_windows: Vec<usize> = origins.iter().map(|&o| windows[o]).collect();
            assert_eq!(st.seq_window, want_windows);
            let mut used = st.slot.clone();
            used.sort_unstable();
            used.dedup();
            assert_eq!(
                used.len(),
                origins.len(),
                "two sequences share a slot: {:?}",
                st.slot
            );
            for (buf, old) in logical(&st).iter().zip(&before) {
                for (i, &o) in origins.iter().enumerate() {
                    assert_eq!(buf[i], old[o], "origins {origins:?}, sequence {i}");
                }
            }
        }
    }
}
