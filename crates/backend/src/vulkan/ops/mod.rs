//! One file per op beside its WGSL shader: each holds the op's params
//! struct (laid out as the shader's uniform), its shape checks, its
//! dispatch and its tests against the CPU reference.

pub mod add;
pub mod conv1d;
pub mod embed;
pub mod gelu;
pub mod kv_cache;
pub mod layer_norm;
pub mod matmul;
pub mod sdpa;
pub mod softmax;

#[cfg(test)]
pub(crate) mod testutil;

use super::gpu::{Access, Gpu, Kernel};
use crate::BackendError;
use std::sync::Arc;

/// Element type of a weight buffer as the shaders read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WType {
    /// float32.
    F32,
    /// float16 (needs the adapter's `SHADER_F16`).
    F16,
}

impl WType {
    /// Cache variant name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// Shader source with the weight type substituted: `WTYPE` becomes `f32`
/// or `f16` (with WGSL's `enable f16;` directive first).
pub fn with_wtype(src: &str, w: WType) -> String {
    match w {
        WType::F32 => src.replace("WTYPE", "f32"),
        WType::F16 => format!("enable f16;\n{}", src.replace("WTYPE", "f16")),
    }
}

/// `gelu_erf(x)`: the erf form of GELU (spec §4.4). WGSL has no erf; this
/// is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under
/// float32's resolution near 1), the same formula as the CPU's `vmath`.
pub const GELU_WGSL: &str = "
fn gelu_erf(x: f32) -> f32 {
    let z = x * 0.70710678118654752;
    let az = abs(z);
    let t = 1.0 / (1.0 + 0.3275911 * az);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let e = 1.0 - poly * exp(-az * az);
    return 0.5 * x * (1.0 + select(e, -e, z < 0.0));
}
";

/// Workgroups along x before a grid wraps to y, as WGSL text.
pub fn grid_consts(src: &str) -> String {
    src.replace("GRID_X", &format!("{}u", super::gpu::GRID_X))
}

/// A kernel of `op` from `src`, cached.
pub fn kernel(
    gpu: &Gpu,
    op: &'static str,
    variant: &str,
    src: impl FnOnce() -> String,
    entry: &str,
    access: &[Access],
) -> Result<Arc<Kernel>, BackendError> {
    gpu.kernel(op, variant, || grid_consts(&src()), entry, access)
}

/// Check that element range `off .. off + len` lies within a buffer of `bytes`.
pub fn check_range(
    what: &str,
    off: usize,
    len: usize,
    elem: usize,
    bytes: u64,
) -> Result<(), BackendError> {
    if ((off + len) * elem) as u64 > bytes {
        return Err(BackendError::Shape(format!(
            "{what}: elements {off}..{} exceed its buffer of {} bytes",
            off + len,
            bytes
        )));
    }
    Ok(())
}

/// A value as u32 for a params struct, or a shape error.
pub fn u(what: &str, v: usize) -> Result<u32, BackendError> {
    u32::try_from(v).map_err(|_| BackendError::Shape(format!("{what} {v} is too large")))
}
