//! One file per op beside its WGSL shader: each holds the op's params
//! struct (laid out as the shader's uniform), its shape checks, its
//! dispatch and its tests against the CPU reference.

pub mod add;
pub mod attn;
pub mod conv1d;
pub mod coop;
pub mod coop_tiled;
pub mod embed;
pub mod flash;
pub mod gelu;
pub mod gemm;
pub mod gemv;
pub mod kv_cache;
pub mod layer_norm;
pub mod logits;
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
    /// int8, four to a 32-bit word (little-endian), with one float32
    /// scale per output row: `w = q / scale` (CTranslate2's scheme, spec
    /// §2.6). Rows must be a multiple of 4 values long.
    I8,
}

impl WType {
    /// Cache variant name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::I8 => "i8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::I8 => 1,
        }
    }
}

/// Shader source with the weight type substituted: `WTYPE` becomes `f32`
/// or `f16` (with WGSL's `enable f16;` directive first), and the shader's
/// `WEIGHTS(n)` line becomes the declaration of `w` at binding `n` (an
/// array of 4-element vectors, or of words of 4 int8 values) with
/// `wl(i) -> f32` (element `i`) and `wl4(i) -> vec4<f32>` (elements
/// `4i .. 4i+4`, which must not cross a row), for every type including
/// int8 (unscaled `q`: the caller applies the row's scale).
pub fn with_wtype(src: &str, w: WType) -> String {
    let (ty, decl) = match w {
        WType::F32 => (
            "f32",
            "var<storage, read> w: array<vec4<f32>>;
fn wl(i: u32) -> f32 { return w[i >> 2u][i & 3u]; }
fn wl4(i: u32) -> vec4<f32> { return w[i]; }",
        ),
        WType::F16 => (
            "f16",
            "var<storage, read> w: array<vec4<f16>>;
fn wl(i: u32) -> f32 { return f32(w[i >> 2u][i & 3u]); }
fn wl4(i: u32) -> vec4<f32> { return vec4<f32>(w[i]); }",
        ),
        WType::I8 => (
            "u32",
            "var<storage, read> w: array<u32>;
fn wl(i: u32) -> f32 { return f32(extractBits(bitcast<i32>(w[i >> 2u]), (i & 3u) * 8u, 8u)); }
fn wl4(i: u32) -> vec4<f32> {
    let q = bitcast<i32>(w[i]);
    return vec4<f32>(f32(extractBits(q, 0u, 8u)), f32(extractBits(q, 8u, 8u)), f32(extractBits(q, 16u, 8u)), f32(extractBits(q, 24u, 8u)));
}",
        ),
    };
    let mut out = String::new();
    if w == WType::F16 {
        out.push_str("enable f16;\n");
    }
    for line in src.lines() {
        match line
            .trim()
            .strip_prefix("WEIGHTS(")
            .and_then(|r| r.strip_suffix(")"))
        {
            Some(b) => {
                out.push_str(&format!("@group(0) @binding({b}) {decl}\n"));
            }
            None => {
                out.push_str(&line.replace("WTYPE", ty));
                out.push('\n');
            }
        }
    }
    out
}

/// Shader source with the activation types substituted: `XTYPE` (input)
/// and `OTYPE` (output) become `f32` or `f16` (float16 activations in the
/// float16 compute mode), with WGSL's `enable f16;` first when needed.
pub fn acts(src: &str, x: WType, o: WType) -> String {
    let ty = |t: WType| if t == WType::F16 { "f16" } else { "f32" };
    let body = src.replace("XTYPE", ty(x)).replace("OTYPE", ty(o));
    if x == WType::F16 || o == WType::F16 {
        format!("enable f16;\n{body}")
    } else {
        body
    }
}

/// `gelu_erf(x)`: the erf form of GELU (spec §4.4). WGSL has no erf; this
/// is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under
/// float32's resolution near 1), the same formula as `vkw_math`.
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

/// Count `bytes` of device-memory traffic for the kernel being recorded:
/// what it must at least read and write, each operand once (the counters'
/// `traffic`; caches make re-reads cheaper, so this is the floor).
pub(crate) fn traffic(bytes: usize) {
    crate::vulkan::stats::count(|t| t.traffic += bytes as u64);
}

/// A value as u32 for a params struct, or a shape error.
pub fn u(what: &str, v: usize) -> Result<u32, BackendError> {
    u32::try_from(v).map_err(|_| BackendError::Shape(format!("{what} {v} is too large")))
}
