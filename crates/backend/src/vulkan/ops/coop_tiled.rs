//! Matrix-core matmul with generated tiles (`coop_tiled.wgsl`): the
//! candidate successor of [`super::coop`], whose 64×64 tiles reached about
//! 20 TFLOP/s on an H200 where PyTorch reaches 650 (docs/BENCHMARKS.md).
//! What it changes is in the shader's header; the tile shape, the
//! fragments per subgroup, double buffering and row padding are a
//! [`TileCfg`], so one device session can time several and keep the best.
//!
//! It runs only when chosen: by the device check's sweep
//! (`examples/devcheck.rs`, every configuration against the float64
//! reference first), by tests, or with `VKW_COOP_TILES=<cfg>` (read when
//! the device opens, see [`TileCfg::parse`]). Without it the many-row
//! products stay on `coop.wgsl`, the kernel measured so far. A
//! configuration needs an adapter whose subgroups have one fixed size
//! (NVIDIA's 32; AMD and Intel report a range and keep `coop.wgsl`): the
//! blocks are assigned by subgroup index, so the number of subgroups in a
//! workgroup must be known when the source is generated.

use super::gemm::{access, dedupe_enable, with_common, Gemm};
use super::{acts, kernel, u, with_wtype, WType, GELU_WGSL};
use crate::vulkan::gpu::{Gpu, Recorder};
use crate::BackendError;
use std::fmt::Write as _;

const SRC: &str = include_str!("coop_tiled.wgsl");
/// Depth of a staged slice (two 16-deep multiply steps).
const BK: u32 = 32;

/// One tiling of the matrix-core matmul.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileCfg {
    /// Workgroup tile rows (of x / the output).
    pub bm: u32,
    /// Workgroup tile columns (of W / the output).
    pub bn: u32,
    /// 16×16 fragments per subgroup along the rows.
    pub wmf: u32,
    /// 16×16 fragments per subgroup along the columns.
    pub wnf: u32,
    /// Two shared buffers: the next slice loads while this one multiplies.
    pub double: bool,
    /// Pad shared rows by 8 halves (16 bytes) against bank conflicts.
    pub pad: bool,
    /// The adapter's (fixed) subgroup size.
    pub sg: u32,
}

impl TileCfg {
    /// The configurations the device check times, largest tiles first.
    pub fn sweep(sg: u32) -> Vec<Self> {
        let c = |bm, bn, wmf, wnf, double, pad| Self {
            bm,
            bn,
            wmf,
            wnf,
            double,
            pad,
            sg,
        };
        vec![
            c(128, 128, 4, 2, true, true),
            c(128, 128, 4, 2, true, false),
            c(128, 128, 4, 2, false, true),
            c(128, 128, 2, 4, true, true),
            c(128, 128, 2, 2, false, true),
            c(128, 64, 2, 2, true, true),
            c(64, 128, 2, 2, true, true),
            c(64, 64, 2, 2, true, true),
            c(64, 64, 2, 2, false, false),
        ]
        .into_iter()
        .filter(|c| c.check().is_ok())
        .collect()
    }

    /// `BMxBN/WMFxWNF[/db][/pad]`, e.g. `128x128/4x2/db/pad`, for an
    /// adapter with subgroups of `sg`.
    pub fn parse(s: &str, sg: u32) -> Result<Self, String> {
        let bad = || {
            format!("tile configuration {s:?}: expected BMxBN/WMFxWNF[/db][/pad], e.g. 128x128/4x2/db/pad")
        };
        let mut parts = s.trim().split('/');
        let pair = |p: Option<&str>| -> Result<(u32, u32), String> {
            let (a, b) = p.and_then(|p| p.split_once('x')).ok_or_else(bad)?;
            Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        };
        let (bm, bn) = pair(parts.next())?;
        let (wmf, wnf) = pair(parts.next())?;
        let (mut double, mut pad) = (false, false);
        for p in parts {
            match p {
                "db" => double = true,
                "pad" => pad = true,
                _ => return Err(bad()),
            }
        }
        let cfg = Self {
            bm,
            bn,
            wmf,
            wnf,
            double,
            pad,
            sg,
        };
        cfg.check().map(|_| cfg)
    }

    /// The name [`Self::parse`] reads back.
    pub fn name(&self) -> String {
        format!(
            "{}x{}/{}x{}{}{}",
            self.bm,
            self.bn,
            self.wmf,
            self.wnf,
            if self.double { "/db" } else { "" },
            if self.pad { "/pad" } else { "" }
        )
    }

    fn sa(&self) -> u32 {
        BK + if self.pad { 8 } else { 0 }
    }

    fn nbuf(&self) -> u32 {
        1 + u32::from(self.double)
    }

    /// Subgroups per workgroup along the columns, and in all.
    fn grid(&self) -> (u32, u32) {
        let sgn = self.bn / (16 * self.wnf.max(1));
        (sgn, (self.bm / (16 * self.wmf.max(1))) * sgn)
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        self.grid().1 * self.sg
    }

    /// Workgroup memory in bytes.
    pub fn shared_bytes(&self) -> u64 {
        let (_, nsg) = self.grid();
        u64::from(self.nbuf() * (self.bm + self.bn) * self.sa()) * 2 + u64::from(nsg) * 256 * 4
    }

    /// Whether the shape is self-consistent (blocks tile the workgroup tile,
    /// every invocation stages the same number of 4-vectors).
    fn check(&self) -> Result<(), String> {
        let err = |why: &str| Err(format!("tile configuration {}: {why}", self.name()));
        if self.wmf == 0 || self.wnf == 0 || self.sg == 0 {
            return err("zero fragments or subgroup size");
        }
        if !self.bm.is_multiple_of(16 * self.wmf) || !self.bn.is_multiple_of(16 * self.wnf) {
            return err("the subgroup blocks do not tile the workgroup tile");
        }
        let wg = self.invocations();
        if wg == 0 || wg > 1024 {
            return err("not 1 to 1024 invocations per workgroup");
        }
        if !(self.bm * BK / 4).is_multiple_of(wg) || !(self.bn * BK / 4).is_multiple_of(wg) {
            return err("the slices do not split evenly over the invocations");
        }
        Ok(())
    }

    /// Whether this configuration can run on `gpu`.
    pub fn fits(&self, gpu: &Gpu) -> bool {
        gpu.coop16
            && gpu.subgroup_size == Some(self.sg)
            && self.check().is_ok()
            && self.shared_bytes() <= gpu.max_workgroup_bytes()
            && self.invocations() <= gpu.max_workgroup_invocations()
    }

    /// The module source for these operand types.
    pub fn source(&self, xt: WType, wt: WType, ot: WType) -> String {
        let (sgn, nsg) = self.grid();
        let wg = self.invocations();
        let (lx, lw) = (self.bm * BK / 4 / wg, self.bn * BK / 4 / wg);
        let mut consts = String::new();
        for (name, v) in [
            ("BM", self.bm),
            ("BN", self.bn),
            ("BK", BK),
            ("SA", self.sa()),
            ("NBUF", self.nbuf()),
            ("WG", wg),
            ("NSG", nsg),
            ("SGN", sgn),
            ("WMF", self.wmf),
            ("WNF", self.wnf),
        ] {
            let _ = writeln!(consts, "const {name}: u32 = {v}u;");
        }
        let frags = || (0..self.wmf).flat_map(|i| (0..self.wnf).map(move |j| (i, j)));
        let mut acc = String::new();
        for (i, j) in frags() {
            let _ = writeln!(
                acc,
                "    var acc_{i}_{j} = coopLoadT<coop_mat16x16<f32, C>>(&cs[sg * 256u], 16u);"
            );
        }
        // Each invocation stages `lx` 4-vectors of x and `lw` of W per slice,
        // in registers xr*/wr*: loaded with ldx/ldw, stored with sta/stb.
        let staged = [("xr", lx, "ldx(row0", "sta"), ("wr", lw, "ldw(col0", "stb")];
        let per_reg = |line: &dyn Fn(&str, u32, &str, &str) -> String| {
            let mut s = String::new();
            for (reg, n, ld, st) in staged {
                for i in 0..n {
                    s.push_str(&line(&format!("{reg}{i}"), i, ld, st));
                }
            }
            s
        };
        let regs = per_reg(&|r, _, _, _| format!("    var {r} = vec4<f32>(0.0);\n"));
        let load = |k0: &str, ind: &str| {
            per_reg(&|r, i, ld, _| format!("{ind}{r} = {ld}, t + {i}u * WG, {k0});\n"))
        };
        let store = |buf: &str, ind: &str| {
            per_reg(&|r, i, _, st| format!("{ind}{st}({buf}, t + {i}u * WG, {r});\n"))
        };
        let compute = |buf: &str| {
            let mut s = String::new();
            for kk in (0..BK).step_by(16) {
                for i in 0..self.wmf {
                    let _ = writeln!(
                        s,
                        "        let a{i}k{kk} = coopLoadT<coop_mat16x16<f16, A>>(&as_[{buf} * BM * SA + (ar + {}u) * SA + {kk}u], SA);",
                        16 * i
                    );
                }
                for j in 0..self.wnf {
                    let _ = writeln!(
                        s,
                        "        let b{j}k{kk} = coopLoad<coop_mat16x16<f16, B>>(&bs_[{buf} * BN * SA + (bc + {}u) * SA + {kk}u], SA);",
                        16 * j
                    );
                }
                for (i, j) in frags() {
                    let _ = writeln!(
                        s,
                        "        acc_{i}_{j} = coopMultiplyAdd(a{i}k{kk}, b{j}k{kk}, acc_{i}_{j});"
                    );
                }
            }
            s
        };
        let (prologue, body) = if self.double {
            (
                format!(
                    "{}{}    workgroupBarrier();\n",
                    load("0u", "    "),
                    store("0u", "    ")
                ),
                format!(
                    "        let cur = (k0 / BK) & 1u;\n        let more = k0 + BK < p.k;\n        if (more) {{\n{}        }}\n{}        if (more) {{\n{}        }}\n        workgroupBarrier();\n",
                    load("k0 + BK", "            "),
                    compute("cur"),
                    store("1u - cur", "            ")
                ),
            )
        } else {
            (
                String::new(),
                format!(
                    "{}{}        workgroupBarrier();\n{}        workgroupBarrier();\n",
                    load("k0", "        "),
                    store("0u", "        "),
                    compute("0u")
                ),
            )
        };
        let mut out = String::new();
        for (i, j) in frags() {
            let _ = write!(
                out,
                "    coopStoreT(acc_{i}_{j}, &cs[sg * 256u], 16u);
    workgroupBarrier();
    for (var e = lane; e < 256u; e = e + sgsize) {{
        let r = row0 + ar + {}u + e / 16u;
        let c = col0 + bc + {}u + e % 16u;
        if (r < p.m && c < p.n) {{ epilogue(r, c, cs[sg * 256u + e]); }}
    }}
    workgroupBarrier();
",
                16 * i,
                16 * j
            );
        }
        let src = SRC
            .replace("//@CONSTS\n", &consts)
            .replace("//@ACC\n", &acc)
            .replace("//@REGS\n", &regs)
            .replace("//@PROLOGUE\n", &prologue)
            .replace("//@BODY\n", &body)
            .replace("//@STORE\n", &out);
        dedupe_enable(&format!(
            "{}{GELU_WGSL}",
            acts(&with_wtype(&with_common(&src), wt), xt, ot)
        ))
    }
}

/// Whether products with these operand types can run `cfg` on `gpu`.
pub fn usable(gpu: &Gpu, cfg: &TileCfg, xt: WType, wt: WType) -> bool {
    cfg.fits(gpu) && xt == WType::F16 && wt != WType::F32
}

/// Record `g` with tiling `cfg`.
pub(crate) fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    g: &Gemm<'_>,
    cfg: &TileCfg,
) -> Result<(), BackendError> {
    if !usable(gpu, cfg, g.xt, g.wt) {
        return Err(BackendError::Unsupported(format!(
            "{}: no matrix-core tiling {} for {} x {} operands (subgroup size {:?})",
            gpu.desc.name,
            cfg.name(),
            g.xt.name(),
            g.wt.name(),
            gpu.subgroup_size
        )));
    }
    let (xt, wt, ot) = (g.xt, g.wt, g.ot);
    let kern = kernel(
        gpu,
        "coop_tiled",
        &format!("{}{}{}/{}", xt.name(), wt.name(), ot.name(), cfg.name()),
        || cfg.source(xt, wt, ot),
        "main",
        &access(),
    )?;
    let mut p = g.p;
    p.splits = 1;
    let bias = g.bias.unwrap_or(g.x);
    let scale = g.scale.unwrap_or(g.x);
    rec.dispatch(
        &kern,
        &[g.x, g.w, bias, scale, g.out, g.out],
        bytemuck::bytes_of(&p),
        [
            u("columns", (p.n as usize).div_ceil(cfg.bn as usize))?,
            u("rows", (p.m as usize).div_ceil(cfg.bm as usize))?,
            1,
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_bad_shapes_are_refused() {
        for c in TileCfg::sweep(32) {
            assert_eq!(TileCfg::parse(&c.name(), 32), Ok(c));
            assert!(c.shared_bytes() <= 48 * 1024, "{}", c.name());
        }
        assert!(TileCfg::sweep(32).len() >= 6);
        for bad in [
            "128x128",
            "128x128/3x2",
            "96x128/4x2",
            "128x128/4x2/fast",
            "ax1/1x1",
        ] {
            assert!(TileCfg::parse(bad, 32).is_err(), "{bad}");
        }
    }

    /// Every swept configuration (and subgroup sizes 32 and 64) is valid
    /// WGSL for naga with the cooperative-matrix, subgroup and f16
    /// capabilities, and translates to SPIR-V: checked on every machine,
    /// since no software adapter runs it.
    #[test]
    fn every_swept_shader_validates_and_translates_to_spirv() {
        for sg in [32, 64] {
            for cfg in TileCfg::sweep(sg) {
                for (xt, wt, ot) in [
                    (WType::F16, WType::F16, WType::F16),
                    (WType::F16, WType::I8, WType::F32),
                ] {
                    crate::vulkan::ops::testutil::assert_valid_spirv(
                        &cfg.source(xt, wt, ot),
                        &format!("{} (subgroup {sg}) {xt:?} {wt:?} {ot:?}", cfg.name()),
                    );
                }
            }
        }
    }

    /// On an adapter with f16 cooperative matrices and a fixed subgroup
    /// size: every swept configuration against the float64 reference, at
    /// a shape with partial tiles on both axes. Skipped (with a message)
    /// elsewhere — lavapipe reports no cooperative matrices.
    #[test]
    fn every_swept_tiling_matches_cpu_where_the_adapter_has_cooperative_matrices() {
        let Some(g) = crate::vulkan::ops::testutil::gpu() else {
            return;
        };
        let Some(sg) = g.subgroup_size.filter(|_| g.coop16) else {
            eprintln!(
                "skipping the tiled cooperative-matrix matmul: {} reports no f16 16x16 cooperative matrices with a fixed subgroup size",
                g.desc.name
            );
            return;
        };
        for cfg in TileCfg::sweep(sg).into_iter().filter(|c| c.fits(&g)) {
            crate::vulkan::ops::gemm::tests::run_tiled(&cfg, 150, 200, 264);
        }
    }
}
