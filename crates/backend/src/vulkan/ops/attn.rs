//! Flash attention for the encoder (`attn.wgsl`): softmax(Q Kᵀ/√dh) V of a
//! window's frames without a score matrix in memory. The score path (QKᵀ
//! matmul → softmax → P·V) wrote, re-read and rewrote `heads · frames²`
//! floats per layer (216 MB per layer for tiny, 23 GB per window for
//! large-v3); this kernel reads Q, K and V and writes the output, nothing
//! else. One workgroup per (64 query rows, head), keys and values staged
//! through workgroup memory, online softmax, float32 accumulation; the
//! activations may be float16 (the float16 compute mode).

use super::{acts, check_range, kernel, traffic, u, WType};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("attn.wgsl");
const SRC_COOP: &str = include_str!("attn_coop.wgsl");
/// Query rows per workgroup.
const BQ: usize = 64;
/// Workgroup memory of `attn_coop.wgsl`: K, V and P tiles (f16, rows of
/// 72), the scores / P·V tile (f32) and a zero tile.
const COOP_SHARED_BYTES: u64 = 3 * 64 * 72 * 2 + 64 * 64 * 4 + 256 * 4;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    frames: u32,
    ld: u32,
    base: u32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    o_ld: u32,
    o_off: u32,
    scale: f32,
    pad: [u32; 3],
}

/// Self-attention of one window: `qkv` rows `[frames, ld]` from element
/// `base`, Q/K/V of head `h` at columns `q_off/k_off/v_off + h·dh`; output
/// rows `o_ld` apart from `o_off`, head `h` at columns `h·dh`.
pub struct Attn<'a> {
    /// Fused projections.
    pub qkv: &'a Buf,
    /// Their element type (f32, or f16 in the float16 mode).
    pub xt: WType,
    /// Row stride of `qkv`.
    pub ld: usize,
    /// First element of the window.
    pub base: usize,
    /// Columns of Q, K and V.
    pub q_off: usize,
    /// See `q_off`.
    pub k_off: usize,
    /// See `q_off`.
    pub v_off: usize,
    /// Frames (queries and keys).
    pub frames: usize,
    /// Heads.
    pub heads: usize,
    /// Head width (a multiple of 4, at most 128).
    pub dh: usize,
    /// Output.
    pub out: &'a Buf,
    /// Its element type.
    pub ot: WType,
    /// Row stride of `out`.
    pub o_ld: usize,
    /// First element of `out`.
    pub o_off: usize,
}

/// Keys per tile that fit the adapter's workgroup memory (K and V tiles of
/// `dh` values each, in the activations' type), 64 where possible.
pub fn key_tile(gpu: &Gpu, dh: usize, xt: WType) -> usize {
    let per_key = 2 * dh * xt.size();
    let fit = gpu.max_workgroup_bytes() as usize / per_key.max(1);
    [64usize, 32, 16]
        .into_iter()
        .find(|&t| t <= fit)
        .unwrap_or(8)
}

impl Attn<'_> {
    /// Whether the kernel takes this shape: head widths that are multiples
    /// of 4 up to 128, 4-aligned columns and strides, float activations.
    pub fn fits(&self) -> bool {
        let aligned = [
            self.ld, self.base, self.q_off, self.k_off, self.v_off, self.o_ld, self.o_off,
        ]
        .iter()
        .all(|v| v.is_multiple_of(4));
        aligned
            && self.dh.is_multiple_of(4)
            && (4..=128).contains(&self.dh)
            && self.xt != WType::I8
            && self.ot != WType::I8
    }

    /// Whether the matrix-core kernel (`attn_coop.wgsl`) takes this shape
    /// on `gpu`: f16 activations, head width 64, f16 cooperative matrices
    /// and subgroups of exactly 32 (four per workgroup, two lanes per row).
    pub fn fits_coop(&self, gpu: &Gpu) -> bool {
        self.fits()
            && self.xt == WType::F16
            && self.dh == 64
            && gpu.coop16
            && gpu.subgroup_size == Some(32)
            && gpu.max_workgroup_bytes() >= COOP_SHARED_BYTES
    }

    /// The matrix-core kernel's source for output type `ot`.
    pub fn coop_source(ot: WType) -> String {
        acts(SRC_COOP, WType::F16, ot)
    }

    /// Record the dispatch: the matrix-core kernel where the device was
    /// opened with `VKW_ENCODER_ATTN=coop` and it fits, else `attn.wgsl`.
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        if gpu.candidates.attn_coop && self.fits_coop(gpu) {
            return self.record_coop(gpu, rec);
        }
        self.record_simt(gpu, rec)
    }

    /// Record the matrix-core kernel (tests and the device check call it
    /// directly; an error where [`Self::fits_coop`] is false).
    pub fn record_coop(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        self.record_with(gpu, rec, true)
    }

    /// Record `attn.wgsl`.
    pub fn record_simt(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        self.record_with(gpu, rec, false)
    }

    /// Record either kernel: both take the same uniform, bindings and grid
    /// (one workgroup per 64 query rows and head).
    fn record_with(&self, gpu: &Gpu, rec: &mut Recorder, coop: bool) -> Result<(), BackendError> {
        if self.frames == 0 || self.heads == 0 {
            return Ok(());
        }
        if coop && !self.fits_coop(gpu) {
            return Err(BackendError::Unsupported(format!(
                "{}: no matrix-core attention for head width {} with {} activations (subgroup size {:?})",
                gpu.desc.name,
                self.dh,
                self.xt.name(),
                gpu.subgroup_size
            )));
        }
        let p = self.params()?;
        let (xt, ot, dh) = (self.xt, self.ot, self.dh);
        let access = [Access::Read, Access::Write];
        let k = if coop {
            kernel(
                gpu,
                "attn_coop",
                ot.name(),
                || Self::coop_source(ot),
                "main",
                &access,
            )?
        } else {
            let kt = key_tile(gpu, dh, xt);
            kernel(
                gpu,
                "attn",
                &format!("{}{}/dh{dh}/kt{kt}", xt.name(), ot.name()),
                || {
                    acts(SRC, xt, ot)
                        .replace("HEAD_DIM", &format!("{dh}u"))
                        .replace("KEY_TILE", &format!("{kt}u"))
                },
                "main",
                &access,
            )?
        };
        rec.dispatch(
            &k,
            &[self.qkv, self.out],
            bytemuck::bytes_of(&p),
            [
                u("blocks", self.frames.div_ceil(BQ))?,
                u("heads", self.heads)?,
                1,
            ],
        );
        traffic(self.frames * self.heads * dh * (3 * xt.size() + ot.size()));
        Ok(())
    }

    /// Shape checks and the uniform shared by both kernels.
    fn params(&self) -> Result<Params, BackendError> {
        if !self.fits() {
            return Err(BackendError::Shape(format!(
                "attention: head width {} with unaligned columns or strides",
                self.dh
            )));
        }
        let d = self.heads * self.dh;
        for off in [self.q_off, self.k_off, self.v_off] {
            check_range(
                "attention input",
                self.base + (self.frames - 1) * self.ld + off,
                d,
                self.xt.size(),
                self.qkv.bytes,
            )?;
        }
        check_range(
            "attention output",
            self.o_off + (self.frames - 1) * self.o_ld,
            d,
            self.ot.size(),
            self.out.bytes,
        )?;
        Ok(Params {
            frames: u("frames", self.frames)?,
            ld: u("stride", self.ld)?,
            base: u("offset", self.base)?,
            q_off: u("offset", self.q_off)?,
            k_off: u("offset", self.k_off)?,
            v_off: u("offset", self.v_off)?,
            o_ld: u("stride", self.o_ld)?,
            o_off: u("offset", self.o_off)?,
            scale: 1.0 / (self.dh as f32).sqrt(),
            pad: [0; 3],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    /// softmax(q kᵀ/√dh) v per head, in float64.
    fn naive(qkv: &[f32], frames: usize, heads: usize, dh: usize) -> Vec<f32> {
        let d = heads * dh;
        let mut out = vec![0f32; frames * d];
        let scale = 1.0 / (dh as f64).sqrt();
        for h in 0..heads {
            for i in 0..frames {
                let q = &qkv[i * 3 * d + h * dh..][..dh];
                let s: Vec<f64> = (0..frames)
                    .map(|j| {
                        let k = &qkv[j * 3 * d + d + h * dh..][..dh];
                        q.iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..dh {
                    let o: f64 = (0..frames)
                        .map(|j| e[j] * qkv[j * 3 * d + 2 * d + h * dh + c] as f64)
                        .sum();
                    out[i * d + h * dh + c] = (o / sum) as f32;
                }
            }
        }
        out
    }

    fn run(frames: usize, heads: usize, dh: usize, xt: WType, tol: f32) {
        run_kernel(frames, heads, dh, xt, tol, false);
    }

    fn run_kernel(frames: usize, heads: usize, dh: usize, xt: WType, tol: f32, coop: bool) {
        let Some(g) = gpu() else { return };
        if xt == WType::F16 && !g.f16 {
            eprintln!("skipping f16 attention: adapter has no SHADER_F16");
            return;
        }
        let d = heads * dh;
        let mut qkv: Vec<f32> = rand_vec(frames * 3 * d, 31)
            .iter()
            .map(|v| v * 2.0)
            .collect();
        if xt == WType::F16 {
            qkv.iter_mut()
                .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        }
        let want = naive(&qkv, frames, heads, dh);
        let qb = match xt {
            WType::F16 => {
                let h: Vec<half::f16> = qkv.iter().map(|&v| half::f16::from_f32(v)).collect();
                g.upload(bytemuck::cast_slice(&h), "qkv").unwrap()
            }
            _ => g.upload_f32(&qkv, "qkv").unwrap(),
        };
        let ob = g.alloc((frames * d * 4) as u64, "out").unwrap();
        let a = Attn {
            qkv: &qb,
            xt,
            ld: 3 * d,
            base: 0,
            q_off: 0,
            k_off: d,
            v_off: 2 * d,
            frames,
            heads,
            dh,
            out: &ob,
            ot: WType::F32,
            o_ld: d,
            o_off: 0,
        };
        let mut rec = g.recorder();
        if coop {
            a.record_coop(&g, &mut rec).unwrap();
        } else {
            a.record_simt(&g, &mut rec).unwrap();
        }
        g.submit(rec).unwrap();
        let got = g.read(&ob, 0, frames * d).unwrap();
        assert_close(
            &got,
            &want,
            tol,
            &format!("attention {frames}x{heads}x{dh} {xt:?} coop {coop}"),
        );
    }

    /// The matrix-core kernel is valid WGSL for naga with the
    /// cooperative-matrix, subgroup and f16 capabilities and translates to
    /// SPIR-V: checked on every machine, since no software adapter runs it.
    #[test]
    fn coop_shader_validates_and_translates_to_spirv() {
        for ot in [WType::F16, WType::F32] {
            crate::vulkan::ops::testutil::assert_valid_spirv(
                &Attn::coop_source(ot),
                &format!("attn_coop out {ot:?}"),
            );
        }
    }

    /// On an adapter with f16 cooperative matrices and 32-lane subgroups:
    /// the matrix-core kernel against the float64 reference, with a last
    /// key tile and a last query block that are partial. The
    /// probabilities are rounded to f16 before P·V (as on CUDA), hence the
    /// looser bound. Skipped (with a message) elsewhere.
    #[test]
    fn coop_matches_naive_where_the_adapter_has_cooperative_matrices() {
        let Some(g) = gpu() else { return };
        if !(g.coop16 && g.subgroup_size == Some(32)) {
            eprintln!(
                "skipping the matrix-core attention: {} has no f16 cooperative matrices with 32-lane subgroups",
                g.desc.name
            );
            return;
        }
        run_kernel(150, 3, 64, WType::F16, 4e-3, true);
        run_kernel(1500, 1, 64, WType::F16, 4e-3, true);
    }

    #[test]
    fn matches_naive_softmax_attention() {
        // Tiles of keys that do not divide the frames; one and several heads.
        run(150, 3, 64, WType::F32, 2e-5);
        run(67, 2, 32, WType::F32, 2e-5);
        run(200, 1, 16, WType::F32, 2e-5);
    }

    #[test]
    fn f16_activations_match() {
        run(130, 2, 64, WType::F16, 2e-5);
    }
}
