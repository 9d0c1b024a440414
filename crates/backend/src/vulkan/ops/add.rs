//! Residual / bias / position add (`add.wgsl`): `x += y`, with `y`
//! repeating every `period` elements. Linear layers fuse their bias and
//! residual into the matmul epilogue; this op adds the encoder's positions.

use super::{check_range, kernel, traffic, u};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("add.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    x_off: u32,
    y_off: u32,
    period: u32,
}

/// `x[x_off + i] += y[y_off + i % period]` for `i < n`.
#[allow(clippy::too_many_arguments)]
pub fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    x: &Buf,
    x_off: usize,
    y: &Buf,
    y_off: usize,
    n: usize,
    period: usize,
) -> Result<(), BackendError> {
    if period == 0 {
        return Err(BackendError::Shape("add: period 0".into()));
    }
    check_range("add target", x_off, n, 4, x.bytes)?;
    check_range("add source", y_off, period.min(n), 4, y.bytes)?;
    let p = Params {
        n: u("length", n)?,
        x_off: u("offset", x_off)?,
        y_off: u("offset", y_off)?,
        period: u("period", period)?,
    };
    let k = kernel(
        gpu,
        "add",
        "f32",
        || SRC.to_string(),
        "main",
        &[Access::Read, Access::Write],
    )?;
    rec.dispatch(&k, &[y, x], bytemuck::bytes_of(&p), Gpu::grid(n, 256));
    traffic(2 * n * 4 + period.min(n) * 4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::vulkan::ops::testutil::{gpu, rand_vec};

    #[test]
    fn residual_and_broadcast_match_cpu() {
        let Some(g) = gpu() else { return };
        let (rows, d) = (13, 77);
        let x = rand_vec(rows * d, 41);
        let y = rand_vec(rows * d, 42);
        let b = rand_vec(d, 43);
        let mut want = x.clone();
        crate::cpu::ops::add_assign(&mut want, &y);
        for row in want.chunks_mut(d) {
            crate::cpu::ops::add_assign(row, &b);
        }
        let xb = g.upload_f32(&x, "x").unwrap();
        let yb = g.upload_f32(&y, "y").unwrap();
        let bb = g.upload_f32(&b, "b").unwrap();
        let mut rec = g.recorder();
        super::record(&g, &mut rec, &xb, 0, &yb, 0, rows * d, rows * d).unwrap();
        super::record(&g, &mut rec, &xb, 0, &bb, 0, rows * d, d).unwrap();
        g.submit(rec).unwrap();
        // Element-wise float adds in the same order: bit-identical.
        assert_eq!(g.read(&xb, 0, rows * d).unwrap(), want);
    }
}
