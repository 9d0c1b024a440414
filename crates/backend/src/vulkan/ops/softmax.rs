//! Row softmax in place (`softmax.wgsl`): the encoder's attention
//! probabilities between its two attention matmuls.

use super::{check_range, kernel, traffic, u};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("softmax.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    off: u32,
    stride: u32,
}

/// Softmax of `rows` rows of length `n`, `stride` apart from element `off`.
pub fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    x: &Buf,
    off: usize,
    rows: usize,
    n: usize,
    stride: usize,
) -> Result<(), BackendError> {
    if rows == 0 {
        return Ok(());
    }
    if n == 0 || stride < n {
        return Err(BackendError::Shape(format!(
            "softmax: rows of {n} with stride {stride}"
        )));
    }
    check_range("softmax", off + (rows - 1) * stride, n, 4, x.bytes)?;
    let p = Params {
        rows: u("rows", rows)?,
        n: u("width", n)?,
        off: u("offset", off)?,
        stride: u("stride", stride)?,
    };
    let k = kernel(
        gpu,
        "softmax",
        "f32",
        || SRC.to_string(),
        "main",
        &[Access::Write],
    )?;
    rec.dispatch(&k, &[x], bytemuck::bytes_of(&p), Gpu::grid(rows, 1));
    traffic(2 * rows * n * 4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    #[test]
    fn matches_cpu() {
        let Some(g) = gpu() else { return };
        let (rows, n) = (9, 1501);
        let x: Vec<f32> = rand_vec(rows * n, 21).iter().map(|v| v * 20.0).collect();
        let mut want = x.clone();
        want.chunks_mut(n).for_each(crate::cpu::ops::softmax);
        let xb = g.upload_f32(&x, "x").unwrap();
        let mut rec = g.recorder();
        super::record(&g, &mut rec, &xb, 0, rows, n, n).unwrap();
        g.submit(rec).unwrap();
        assert_close(&g.read(&xb, 0, rows * n).unwrap(), &want, 1e-6, "softmax");
    }
}
