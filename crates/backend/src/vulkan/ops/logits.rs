//! The logit rules of a temperature-0 step on the GPU (`logits.wgsl`):
//! suppression masks, the timestamp rules' ranges and probability check,
//! log-softmax, the row's score and the best `k` candidates of every row,
//! so a decoder step reads back a few hundred bytes per row instead of the
//! vocabulary's logits. The CPU reference is [`crate::logits`]; this op
//! must choose the same tokens.
//!
//! Two dispatches over `[rows, v]` logits, one workgroup per (vocabulary
//! chunk, row): `stats_pass` (per-chunk max and Σexp of the masked text,
//! masked timestamp and raw logits), then `top_pass` (the row's statistics,
//! the timestamp check, and the chunk's best `k`). [`parse`] merges the
//! chunks' lists on the host.

use super::{check_range, kernel, u};
use crate::logits::{merge_chunks, Candidate, LogitMasks, RowRule, TopK};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("logits.wgsl");
/// Most candidates per row the kernel keeps (beam 8).
pub const MAX_K: usize = 16;
/// Header words per row of the output.
const HDR: usize = 4;
/// u32 words per row of the row parameters.
pub const ROW_WORDS: usize = 8;
/// Floats per (row, chunk) of the statistics.
const STAT_WORDS: usize = 8;
/// Vocabulary ids per chunk on a hardware GPU.
const GPU_CHUNK: usize = 8192;

const FLAG_BEGIN: u32 = 1;
const FLAG_TS: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    v: u32,
    rows: u32,
    nch: u32,
    chunk: u32,
    tb: u32,
    ns: u32,
    mw: u32,
    l_off: u32,
    ldl: u32,
    o_stride: u32,
    p0: u32,
    p1: u32,
}

/// Vocabulary chunks per row: one on software Vulkan (its few threads are
/// busy with the rows already), else chunks of 8192 ids (at most 16), so a
/// step has a few workgroups per row and reads back `chunks · k` candidates.
pub fn chunks(gpu: &Gpu, v: usize) -> usize {
    if gpu.desc.kind == crate::any::DeviceKind::Cpu {
        1
    } else {
        v.div_ceil(GPU_CHUNK).clamp(1, 16)
    }
}

/// 32-bit words of one vocabulary bitmask.
pub fn mask_words(v: usize) -> usize {
    v.div_ceil(32)
}

/// The two bitmasks (`suppress`, then `suppress_begin`) of `m` over a
/// vocabulary of `v`, `2 · mask_words(v)` words.
pub fn mask_bits(m: &LogitMasks, v: usize) -> Vec<u32> {
    let mw = mask_words(v);
    let mut bits = vec![0u32; 2 * mw];
    for (half, ids) in [&m.suppress, &m.suppress_begin].into_iter().enumerate() {
        for &id in ids.iter().filter(|&&id| (id as usize) < v) {
            bits[half * mw + id as usize / 32] |= 1 << (id % 32);
        }
    }
    bits
}

/// The rows' parameters, [`ROW_WORDS`] words each, into `out`.
pub fn row_params(rows: &[RowRule], out: &mut Vec<u32>) {
    out.clear();
    for r in rows {
        let flags = (u32::from(r.begin) * FLAG_BEGIN) | (u32::from(r.timestamp_check) * FLAG_TS);
        out.extend_from_slice(&[
            r.score.to_bits(),
            flags,
            r.masked[0].0,
            r.masked[0].1,
            r.masked[1].0,
            r.masked[1].1,
            0,
            0,
        ]);
    }
}

/// Output words per row: header, then `nch` lists of `k` pairs.
pub fn out_stride(nch: usize, k: usize) -> usize {
    HDR + nch * k * 2
}

/// Floats of the statistics scratch for `rows` rows.
pub fn stats_len(rows: usize, nch: usize) -> usize {
    rows * nch * STAT_WORDS
}

/// One step's logit rules over `rows` rows of `v` logits.
pub struct LogitTop<'a> {
    /// Raw logits, row `r` from element `l_off + r · ldl`.
    pub logits: &'a Buf,
    /// First element of row 0.
    pub l_off: usize,
    /// Row stride.
    pub ldl: usize,
    /// Rows.
    pub rows: usize,
    /// Vocabulary size.
    pub v: usize,
    /// [`mask_bits`] of the call's masks.
    pub masks: &'a Buf,
    /// [`row_params`] of the rows.
    pub rowp: &'a Buf,
    /// Statistics scratch of [`stats_len`] floats.
    pub stats: &'a Buf,
    /// Output, [`out_stride`] words per row.
    pub out: &'a Buf,
    /// Vocabulary chunks ([`chunks`]).
    pub nch: usize,
    /// Candidates per row (1 ..= [`MAX_K`]).
    pub k: usize,
    /// First timestamp id (`v` without timestamp rules).
    pub tb: usize,
    /// Id whose raw softmax probability the header reports.
    pub no_speech: Option<u32>,
}

impl LogitTop<'_> {
    /// Record both dispatches.
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        if self.rows == 0 {
            return Ok(());
        }
        if !(1..=MAX_K).contains(&self.k) || self.nch == 0 || self.v == 0 {
            return Err(BackendError::Shape(format!(
                "logit rules: {} candidates over {} chunks of a vocabulary of {}",
                self.k, self.nch, self.v
            )));
        }
        check_range(
            "logit rows",
            self.l_off + (self.rows - 1) * self.ldl,
            self.v,
            4,
            self.logits.bytes,
        )?;
        check_range(
            "logit masks",
            0,
            2 * mask_words(self.v),
            4,
            self.masks.bytes,
        )?;
        check_range(
            "logit row rules",
            0,
            self.rows * ROW_WORDS,
            4,
            self.rowp.bytes,
        )?;
        check_range(
            "logit statistics",
            0,
            stats_len(self.rows, self.nch),
            4,
            self.stats.bytes,
        )?;
        let stride = out_stride(self.nch, self.k);
        check_range("logit candidates", 0, self.rows * stride, 4, self.out.bytes)?;
        let chunk = self.v.div_ceil(self.nch);
        let p = Params {
            v: u("vocabulary", self.v)?,
            rows: u("rows", self.rows)?,
            nch: u("chunks", self.nch)?,
            chunk: u("chunk", chunk)?,
            tb: u("timestamp id", self.tb.min(self.v))?,
            ns: self.no_speech.unwrap_or(u32::MAX),
            mw: u("mask", mask_words(self.v))?,
            l_off: u("offset", self.l_off)?,
            ldl: u("stride", self.ldl)?,
            o_stride: u("stride", stride)?,
            p0: 0,
            p1: 0,
        };
        let access = [
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Write,
            Access::Write,
        ];
        let k = self.k;
        let src = || SRC.replace("TOPK", &format!("{k}u"));
        let variant = format!("k{k}");
        let bufs = [self.logits, self.masks, self.rowp, self.stats, self.out];
        let groups = [u("chunks", self.nch)?, u("rows", self.rows)?, 1];
        let stats = kernel(gpu, "logits", &variant, src, "stats_pass", &access)?;
        rec.dispatch(&stats, &bufs, bytemuck::bytes_of(&p), groups);
        let top = kernel(gpu, "logits", &variant, src, "top_pass", &access)?;
        rec.dispatch(&top, &bufs, bytemuck::bytes_of(&p), groups);
        Ok(())
    }
}

/// Turn the read-back words (`rows` rows of [`out_stride`]`(nch, k)`, as
/// f32 bit patterns) into `out`: each row's chunk lists merged into its
/// best `k`, masked values as `-inf`.
pub fn parse(words: &[f32], rows: usize, nch: usize, k: usize, no_speech: bool, out: &mut TopK) {
    let stride = out_stride(nch, k);
    out.k = k;
    out.cands.clear();
    out.cands.resize(
        rows * k,
        Candidate {
            score: f32::NEG_INFINITY,
            token: 0,
        },
    );
    out.no_speech.clear();
    out.non_finite = false;
    let mut lists = Vec::with_capacity(nch * k);
    for r in 0..rows.min(words.len() / stride.max(1)) {
        let w = &words[r * stride..(r + 1) * stride];
        if no_speech {
            out.no_speech.push(w[0]);
        }
        out.non_finite |= w[1].to_bits() != 0;
        lists.clear();
        lists.extend(w[HDR..].chunks_exact(2).filter_map(|pair| {
            let token = pair[1].to_bits();
            // The kernel's mask value is the lowest finite float.
            let score = if pair[0] <= f32::MIN {
                f32::NEG_INFINITY
            } else {
                pair[0]
            };
            (token != u32::MAX).then_some(Candidate { score, token })
        }));
        merge_chunks(&mut lists, &mut out.cands[r * k..(r + 1) * k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logits::{reference_rows, TopRequest};
    use crate::vulkan::ops::testutil::{gpu, rand_vec};

    /// Run the GPU rules on `logits` and compare with the CPU reference:
    /// the same tokens in the same order, scores within float32 rounding.
    #[allow(clippy::too_many_arguments)]
    fn check(
        g: &Gpu,
        logits: &[f32],
        v: usize,
        masks: &LogitMasks,
        rows: &[RowRule],
        k: usize,
        nch: usize,
        what: &str,
    ) {
        let n = rows.len();
        let lb = g.upload_f32(logits, "logits").unwrap();
        let mb = g
            .upload(bytemuck::cast_slice(&mask_bits(masks, v)), "masks")
            .unwrap();
        let mut rp = Vec::new();
        row_params(rows, &mut rp);
        let rb = g.upload(bytemuck::cast_slice(&rp), "rows").unwrap();
        let sb = g.alloc((stats_len(n, nch) * 4) as u64, "stats").unwrap();
        let ob = g.alloc((n * out_stride(nch, k) * 4) as u64, "out").unwrap();
        let op = LogitTop {
            logits: &lb,
            l_off: 0,
            ldl: v,
            rows: n,
            v,
            masks: &mb,
            rowp: &rb,
            stats: &sb,
            out: &ob,
            nch,
            k,
            tb: masks.timestamp_begin as usize,
            no_speech: Some(3),
        };
        let mut rec = g.recorder();
        op.record(g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let words = g.read(&ob, 0, n * out_stride(nch, k)).unwrap();
        let mut got = TopK::default();
        parse(&words, n, nch, k, true, &mut got);
        let mut want = TopK::default();
        let req = TopRequest {
            masks,
            rows,
            k,
            no_speech: Some(3),
        };
        reference_rows(&mut logits.to_vec(), v, &req, &mut want).unwrap();
        for r in 0..n {
            let (a, b) = (got.row(r), want.row(r));
            let ta: Vec<u32> = a.iter().map(|c| c.token).collect();
            let tb: Vec<u32> = b.iter().map(|c| c.token).collect();
            assert_eq!(ta, tb, "{what}: row {r} tokens");
            for (x, y) in a.iter().zip(b) {
                let ok = (x.score == y.score)
                    || (x.score - y.score).abs() <= 2e-5 * y.score.abs().max(1.0);
                assert!(
                    ok,
                    "{what}: row {r} token {} score {} vs {}",
                    x.token, x.score, y.score
                );
            }
            let (na, nb) = (got.no_speech[r], want.no_speech[r]);
            assert!(
                (na - nb).abs() <= 1e-5 * nb.max(1e-3),
                "{what}: no-speech {na} vs {nb}"
            );
        }
        assert_eq!(got.non_finite, want.non_finite, "{what}: non-finite flag");
    }

    fn masks(v: usize, tb: usize) -> LogitMasks {
        LogitMasks {
            suppress: vec![3, 7, 40, (v - 2) as u32, v as u32 + 5],
            suppress_begin: vec![0, 11, 12],
            timestamp_begin: tb as u32,
        }
    }

    #[test]
    fn rules_match_the_cpu_reference() {
        let Some(g) = gpu() else { return };
        let (v, tb) = (3001, 2500);
        let n = 6;
        let mut l: Vec<f32> = rand_vec(n * v, 9).iter().map(|x| x * 6.0).collect();
        // Row 2: timestamps dominate (the check masks the text).
        l[2 * v + tb..3 * v].iter_mut().for_each(|x| *x += 6.0);
        // Row 3: ties everywhere (the lower id first).
        l[3 * v..4 * v]
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = (i % 5) as f32);
        let rows = [
            RowRule::default(),
            RowRule {
                score: -3.25,
                begin: true,
                masked: [(0, tb as u32), (2600, v as u32 + 10)],
                timestamp_check: false,
            },
            RowRule {
                timestamp_check: true,
                masked: [(tb as u32, 2550), (0, 0)],
                ..Default::default()
            },
            RowRule {
                timestamp_check: true,
                score: -1.0,
                ..Default::default()
            },
            // Everything masked: the lowest ids at -inf.
            RowRule {
                masked: [(0, v as u32), (0, 0)],
                ..Default::default()
            },
            RowRule {
                begin: true,
                timestamp_check: true,
                masked: [(0, 1000), (2900, 3001)],
                score: -0.5,
            },
        ];
        let m = masks(v, tb);
        for (k, nch) in [(1, 1), (10, 1), (10, 3), (16, 7), (5, 64)] {
            check(&g, &l, v, &m, &rows, k, nch, &format!("k {k} chunks {nch}"));
        }
    }

    #[test]
    fn nan_logits_are_flagged() {
        let Some(g) = gpu() else { return };
        let v = 300;
        let mut l = rand_vec(2 * v, 4);
        l[v + 17] = f32::NAN;
        let rows = [RowRule::default(), RowRule::default()];
        let m = masks(v, v);
        let lb = g.upload_f32(&l, "l").unwrap();
        let mb = g
            .upload(bytemuck::cast_slice(&mask_bits(&m, v)), "m")
            .unwrap();
        let mut rp = Vec::new();
        row_params(&rows, &mut rp);
        let rb = g.upload(bytemuck::cast_slice(&rp), "r").unwrap();
        let sb = g.alloc((stats_len(2, 1) * 4) as u64, "s").unwrap();
        let ob = g.alloc((2 * out_stride(1, 4) * 4) as u64, "o").unwrap();
        let op = LogitTop {
            logits: &lb,
            l_off: 0,
            ldl: v,
            rows: 2,
            v,
            masks: &mb,
            rowp: &rb,
            stats: &sb,
            out: &ob,
            nch: 1,
            k: 4,
            tb: v,
            no_speech: None,
        };
        let mut rec = g.recorder();
        op.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let words = g.read(&ob, 0, 2 * out_stride(1, 4)).unwrap();
        let mut got = TopK::default();
        parse(&words, 2, 1, 4, false, &mut got);
        assert!(got.non_finite);
        assert!(got
            .row(1)
            .iter()
            .all(|c| c.token != 17 && c.score.is_finite()));
    }
}
