//! The self-attention KV cache (`kv_cache.wgsl`, `kv_gather.wgsl`): a
//! buffer `[layers][2][seqs][cap][d]` (the decoder keeps one per layer, so
//! `layers` = 1 there), appended to each step and gathered on the GPU for
//! beam reordering and growth.

use super::{check_range, kernel, u};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const APPEND: &str = include_str!("kv_cache.wgsl");
const GATHER: &str = include_str!("kv_gather.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AppendParams {
    seqs: u32,
    t: u32,
    d: u32,
    cap: u32,
    base: u32,
    layer_off: u32,
    vo: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GatherParams {
    layers: u32,
    seqs_dst: u32,
    seqs_src: u32,
    cap_src: u32,
    cap_dst: u32,
    len: u32,
    d: u32,
    pad: u32,
}

/// Geometry of a cache buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Decoder layers.
    pub layers: usize,
    /// Sequences.
    pub seqs: usize,
    /// Positions allocated per sequence.
    pub cap: usize,
    /// Model width.
    pub d: usize,
}

impl Layout {
    /// Elements of the whole cache.
    pub fn elems(&self) -> usize {
        self.layers * 2 * self.seqs * self.cap * self.d
    }

    /// First element of layer `l`'s keys (its values follow after
    /// `seqs · cap · d`).
    pub fn layer_off(&self, l: usize) -> usize {
        l * 2 * self.seqs * self.cap * self.d
    }

    /// Elements between one layer's keys and its values.
    pub fn kv_stride(&self) -> usize {
        self.seqs * self.cap * self.d
    }
}

/// Append K/V of layer `l` from `qkv` (`[seqs·t, 3d]`) at positions
/// `base .. base + t`.
#[allow(clippy::too_many_arguments)]
pub fn append(
    gpu: &Gpu,
    rec: &mut Recorder,
    qkv: &Buf,
    cache: &Buf,
    lay: Layout,
    l: usize,
    t: usize,
    base: usize,
) -> Result<(), BackendError> {
    append_in(gpu, rec, qkv, cache, lay, lay.seqs, l, t, base)
}

/// [`append`] for the first `lay.seqs` sequences of a single-layer cache
/// that has `slots ≥ lay.seqs` slots (sequence `i` writes slot `i`).
#[allow(clippy::too_many_arguments)]
pub fn append_slots(
    gpu: &Gpu,
    rec: &mut Recorder,
    qkv: &Buf,
    cache: &Buf,
    lay: Layout,
    slots: usize,
    t: usize,
    base: usize,
) -> Result<(), BackendError> {
    append_in(gpu, rec, qkv, cache, lay, slots, 0, t, base)
}

#[allow(clippy::too_many_arguments)]
fn append_in(
    gpu: &Gpu,
    rec: &mut Recorder,
    qkv: &Buf,
    cache: &Buf,
    lay: Layout,
    slots: usize,
    l: usize,
    t: usize,
    base: usize,
) -> Result<(), BackendError> {
    let full = Layout { seqs: slots, ..lay };
    if base + t > lay.cap || l >= lay.layers || slots < lay.seqs {
        return Err(BackendError::Shape(format!(
            "kv append: positions {base}+{t} of {} (layer {l} of {})",
            lay.cap, lay.layers
        )));
    }
    check_range(
        "kv append source",
        0,
        lay.seqs * t * 3 * lay.d,
        4,
        qkv.bytes,
    )?;
    check_range("kv cache", 0, full.elems(), 4, cache.bytes)?;
    let p = AppendParams {
        seqs: u("sequences", lay.seqs)?,
        t: u("tokens", t)?,
        d: u("width", lay.d)?,
        cap: u("capacity", lay.cap)?,
        base: u("position", base)?,
        layer_off: u("offset", full.layer_off(l))?,
        vo: u("offset", full.kv_stride())?,
        pad: 0,
    };
    let k = kernel(
        gpu,
        "kv_cache",
        "f32",
        || APPEND.to_string(),
        "append",
        &[Access::Read, Access::Write],
    )?;
    rec.dispatch(
        &k,
        &[qkv, cache],
        bytemuck::bytes_of(&p),
        Gpu::grid(lay.seqs * t * lay.d, 256),
    );
    Ok(())
}

/// `dst` sequence `i` = `src` sequence `origin[i]` (positions `< len`);
/// `origin` holds `dst.seqs` u32 indices below `src.seqs`.
#[allow(clippy::too_many_arguments)]
pub fn gather(
    gpu: &Gpu,
    rec: &mut Recorder,
    origin: &Buf,
    src: &Buf,
    src_lay: Layout,
    dst: &Buf,
    dst_lay: Layout,
    len: usize,
) -> Result<(), BackendError> {
    if src_lay.layers != dst_lay.layers
        || src_lay.d != dst_lay.d
        || len > src_lay.cap.min(dst_lay.cap)
    {
        return Err(BackendError::Shape(format!(
            "kv gather: {src_lay:?} into {dst_lay:?} for {len} positions"
        )));
    }
    check_range("kv gather origins", 0, dst_lay.seqs, 4, origin.bytes)?;
    check_range("kv gather source", 0, src_lay.elems(), 4, src.bytes)?;
    check_range("kv gather target", 0, dst_lay.elems(), 4, dst.bytes)?;
    let p = GatherParams {
        layers: u("layers", src_lay.layers)?,
        seqs_dst: u("sequences", dst_lay.seqs)?,
        seqs_src: u("sequences", src_lay.seqs)?,
        cap_src: u("capacity", src_lay.cap)?,
        cap_dst: u("capacity", dst_lay.cap)?,
        len: u("length", len)?,
        d: u("width", src_lay.d)?,
        pad: 0,
    };
    let k = kernel(
        gpu,
        "kv_gather",
        "f32",
        || GATHER.to_string(),
        "gather",
        &[Access::Read, Access::Read, Access::Write],
    )?;
    let n = dst_lay.layers * 2 * dst_lay.seqs * len * dst_lay.d;
    rec.dispatch(
        &k,
        &[origin, src, dst],
        bytemuck::bytes_of(&p),
        Gpu::grid(n, 256),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{gpu, rand_vec};

    #[test]
    fn append_then_reorder_and_grow() {
        let Some(g) = gpu() else { return };
        let lay = Layout {
            layers: 2,
            seqs: 3,
            cap: 5,
            d: 7,
        };
        let cache = g.alloc((lay.elems() * 4) as u64, "cache").unwrap();
        let (t, base) = (2, 1);
        let qkvs: Vec<Vec<f32>> = (0..2)
            .map(|l| rand_vec(lay.seqs * t * 3 * lay.d, 70 + l))
            .collect();
        let mut rec = g.recorder();
        let bufs: Vec<Buf> = qkvs
            .iter()
            .map(|q| g.upload_f32(q, "qkv").unwrap())
            .collect();
        for (l, b) in bufs.iter().enumerate() {
            append(&g, &mut rec, b, &cache, lay, l, t, base).unwrap();
        }
        // Reorder 3 → 4 sequences with a larger capacity at once.
        let origin: [u32; 4] = [2, 0, 0, 1];
        let ob = g.upload(bytemuck::cast_slice(&origin), "origin").unwrap();
        let lay2 = Layout {
            seqs: 4,
            cap: 8,
            ..lay
        };
        let dst = g.alloc((lay2.elems() * 4) as u64, "dst").unwrap();
        gather(&g, &mut rec, &ob, &cache, lay, &dst, lay2, base + t).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&dst, 0, lay2.elems()).unwrap();
        let d = lay.d;
        for l in 0..2 {
            for (i, &o) in origin.iter().enumerate() {
                for pos in base..base + t {
                    let r = o as usize * t + (pos - base);
                    for c in 0..d {
                        let k = got[lay2.layer_off(l) + (i * lay2.cap + pos) * d + c];
                        let v = got
                            [lay2.layer_off(l) + lay2.kv_stride() + (i * lay2.cap + pos) * d + c];
                        assert_eq!(k, qkvs[l][r * 3 * d + d + c]);
                        assert_eq!(v, qkvs[l][r * 3 * d + 2 * d + c]);
                    }
                }
            }
        }
    }
}
