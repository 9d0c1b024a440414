//! Scaled dot-product attention of the decoder (`sdpa.wgsl`): causal
//! self-attention over the KV cache and cross-attention over each
//! sequence's window, optionally keeping the pre-softmax scores for the
//! alignment pass (spec §4.5, §7.1). The encoder's attention, with 1500
//! queries, goes through the tiled matmul and softmax instead.

use super::{check_range, kernel, u};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("sdpa.wgsl");
/// Most keys one query may attend (Whisper's 1500 encoder frames fit).
pub const MAX_KEYS: usize = 1536;
/// Largest head width.
pub const MAX_DH: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    t: u32,
    heads: u32,
    dh: u32,
    q_off: u32,
    q_stride: u32,
    k_off: u32,
    v_off: u32,
    kv_stride: u32,
    slot_stride: u32,
    lk: u32,
    causal: u32,
    base: u32,
    use_map: u32,
    o_off: u32,
    o_stride: u32,
    scale: f32,
    scores: u32,
    s_off: u32,
    tcap: u32,
}

/// Where keys and values are.
pub struct Kv<'a> {
    /// The buffer holding both.
    pub buf: &'a Buf,
    /// First key element (of slot 0, head 0).
    pub k_off: usize,
    /// First value element.
    pub v_off: usize,
    /// Distance between key (and value) rows.
    pub row_stride: usize,
    /// Distance between slots.
    pub slot_stride: usize,
    /// Slots in the buffer (for the range check).
    pub slots: usize,
    /// Keys per slot visible to every query (`base + t` for causal).
    pub lk: usize,
    /// Where each sequence's keys are: its own slot, or [`Slots`].
    pub map: Slots<'a>,
}

/// The slot holding the keys of a sequence.
pub enum Slots<'a> {
    /// Slot `s` for sequence `s`.
    Own,
    /// `map[s]` (cross-attention: the sequence's window).
    Map(&'a Buf),
    /// Per key: key `j` of sequence `s` is in slot `table[s · cap + j]`
    /// (the self-attention history table).
    Table(&'a Buf, usize),
}

/// One attention call over `rows = seqs · t` query rows.
pub struct Sdpa<'a> {
    /// Queries `[rows, ·]`, rows `q_stride` apart from `q_off`.
    pub q: &'a Buf,
    /// First query element.
    pub q_off: usize,
    /// Query row stride.
    pub q_stride: usize,
    /// Query rows.
    pub rows: usize,
    /// Queries per sequence.
    pub t: usize,
    /// Heads.
    pub heads: usize,
    /// Head width.
    pub dh: usize,
    /// Keys and values.
    pub kv: Kv<'a>,
    /// `Some(base)`: causal, query `i` at absolute position `base + i`.
    pub causal: Option<usize>,
    /// Output `[rows, heads·dh]` (contiguous from element 0).
    pub out: &'a Buf,
    /// Pre-softmax scores `[heads, rows, lk]` from an element offset.
    pub scores: Option<(&'a Buf, usize)>,
}

impl Sdpa<'_> {
    /// Record the dispatch: `main`, or `fast` where the device was opened
    /// with `VKW_SDPA=fast` (a candidate, see `sdpa.wgsl`).
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        self.record_with(gpu, rec, gpu.candidates.sdpa_fast)
    }

    /// Record the dispatch with entry point `fast` or `main`.
    pub fn record_with(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        fast: bool,
    ) -> Result<(), BackendError> {
        let kv = &self.kv;
        if self.rows == 0 {
            return Ok(());
        }
        if self.t == 0
            || !self.rows.is_multiple_of(self.t)
            || kv.lk == 0
            || kv.lk > MAX_KEYS
            || self.dh > MAX_DH
        {
            return Err(BackendError::Shape(format!(
                "attention: {} rows of {} queries over {} keys, head width {} (at most {MAX_KEYS} keys, width {MAX_DH})",
                self.rows, self.t, kv.lk, self.dh
            )));
        }
        let d = self.heads * self.dh;
        check_range(
            "attention queries",
            self.q_off + (self.rows - 1) * self.q_stride,
            d,
            4,
            self.q.bytes,
        )?;
        let last_key = (kv.slots - 1) * kv.slot_stride + (kv.lk - 1) * kv.row_stride + d;
        check_range("attention keys", kv.k_off, last_key, 4, kv.buf.bytes)?;
        check_range("attention values", kv.v_off, last_key, 4, kv.buf.bytes)?;
        check_range("attention output", 0, self.rows * d, 4, self.out.bytes)?;
        match kv.map {
            Slots::Own => {}
            Slots::Map(m) => {
                check_range("attention window map", 0, self.rows / self.t, 4, m.bytes)?
            }
            Slots::Table(m, cap) => {
                if cap < kv.lk {
                    return Err(BackendError::Shape(format!(
                        "attention: history table of {cap} positions for {} keys",
                        kv.lk
                    )));
                }
                check_range(
                    "attention history table",
                    0,
                    self.rows / self.t * cap,
                    4,
                    m.bytes,
                )?
            }
        }
        if let Some((s, off)) = self.scores {
            check_range(
                "attention scores",
                off,
                self.heads * self.rows * kv.lk,
                4,
                s.bytes,
            )?;
        }
        let p = Params {
            rows: u("rows", self.rows)?,
            t: u("tokens", self.t)?,
            heads: u("heads", self.heads)?,
            dh: u("head width", self.dh)?,
            q_off: u("offset", self.q_off)?,
            q_stride: u("stride", self.q_stride)?,
            k_off: u("offset", kv.k_off)?,
            v_off: u("offset", kv.v_off)?,
            kv_stride: u("stride", kv.row_stride)?,
            slot_stride: u("stride", kv.slot_stride)?,
            lk: u("keys", kv.lk)?,
            causal: u32::from(self.causal.is_some()),
            base: u("position", self.causal.unwrap_or(0))?,
            use_map: match kv.map {
                Slots::Own => 0,
                Slots::Map(_) => 1,
                Slots::Table(..) => 2,
            },
            o_off: 0,
            o_stride: u("width", d)?,
            scale: 1.0 / (self.dh as f32).sqrt(),
            scores: u32::from(self.scores.is_some()),
            s_off: u("offset", self.scores.map_or(0, |s| s.1))?,
            tcap: match kv.map {
                Slots::Table(_, cap) => u("capacity", cap)?,
                _ => 0,
            },
        };
        let k = kernel(
            gpu,
            "sdpa",
            "f32",
            || SRC.to_string(),
            if fast { "fast" } else { "main" },
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Write,
                Access::Write,
            ],
        )?;
        // Unused bindings still need a buffer: the queries are never written.
        let map = match kv.map {
            Slots::Own => self.q,
            Slots::Map(m) | Slots::Table(m, _) => m,
        };
        let scores = self.scores.map_or(self.out, |s| s.0);
        let mut groups = Gpu::grid(self.rows, 1);
        groups[2] = u("heads", self.heads)?;
        // Without scores, `out` is bound twice, read_write both times
        // (allowed); the kernel never touches the scores binding then.
        rec.dispatch(
            &k,
            &[self.q, kv.buf, map, self.out, scores],
            bytemuck::bytes_of(&p),
            groups,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    /// Naive attention of one (row, head) as the reference.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &dyn Fn(usize, usize) -> f32,
        v: &dyn Fn(usize, usize) -> f32,
        n: usize,
        dh: usize,
        scale: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let raw: Vec<f32> = (0..n)
            .map(|j| (0..dh).map(|c| q[c] * k(j, c)).sum::<f32>() * scale)
            .collect();
        let mut p = raw.clone();
        crate::cpu::ops::softmax(&mut p);
        let o = (0..dh)
            .map(|c| (0..n).map(|j| p[j] * v(j, c)).sum())
            .collect();
        (o, raw)
    }

    #[test]
    fn causal_self_attention_over_a_cache() {
        let Some(g) = gpu() else { return };
        // 2 sequences × 3 queries at positions 4..7 over a cache of cap 9.
        let (seqs, t, heads, dh, cap, base) = (2, 3, 3, 5, 9, 4);
        let d = heads * dh;
        let q = rand_vec(seqs * t * 3 * d, 81);
        let cache = rand_vec(2 * seqs * cap * d, 82);
        let qb = g.upload_f32(&q, "q").unwrap();
        let cb = g.upload_f32(&cache, "cache").unwrap();
        let ob = g.alloc((seqs * t * d * 4) as u64, "o").unwrap();
        let vo = seqs * cap * d;
        let s = Sdpa {
            q: &qb,
            q_off: 0,
            q_stride: 3 * d,
            rows: seqs * t,
            t,
            heads,
            dh,
            kv: Kv {
                buf: &cb,
                k_off: 0,
                v_off: vo,
                row_stride: d,
                slot_stride: cap * d,
                slots: seqs,
                lk: base + t,
                map: Slots::Own,
            },
            causal: Some(base),
            out: &ob,
            scores: None,
        };
        // `fast` first, on fresh (zeroed) buffers: a value it failed to
        // write cannot be left over from `main`.
        for fast in [true, false] {
            let mut rec = g.recorder();
            s.record_with(&g, &mut rec, fast).unwrap();
            g.submit(rec).unwrap();
            let got = g.read(&ob, 0, seqs * t * d).unwrap();
            let mut want = vec![0f32; seqs * t * d];
            for r in 0..seqs * t {
                let (sq, i) = (r / t, r % t);
                for h in 0..heads {
                    let k = |j: usize, c: usize| cache[sq * cap * d + j * d + h * dh + c];
                    let v = |j: usize, c: usize| cache[vo + sq * cap * d + j * d + h * dh + c];
                    let (o, _) = naive(
                        &q[r * 3 * d + h * dh..],
                        &k,
                        &v,
                        base + i + 1,
                        dh,
                        1.0 / (dh as f32).sqrt(),
                    );
                    want[r * d + h * dh..r * d + (h + 1) * dh].copy_from_slice(&o);
                }
            }
            assert_close(&got, &want, 1e-5, &format!("self attention fast {fast}"));
        }
    }

    #[test]
    fn causal_self_attention_through_a_history_table() {
        let Some(g) = gpu() else { return };
        // 2 sequences, 1 query each at position 5, over a cache of 3 slots;
        // the table sends each key to the slot holding that sequence's history.
        let (seqs, slots, heads, dh, cap, base) = (2, 3, 2, 8, 7, 5);
        let d = heads * dh;
        let table: Vec<u32> = vec![
            0, 0, 2, 2, 1, 0, 0, // sequence 0
            0, 1, 1, 2, 2, 1, 1, // sequence 1
        ];
        let q = rand_vec(seqs * 3 * d, 71);
        let cache = rand_vec(2 * slots * cap * d, 72);
        let qb = g.upload_f32(&q, "q").unwrap();
        let cb = g.upload_f32(&cache, "cache").unwrap();
        let tb = g.upload(bytemuck::cast_slice(&table), "table").unwrap();
        let ob = g.alloc((seqs * d * 4) as u64, "o").unwrap();
        let vo = slots * cap * d;
        let s = Sdpa {
            q: &qb,
            q_off: 0,
            q_stride: 3 * d,
            rows: seqs,
            t: 1,
            heads,
            dh,
            kv: Kv {
                buf: &cb,
                k_off: 0,
                v_off: vo,
                row_stride: d,
                slot_stride: cap * d,
                slots,
                lk: base + 1,
                map: Slots::Table(&tb, cap),
            },
            causal: Some(base),
            out: &ob,
            scores: None,
        };
        // `fast` first, on fresh (zeroed) buffers: a value it failed to
        // write cannot be left over from `main`.
        for fast in [true, false] {
            let mut rec = g.recorder();
            s.record_with(&g, &mut rec, fast).unwrap();
            g.submit(rec).unwrap();
            let got = g.read(&ob, 0, seqs * d).unwrap();
            let mut want = vec![0f32; seqs * d];
            for sq in 0..seqs {
                for h in 0..heads {
                    let at = |j: usize, c: usize| {
                        (table[sq * cap + j] as usize * cap + j) * d + h * dh + c
                    };
                    let k = |j: usize, c: usize| cache[at(j, c)];
                    let v = |j: usize, c: usize| cache[vo + at(j, c)];
                    let (o, _) = naive(
                        &q[sq * 3 * d + h * dh..],
                        &k,
                        &v,
                        base + 1,
                        dh,
                        1.0 / (dh as f32).sqrt(),
                    );
                    want[sq * d + h * dh..sq * d + (h + 1) * dh].copy_from_slice(&o);
                }
            }
            assert_close(&got, &want, 1e-5, &format!("history table fast {fast}"));
        }
    }

    #[test]
    fn cross_attention_follows_the_window_map_and_keeps_scores() {
        let Some(g) = gpu() else { return };
        let (seqs, t, heads, dh, frames, windows) = (3, 2, 2, 7, 37, 2);
        let d = heads * dh;
        let q = rand_vec(seqs * t * d, 91);
        let kvv = rand_vec(windows * frames * 2 * d, 92);
        let map: [u32; 3] = [1, 0, 1];
        let qb = g.upload_f32(&q, "q").unwrap();
        let kb = g.upload_f32(&kvv, "kv").unwrap();
        let mb = g.upload(bytemuck::cast_slice(&map), "map").unwrap();
        let ob = g.alloc((seqs * t * d * 4) as u64, "o").unwrap();
        let sb = g
            .alloc((heads * seqs * t * frames * 4) as u64, "s")
            .unwrap();
        let s = Sdpa {
            q: &qb,
            q_off: 0,
            q_stride: d,
            rows: seqs * t,
            t,
            heads,
            dh,
            kv: Kv {
                buf: &kb,
                k_off: 0,
                v_off: d,
                row_stride: 2 * d,
                slot_stride: frames * 2 * d,
                slots: windows,
                lk: frames,
                map: Slots::Map(&mb),
            },
            causal: None,
            out: &ob,
            scores: Some((&sb, 0)),
        };
        // `fast` first, on fresh (zeroed) buffers: a value it failed to
        // write cannot be left over from `main`.
        for fast in [true, false] {
            let mut rec = g.recorder();
            s.record_with(&g, &mut rec, fast).unwrap();
            g.submit(rec).unwrap();
            let got = g.read(&ob, 0, seqs * t * d).unwrap();
            let got_s = g.read(&sb, 0, heads * seqs * t * frames).unwrap();
            let rows = seqs * t;
            for r in 0..rows {
                let w = map[r / t] as usize;
                for h in 0..heads {
                    let base = w * frames * 2 * d;
                    let k = |j: usize, c: usize| kvv[base + j * 2 * d + h * dh + c];
                    let v = |j: usize, c: usize| kvv[base + j * 2 * d + d + h * dh + c];
                    let (o, raw) = naive(
                        &q[r * d + h * dh..],
                        &k,
                        &v,
                        frames,
                        dh,
                        1.0 / (dh as f32).sqrt(),
                    );
                    assert_close(
                        &got[r * d + h * dh..r * d + (h + 1) * dh],
                        &o,
                        1e-5,
                        "cross attention",
                    );
                    assert_close(
                        &got_s[(h * rows + r) * frames..(h * rows + r + 1) * frames],
                        &raw,
                        1e-5,
                        "scores",
                    );
                }
            }
        }
    }
}
