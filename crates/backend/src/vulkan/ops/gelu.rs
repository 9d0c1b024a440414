//! Exact (erf) GELU in place (`gelu.wgsl`). The model's GELUs are fused into
//! the matmul epilogue (same `gelu_erf`); this standalone op applies it to
//! any buffer range, and its test pins the function against the CPU's.

use super::{check_range, kernel, u, GELU_WGSL};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("gelu.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    off: u32,
    pad: [u32; 2],
}

/// `x[off .. off + n] = GELU(x[off .. off + n])`.
pub fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    x: &Buf,
    off: usize,
    n: usize,
) -> Result<(), BackendError> {
    check_range("gelu", off, n, 4, x.bytes)?;
    let p = Params {
        n: u("length", n)?,
        off: u("offset", off)?,
        pad: [0; 2],
    };
    let k = kernel(
        gpu,
        "gelu",
        "f32",
        || format!("{SRC}{GELU_WGSL}"),
        "main",
        &[Access::Write],
    )?;
    rec.dispatch(&k, &[x], bytemuck::bytes_of(&p), Gpu::grid(n, 256));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    #[test]
    fn matches_cpu_erf_gelu() {
        let Some(g) = gpu() else { return };
        let n = 70_001;
        let x: Vec<f32> = rand_vec(n, 31).iter().map(|v| v * 8.0).collect();
        let mut want = x.clone();
        crate::cpu::ops::gelu(&mut want);
        let xb = g.upload_f32(&x, "x").unwrap();
        let mut rec = g.recorder();
        super::record(&g, &mut rec, &xb, 0, n).unwrap();
        g.submit(rec).unwrap();
        // Both use the same erf formula; only exp's last bits differ.
        assert_close(&g.read(&xb, 0, n).unwrap(), &want, 1e-6, "gelu");
        // And it is the erf form, not the tanh approximation: at x = -3 the
        // two differ by ~4e-4.
        let v = g.upload_f32(&[-3.0, 1.0], "v").unwrap();
        let mut rec = g.recorder();
        super::record(&g, &mut rec, &v, 0, 2).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&v, 0, 2).unwrap();
        assert!((got[0] + 0.004_049_73).abs() < 1e-6, "{}", got[0]);
        assert!((got[1] - 0.841_344_7).abs() < 1e-6, "{}", got[1]);
    }
}
