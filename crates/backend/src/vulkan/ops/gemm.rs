//! Many-row matmuls (`gemm.wgsl`, and `coop.wgsl` on matrix cores): the
//! encoder's Linear layers and convolutions, batched decoding steps and the
//! prompt pre-pass. [`MatMul`](super::matmul::MatMul) sends every aligned
//! product of more than [`gemv::MAX_ROWS`](super::gemv::MAX_ROWS) rows here:
//!
//! * up to [`SKINNY_ROWS`] rows: `skinny`, one 64-row tile per column block
//!   (weights read once), the inner dimension split over workgroups when
//!   the output alone would not fill the GPU, then `reduce`;
//! * more rows: cooperative matrices where the adapter has them
//!   ([`super::coop`]), else `tile8` (128×128 tiles, 8×8 per invocation,
//!   16-bit staging for 16-bit operands, register double buffering).
//!
//! Operands: x as f32 or f16 activations, weights f32/f16/int8 (row
//! scales), output f32 or f16; float32 accumulation everywhere.

use super::{acts, coop, coop_tiled, kernel, traffic, u, with_wtype, WType, GELU_WGSL};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("gemm.wgsl");
const COMMON: &str = include_str!("matmul_common.wgsl");
/// Most rows of the small-M kernel (one tile).
pub const SKINNY_ROWS: usize = 64;
/// Workgroups a split small-M product aims for on a GPU.
const TARGET_GROUPS: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub ldx: u32,
    pub ldw: u32,
    pub ldo: u32,
    pub x_off: u32,
    pub w_off: u32,
    pub o_off: u32,
    pub b_off: u32,
    pub flags: u32,
    pub alpha: f32,
    pub ksplit: u32,
    pub splits: u32,
    pub p0: u32,
    pub p1: u32,
}

/// Which many-row kernel a product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// 128×128 SIMT tiles.
    Tile8,
    /// Small-M with split-K.
    Skinny,
    /// Cooperative matrices (f16×f16→f32 16×16).
    Coop,
    /// Cooperative matrices with a generated tiling (`coop_tiled.rs`).
    CoopTiled(coop_tiled::TileCfg),
}

/// One product; built by `MatMul`.
pub(crate) struct Gemm<'a> {
    pub x: &'a Buf,
    pub xt: WType,
    pub w: &'a Buf,
    pub wt: WType,
    pub scale: Option<&'a Buf>,
    pub bias: Option<&'a Buf>,
    pub out: &'a Buf,
    pub ot: WType,
    /// Split-K partials (`splits · m · n` floats); `None`: no split.
    pub part: Option<&'a Buf>,
    pub p: Params,
    /// Force a kernel (tests, the device check); `None`: by shape and adapter.
    pub force: Option<Kernel>,
    /// Force a split count (tests).
    pub force_splits: Option<usize>,
}

/// Whether an aligned float32 product of `m` rows goes to these kernels
/// rather than `matmul.wgsl`'s 64×64 tiles: always on GPUs; on software
/// Vulkan only the small-M kernel (see docs/BENCHMARKS.md: lavapipe runs
/// the 64×64 tiles faster than `tile8`, whose 64 accumulators per
/// invocation spill out of CPU registers).
pub fn preferred(gpu: &Gpu, m: usize) -> bool {
    gpu.desc.kind != crate::any::DeviceKind::Cpu || m <= SKINNY_ROWS
}

/// Split-K ranges for a small-M product of `n` columns and inner size `k`
/// on `gpu`: one on software Vulkan (its few threads are busy already),
/// else enough for about [`TARGET_GROUPS`] workgroups, each range at least
/// 256 deep.
pub fn splits(gpu: &Gpu, n: usize, k: usize) -> usize {
    if gpu.desc.kind == crate::any::DeviceKind::Cpu {
        return 1;
    }
    TARGET_GROUPS
        .div_ceil(n.div_ceil(64).max(1))
        .clamp(1, (k / 256).max(1))
}

/// Floats of split-K partials a product of `m` rows, `n` columns and inner
/// size `k` needs on `gpu` (0 when it is not split).
pub fn partials_len(gpu: &Gpu, m: usize, n: usize, k: usize) -> usize {
    let s = splits(gpu, n, k);
    if m > SKINNY_ROWS || s == 1 {
        0
    } else {
        s * m * n
    }
}

/// The staging type: 16-bit when both operands are (or are int8, exact in
/// f16), else f32.
fn stype(xt: WType, wt: WType) -> WType {
    if xt == WType::F16 && wt != WType::F32 {
        WType::F16
    } else {
        WType::F32
    }
}

/// The module source for these types.
pub fn source(xt: WType, wt: WType, ot: WType) -> String {
    let st = stype(xt, wt);
    let src = SRC.replace("STYPE", if st == WType::F16 { "f16" } else { "f32" });
    let body = acts(&with_wtype(&with_common(&src), wt), xt, ot);
    dedupe_enable(&format!("{body}{GELU_WGSL}"))
}

/// `src` with its `MATMUL_COMMON` line replaced by `matmul_common.wgsl`
/// (the uniform, bindings, epilogue and loads every many-row matmul
/// kernel shares); before [`with_wtype`], which fills in its `WEIGHTS(1)`.
pub(crate) fn with_common(src: &str) -> String {
    src.replace("MATMUL_COMMON\n", COMMON)
}

/// Keep the first `enable f16;` of a source (two substitutions may add one each).
pub(crate) fn dedupe_enable(src: &str) -> String {
    let mut seen = false;
    src.lines()
        .filter(|l| {
            if l.trim() == "enable f16;" {
                let keep = !seen;
                seen = true;
                keep
            } else {
                true
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bindings of the many-row matmuls (`gemm.wgsl`, `coop.wgsl`,
/// `coop_tiled.wgsl`): x, W, bias, scales read; out, split-K partials written.
pub(crate) fn access() -> [Access; 6] {
    [
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Write,
        Access::Write,
    ]
}

impl Gemm<'_> {
    /// Record the product (one dispatch, or two with a split).
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        let (m, n, k) = (self.p.m as usize, self.p.n as usize, self.p.k as usize);
        if m == 0 || n == 0 {
            return Ok(());
        }
        let kind = self.force.unwrap_or(if m <= SKINNY_ROWS {
            Kernel::Skinny
        } else if coop::usable(gpu, self.xt, self.wt) {
            Kernel::Coop
        } else {
            Kernel::Tile8
        });
        let out_bytes = m * n * self.ot.size() * (1 + usize::from(self.p.flags & 4 != 0));
        traffic(m * k * self.xt.size() + n * k * self.wt.size() + out_bytes);
        match kind {
            // A tiling chosen with VKW_COOP_TILES (read when the device
            // opened) replaces coop.wgsl where it fits these operands.
            Kernel::Coop => match &gpu.candidates.coop_tiles {
                Some(cfg)
                    if self.force.is_none() && coop_tiled::usable(gpu, cfg, self.xt, self.wt) =>
                {
                    return coop_tiled::record(gpu, rec, self, cfg)
                }
                _ => return coop::record(gpu, rec, self),
            },
            Kernel::CoopTiled(cfg) => return coop_tiled::record(gpu, rec, self, &cfg),
            _ => {}
        }
        let (xt, wt, ot) = (self.xt, self.wt, self.ot);
        let variant = format!("{}{}{}", xt.name(), wt.name(), ot.name());
        let src = || source(xt, wt, ot);
        let bias = self.bias.unwrap_or(self.x);
        let scale = self.scale.unwrap_or(self.x);
        let mut p = self.p;
        match kind {
            Kernel::Tile8 => {
                let kern = kernel(gpu, "gemm", &variant, src, "tile8", &access())?;
                p.splits = 1;
                rec.dispatch(
                    &kern,
                    &[self.x, self.w, bias, scale, self.out, self.out],
                    bytemuck::bytes_of(&p),
                    [
                        u("columns", n.div_ceil(128))?,
                        u("rows", m.div_ceil(128))?,
                        1,
                    ],
                );
            }
            Kernel::Skinny | Kernel::Coop | Kernel::CoopTiled(_) => {
                if m > SKINNY_ROWS {
                    return Err(BackendError::Shape(format!(
                        "gemm: {m} rows for the small-M kernel (at most {SKINNY_ROWS})"
                    )));
                }
                let want = self.force_splits.unwrap_or_else(|| splits(gpu, n, k));
                let part = self.part.filter(|b| b.bytes >= (want * m * n * 4) as u64);
                let s = if part.is_some() { want.max(1) } else { 1 };
                let ksplit = k.div_ceil(s).next_multiple_of(16);
                let s = k.div_ceil(ksplit).max(1);
                p.splits = u("splits", s)?;
                p.ksplit = u("split", ksplit)?;
                let part = part.unwrap_or(self.out);
                let kern = kernel(gpu, "gemm", &variant, src, "skinny", &access())?;
                rec.dispatch(
                    &kern,
                    &[self.x, self.w, bias, scale, self.out, part],
                    bytemuck::bytes_of(&p),
                    [u("columns", n.div_ceil(64))?, 1, u("splits", s)?],
                );
                if s > 1 {
                    let red = kernel(gpu, "gemm", &variant, src, "reduce", &access())?;
                    rec.dispatch(
                        &red,
                        &[self.x, self.w, bias, scale, self.out, part],
                        bytemuck::bytes_of(&p),
                        Gpu::grid(m * n, 256),
                    );
                    traffic(2 * s * m * n * 4);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vulkan::ops::matmul::MatMul;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    fn to_f16(v: &[f32]) -> Vec<half::f16> {
        v.iter().map(|&x| half::f16::from_f32(x)).collect()
    }

    /// One product through `MatMul` with the kernel forced, against the
    /// float64 product of the values the GPU sees.
    #[allow(clippy::too_many_arguments)]
    fn run(
        m: usize,
        n: usize,
        k: usize,
        xt: WType,
        wt: WType,
        ot: WType,
        kind: Kernel,
        splits: usize,
    ) {
        let Some(g) = gpu() else { return };
        if (xt == WType::F16 || wt == WType::F16 || ot == WType::F16) && !g.f16 {
            eprintln!("skipping f16 gemm: adapter has no SHADER_F16");
            return;
        }
        let mut x = rand_vec(m * k, 11);
        if xt == WType::F16 {
            x.iter_mut()
                .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        }
        let wf = rand_vec(n * k, 12);
        let (wbuf, w, sbuf) = match wt {
            WType::F32 => (g.upload_f32(&wf, "w").unwrap(), wf.clone(), None),
            WType::F16 => {
                let h = to_f16(&wf);
                let back: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
                (g.upload(bytemuck::cast_slice(&h), "w").unwrap(), back, None)
            }
            WType::I8 => {
                let mut q = vec![0i8; n * k];
                let mut sc = Vec::new();
                for (row, qr) in wf.chunks(k).zip(q.chunks_mut(k)) {
                    sc.push(crate::cpu::int8::quantize_row(row, qr));
                }
                let back: Vec<f32> = q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v as f32 / sc[i / k])
                    .collect();
                let qb = g.upload(bytemuck::cast_slice(&q), "q").unwrap();
                (qb, back, Some(g.upload_f32(&sc, "s").unwrap()))
            }
        };
        let b = rand_vec(n, 13);
        let base = rand_vec(m * n, 14);
        let mut want = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let s: f64 = (0..k)
                    .map(|t| x[r * k + t] as f64 * w[c * k + t] as f64)
                    .sum();
                want[r * n + c] = (s + b[c] as f64) as f32 + base[r * n + c];
            }
        }
        let xb = match xt {
            WType::F16 => g.upload(bytemuck::cast_slice(&to_f16(&x)), "x").unwrap(),
            _ => g.upload_f32(&x, "x").unwrap(),
        };
        let ob = match ot {
            WType::F16 => g.upload(bytemuck::cast_slice(&to_f16(&base)), "o").unwrap(),
            _ => g.upload_f32(&base, "o").unwrap(),
        };
        let bb = g.upload_f32(&b, "b").unwrap();
        let part = g.alloc((splits.max(1) * m * n * 4) as u64, "part").unwrap();
        let mut mm = MatMul::new(&xb, &wbuf, wt, &ob, m, n, k);
        mm.xt = xt;
        mm.ot = ot;
        mm.scale = sbuf.as_ref();
        mm.bias = Some((&bb, 0));
        mm.accumulate = true;
        mm.part = Some(&part);
        mm.force = Some((kind, splits));
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let got = match ot {
            WType::F16 => {
                let words = g.read(&ob, 0, (m * n).div_ceil(2)).unwrap();
                let h: &[half::f16] = bytemuck::cast_slice(&words);
                h[..m * n].iter().map(|v| v.to_f32()).collect()
            }
            _ => g.read(&ob, 0, m * n).unwrap(),
        };
        // float16 output (and the f16 residual it adds to) rounds to 11 bits.
        let tol = if ot == WType::F16 {
            2e-3
        } else {
            2e-5 * (k as f32).sqrt()
        };
        assert_close(
            &got,
            &want,
            tol,
            &format!("gemm {kind:?} {m}x{n}x{k} x {xt:?} w {wt:?} out {ot:?} splits {splits}"),
        );
    }

    /// The matrix-core kernel with f16 activations and f16 / int8 weights.
    pub(crate) fn run_coop(m: usize, n: usize, k: usize) {
        run(m, n, k, WType::F16, WType::F16, WType::F32, Kernel::Coop, 1);
        run(m, n, k, WType::F16, WType::I8, WType::F16, Kernel::Coop, 1);
    }

    /// The generated matrix-core tiling `cfg`, f16 activations with f16 and
    /// int8 weights.
    pub(crate) fn run_tiled(cfg: &coop_tiled::TileCfg, m: usize, n: usize, k: usize) {
        let kind = Kernel::CoopTiled(*cfg);
        run(m, n, k, WType::F16, WType::F16, WType::F32, kind, 1);
        run(m, n, k, WType::F16, WType::I8, WType::F16, kind, 1);
    }

    #[test]
    fn tile8_matches_cpu() {
        run(
            130,
            200,
            36,
            WType::F32,
            WType::F32,
            WType::F32,
            Kernel::Tile8,
            1,
        );
        run(
            257,
            129,
            388,
            WType::F32,
            WType::F16,
            WType::F32,
            Kernel::Tile8,
            1,
        );
        run(
            70,
            64,
            132,
            WType::F32,
            WType::I8,
            WType::F32,
            Kernel::Tile8,
            1,
        );
    }

    #[test]
    fn tile8_f16_activations_match_cpu() {
        run(
            150,
            70,
            260,
            WType::F16,
            WType::F16,
            WType::F16,
            Kernel::Tile8,
            1,
        );
        run(
            129,
            131,
            68,
            WType::F16,
            WType::I8,
            WType::F32,
            Kernel::Tile8,
            1,
        );
    }

    #[test]
    fn skinny_rows_9_to_64_with_and_without_split_match_cpu() {
        for (m, splits) in [(9, 1), (24, 3), (40, 4), (64, 2)] {
            run(
                m,
                197,
                516,
                WType::F32,
                WType::F32,
                WType::F32,
                Kernel::Skinny,
                splits,
            );
        }
        run(
            40,
            131,
            384,
            WType::F32,
            WType::F16,
            WType::F32,
            Kernel::Skinny,
            5,
        );
        run(
            17,
            65,
            260,
            WType::F32,
            WType::I8,
            WType::F32,
            Kernel::Skinny,
            2,
        );
        run(
            33,
            90,
            128,
            WType::F16,
            WType::F16,
            WType::F16,
            Kernel::Skinny,
            2,
        );
    }
}
