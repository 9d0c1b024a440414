//! Flash-decoding cross-attention for decoder steps (`flash.wgsl`): all
//! query rows (beams) of a window are handled by the same workgroups, so
//! each window's K/V are read once per step; keys are split into chunks so
//! that a single window still fills the GPU, and a small reduce combines
//! the chunks. The `sdpa` kernel stays for the prompt pre-pass and for the
//! alignment pass, which needs the scores.

use super::{check_range, kernel, u};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("flash.wgsl");
/// Most query rows per window.
pub const MAX_ROWS: usize = 16;
/// Keys per 64-key tile.
const TILE: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    windows: u32,
    heads: u32,
    dh: u32,
    lk: u32,
    row_stride: u32,
    slot_stride: u32,
    k_off: u32,
    v_off: u32,
    q_stride: u32,
    o_stride: u32,
    nch: u32,
    chunk: u32,
    scale: f32,
    pad: [u32; 3],
}

/// Row-group capacity for `rows` query rows per window: a power of two, so
/// few pipeline variants exist.
pub fn group_cap(rows: usize) -> usize {
    rows.max(1).next_power_of_two()
}

/// The per-window row lists `grp` holds: `[windows][1 + cap]` u32, the
/// count then the query rows of each window (`row_window[r]` = window of
/// query row `r`). `None` when a window has more than [`MAX_ROWS`] rows.
pub fn groups(row_window: &[usize], windows: usize) -> Option<(Vec<u32>, usize)> {
    let mut lists = vec![Vec::new(); windows];
    for (r, &w) in row_window.iter().enumerate() {
        lists.get_mut(w)?.push(r as u32);
    }
    let most = lists.iter().map(Vec::len).max().unwrap_or(0);
    if most > MAX_ROWS {
        return None;
    }
    let cap = group_cap(most);
    let mut out = vec![0u32; windows * (cap + 1)];
    for (w, l) in lists.iter().enumerate() {
        out[w * (cap + 1)] = l.len() as u32;
        out[w * (cap + 1) + 1..w * (cap + 1) + 1 + l.len()].copy_from_slice(l);
    }
    Some((out, cap))
}

/// Key chunks per (window, head): one on software adapters (their few
/// threads are busy with the heads already), else enough chunks that about
/// 1024 workgroups run, each of at least one 64-key tile. A workgroup is
/// two warps working through its tiles with three barriers each, so a GPU
/// needs several per compute unit to hide memory latency: on an H200 (132
/// units), 128 workgroups (7 chunks for large-v3's 20 heads) read the
/// cross-attention K/V at 52 GB/s, 0.3 ms a layer (device check,
/// 2026-12-04); one tile per chunk gives 480.
pub fn chunks(gpu: &Gpu, windows: usize, heads: usize, lk: usize) -> usize {
    if gpu.desc.kind == crate::any::DeviceKind::Cpu {
        return 1;
    }
    1024usize
        .div_ceil((windows * heads).max(1))
        .clamp(1, lk.div_ceil(TILE).max(1))
}

/// Chunks and keys per chunk for about `nch` chunks of `lk` keys: chunks
/// are whole 64-key tiles, so fewer chunks may be needed.
pub fn split(lk: usize, nch: usize) -> (usize, usize) {
    let chunk = lk.div_ceil(nch.max(1)).next_multiple_of(TILE).max(TILE);
    (lk.div_ceil(chunk).max(1), chunk)
}

/// One flash-decoding attention over `windows` windows of `lk` keys.
pub struct Flash<'a> {
    /// Queries `[rows, q_stride]`, head `h` at columns `h·dh..`.
    pub q: &'a Buf,
    /// Query row stride.
    pub q_stride: usize,
    /// Query (and output) rows; `grp` lists only rows below this.
    pub rows: usize,
    /// `[windows][cap + 1]` row lists (see [`groups`]).
    pub grp: &'a Buf,
    /// Its row capacity per window.
    pub cap: usize,
    /// K/V: window `w`'s key `j` of head `h` at
    /// `k_off + w·slot_stride + j·row_stride + h·dh` (values from `v_off`).
    pub kv: &'a Buf,
    /// First key element.
    pub k_off: usize,
    /// First value element.
    pub v_off: usize,
    /// Distance between keys.
    pub row_stride: usize,
    /// Distance between windows.
    pub slot_stride: usize,
    /// Windows.
    pub windows: usize,
    /// Keys per window.
    pub lk: usize,
    /// Heads.
    pub heads: usize,
    /// Head width (a multiple of 4, at most 128).
    pub dh: usize,
    /// Key chunks wanted (see [`chunks`], [`split`]); the partials scratch
    /// is sized for this many.
    pub nch: usize,
    /// Partials scratch of [`Flash::partials_len`] values (with `nch > 1`).
    pub part: &'a Buf,
    /// Output `[rows, heads·dh]`.
    pub out: &'a Buf,
}

impl Flash<'_> {
    /// Values of the partials scratch.
    pub fn partials_len(windows: usize, heads: usize, nch: usize, cap: usize, dh: usize) -> usize {
        windows * heads * nch * cap * (dh + 2)
    }

    /// Whether a head width and K/V layout suit the kernel (4-vector loads).
    pub fn fits(dh: usize, offsets: &[usize]) -> bool {
        dh.is_multiple_of(4) && dh <= 128 && offsets.iter().all(|o| o.is_multiple_of(4))
    }

    /// Record the attention (and the reduce when `nch > 1`).
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        let d = self.heads * self.dh;
        let (nch, chunk) = split(self.lk, self.nch);
        if self.windows == 0
            || self.lk == 0
            || self.nch == 0
            || self.cap == 0
            || self.cap > MAX_ROWS
            || !Self::fits(
                self.dh,
                &[self.k_off, self.v_off, self.row_stride, self.slot_stride],
            )
        {
            return Err(BackendError::Shape(format!(
                "flash attention: {} windows of {} keys, head width {}, {} chunks, {} rows per window",
                self.windows, self.lk, self.dh, self.nch, self.cap
            )));
        }
        check_range(
            "flash groups",
            0,
            self.windows * (self.cap + 1),
            4,
            self.grp.bytes,
        )?;
        let last = (self.windows - 1) * self.slot_stride + (self.lk - 1) * self.row_stride + d;
        check_range("flash keys", self.k_off, last, 4, self.kv.bytes)?;
        check_range("flash values", self.v_off, last, 4, self.kv.bytes)?;
        let rows = self.rows.max(1);
        check_range("flash output", 0, rows * d, 4, self.out.bytes)?;
        check_range(
            "flash queries",
            0,
            (rows - 1) * self.q_stride + d,
            4,
            self.q.bytes,
        )?;
        if nch > 1 {
            check_range(
                "flash partials",
                0,
                Self::partials_len(self.windows, self.heads, self.nch, self.cap, self.dh),
                4,
                self.part.bytes,
            )?;
        }
        let p = Params {
            windows: u("windows", self.windows)?,
            heads: u("heads", self.heads)?,
            dh: u("head width", self.dh)?,
            lk: u("keys", self.lk)?,
            row_stride: u("stride", self.row_stride)?,
            slot_stride: u("stride", self.slot_stride)?,
            k_off: u("offset", self.k_off)?,
            v_off: u("offset", self.v_off)?,
            q_stride: u("stride", self.q_stride)?,
            o_stride: u("width", d)?,
            nch: u("chunks", nch)?,
            chunk: u("chunk", chunk)?,
            scale: 1.0 / (self.dh as f32).sqrt(),
            pad: [0; 3],
        };
        let cap = self.cap;
        let access = [
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Write,
            Access::Write,
        ];
        let src = || SRC.replace("FLASH_ROWS", &format!("{cap}u"));
        let bufs = [self.q, self.kv, self.grp, self.part, self.out];
        let heads = u("heads", self.heads)?;
        let windows = u("windows", self.windows)?;
        let k = kernel(gpu, "flash", &format!("r{cap}"), src, "partial", &access)?;
        rec.dispatch(
            &k,
            &bufs,
            bytemuck::bytes_of(&p),
            [u("chunks", nch)?, heads, windows],
        );
        if nch > 1 {
            let k = kernel(gpu, "flash", &format!("r{cap}"), src, "reduce", &access)?;
            rec.dispatch(
                &k,
                &bufs,
                bytemuck::bytes_of(&p),
                [u("rows", cap)?, heads, windows],
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    /// Cross-attention of `rows_per_window` beams in each of 2 windows over
    /// 1500 keys, against a naive softmax, for 1 and several chunks.
    fn run(rows_per_window: usize, nch: usize) {
        let Some(g) = gpu() else { return };
        let (windows, heads, dh, lk) = (2, 3, 64, 1500);
        let d = heads * dh;
        let rows = windows * rows_per_window;
        // Rows interleave windows, as beams of batched windows do.
        let row_window: Vec<usize> = (0..rows).map(|r| (r * 7 + 1) % windows).collect();
        let (grp, cap) = groups(&row_window, windows).unwrap();
        let q = rand_vec(rows * d, 31);
        let kvv: Vec<f32> = rand_vec(windows * lk * 2 * d, 32)
            .iter()
            .map(|v| v * 3.0)
            .collect();
        let qb = g.upload_f32(&q, "q").unwrap();
        let kb = g.upload_f32(&kvv, "kv").unwrap();
        let gb = g.upload(bytemuck::cast_slice(&grp), "grp").unwrap();
        let ob = g.alloc((rows * d * 4) as u64, "o").unwrap();
        let pb = g
            .alloc(
                (Flash::partials_len(windows, heads, nch, cap, dh) * 4) as u64,
                "part",
            )
            .unwrap();
        let f = Flash {
            q: &qb,
            q_stride: d,
            rows,
            grp: &gb,
            cap,
            kv: &kb,
            k_off: 0,
            v_off: d,
            row_stride: 2 * d,
            slot_stride: lk * 2 * d,
            windows,
            lk,
            heads,
            dh,
            nch,
            part: &pb,
            out: &ob,
        };
        let mut rec = g.recorder();
        f.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&ob, 0, rows * d).unwrap();
        let scale = 1.0 / (dh as f32).sqrt();
        let mut want = vec![0f32; rows * d];
        for r in 0..rows {
            let w = row_window[r];
            for h in 0..heads {
                let key = |j: usize, c: usize| kvv[w * lk * 2 * d + j * 2 * d + h * dh + c];
                let val = |j: usize, c: usize| kvv[w * lk * 2 * d + j * 2 * d + d + h * dh + c];
                let mut p: Vec<f32> = (0..lk)
                    .map(|j| {
                        (0..dh)
                            .map(|c| q[r * d + h * dh + c] * key(j, c))
                            .sum::<f32>()
                            * scale
                    })
                    .collect();
                crate::cpu::ops::softmax(&mut p);
                for c in 0..dh {
                    want[r * d + h * dh + c] = (0..lk).map(|j| p[j] * val(j, c)).sum();
                }
            }
        }
        assert_close(
            &got,
            &want,
            2e-5,
            &format!("flash {rows_per_window} rows/window, {nch} chunks"),
        );
    }

    #[test]
    fn one_five_and_eight_rows_over_1500_keys_match_naive() {
        for rows in [1, 5, 8] {
            run(rows, 1);
            run(rows, 7);
        }
        run(3, 24);
    }

    #[test]
    fn groups_lists_rows_per_window() {
        let (g, cap) = groups(&[1, 0, 1], 2).unwrap();
        assert_eq!(cap, 2);
        assert_eq!(g, [1, 1, 0, 2, 0, 2]);
        assert!(groups(&[0; 17], 1).is_none());
        assert!(groups(&[2], 2).is_none());
    }
}
