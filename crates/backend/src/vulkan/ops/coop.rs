//! The many-row matmul on matrix cores (`coop.wgsl`): KHR cooperative
//! matrices (wgpu's `EXPERIMENTAL_COOPERATIVE_MATRIX`), f16 × f16 → f32
//! 16×16, used where the adapter reports that configuration
//! ([`crate::vulkan::gpu::Gpu::coop16`]) and both operands are 16-bit or
//! int8 (the float16 compute modes: rounding them to f16 loses nothing).
//! float32 compute never takes this path, so it stays token-identical with
//! the CPU backend. Software Vulkan (lavapipe) has no cooperative matrices:
//! there the SIMT kernels run and the test below skips with a message.

use super::gemm::{access, dedupe_enable, with_common, Gemm};
use super::{acts, kernel, u, with_wtype, WType, GELU_WGSL};
use crate::vulkan::gpu::{Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("coop.wgsl");
/// Workgroup memory the kernel needs (f16 slices of x and W, f32 tile).
const SHARED_BYTES: u64 = 2 * 2048 * 2 + 4096 * 4;

/// Whether products with these operand types run on matrix cores here.
pub fn usable(gpu: &Gpu, xt: WType, wt: WType) -> bool {
    gpu.coop16 && xt == WType::F16 && wt != WType::F32 && gpu.max_workgroup_bytes() >= SHARED_BYTES
}

/// The module source for these types.
pub fn source(xt: WType, wt: WType, ot: WType) -> String {
    dedupe_enable(&format!(
        "{}{GELU_WGSL}",
        acts(&with_wtype(&with_common(SRC), wt), xt, ot)
    ))
}

/// Record `g` on matrix cores.
pub(crate) fn record(gpu: &Gpu, rec: &mut Recorder, g: &Gemm<'_>) -> Result<(), BackendError> {
    if !usable(gpu, g.xt, g.wt) {
        return Err(BackendError::Unsupported(format!(
            "{} has no f16 cooperative matrices for {} x {} operands",
            gpu.desc.name,
            g.xt.name(),
            g.wt.name()
        )));
    }
    let (xt, wt, ot) = (g.xt, g.wt, g.ot);
    let kern = kernel(
        gpu,
        "coop",
        &format!("{}{}{}", xt.name(), wt.name(), ot.name()),
        || source(xt, wt, ot),
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
            u("columns", (p.n as usize).div_ceil(64))?,
            u("rows", (p.m as usize).div_ceil(64))?,
            1,
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shader is valid WGSL for naga with the cooperative-matrix,
    /// subgroup and f16 capabilities, and translates to SPIR-V: checked
    /// here on every machine, since no software adapter can run it.
    #[test]
    fn shader_validates_and_translates_to_spirv() {
        for (xt, wt, ot) in [
            (WType::F16, WType::F16, WType::F16),
            (WType::F16, WType::I8, WType::F32),
        ] {
            crate::vulkan::ops::testutil::assert_valid_spirv(
                &source(xt, wt, ot),
                &format!("coop {xt:?} {wt:?} {ot:?}"),
            );
        }
    }

    /// On an adapter with f16 cooperative matrices: the product against the
    /// float64 reference. Skipped (with a message) elsewhere — lavapipe
    /// reports none.
    #[test]
    fn matches_cpu_where_the_adapter_has_cooperative_matrices() {
        let Some(g) = crate::vulkan::ops::testutil::gpu() else {
            return;
        };
        if !g.coop16 {
            eprintln!(
                "skipping the cooperative-matrix matmul: {} reports no f16 16x16 cooperative matrices",
                g.desc.name
            );
            return;
        }
        crate::vulkan::ops::gemm::tests::run_coop(150, 130, 264);
    }
}
