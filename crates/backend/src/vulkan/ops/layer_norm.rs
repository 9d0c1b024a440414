//! LayerNorm over rows (spec §4.4), `layer_norm.wgsl`.

use super::{acts, check_range, kernel, traffic, u, WType};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("layer_norm.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    d: u32,
    in_off: u32,
    in_stride: u32,
    out_off: u32,
    out_stride: u32,
    g_off: u32,
    b_off: u32,
    eps: f32,
    pad: [u32; 3],
}

/// `out[r] = LN(x[in_off + r·in_stride ..][..d])`, written contiguously
/// from `out_off`. `gb` holds γ then β (`2·d` values).
#[allow(clippy::too_many_arguments)]
pub fn record(
    gpu: &Gpu,
    rec: &mut Recorder,
    x: &Buf,
    in_off: usize,
    in_stride: usize,
    rows: usize,
    d: usize,
    gb: (&Buf, usize),
    eps: f32,
    out: &Buf,
    out_off: usize,
) -> Result<(), BackendError> {
    record_to(
        gpu,
        rec,
        x,
        in_off,
        in_stride,
        rows,
        d,
        gb,
        eps,
        (out, out_off, WType::F32),
    )
}

/// [`record`] into `out` (buffer, first element, element type: f32 or f16).
#[allow(clippy::too_many_arguments)]
pub fn record_to(
    gpu: &Gpu,
    rec: &mut Recorder,
    x: &Buf,
    in_off: usize,
    in_stride: usize,
    rows: usize,
    d: usize,
    gb: (&Buf, usize),
    eps: f32,
    (out, out_off, ot): (&Buf, usize, WType),
) -> Result<(), BackendError> {
    if rows == 0 {
        return Ok(());
    }
    if d == 0 || in_stride < d {
        return Err(BackendError::Shape(format!(
            "layer norm: width {d} with row stride {in_stride}"
        )));
    }
    check_range(
        "layer norm input",
        in_off + (rows - 1) * in_stride,
        d,
        4,
        x.bytes,
    )?;
    check_range("layer norm output", out_off, rows * d, ot.size(), out.bytes)?;
    check_range("layer norm parameters", gb.1, 2 * d, 4, gb.0.bytes)?;
    let p = Params {
        rows: u("rows", rows)?,
        d: u("width", d)?,
        in_off: u("offset", in_off)?,
        in_stride: u("stride", in_stride)?,
        out_off: u("offset", out_off)?,
        out_stride: u("width", d)?,
        g_off: u("offset", gb.1)?,
        b_off: u("offset", gb.1 + d)?,
        eps,
        pad: [0; 3],
    };
    let k = kernel(
        gpu,
        "layer_norm",
        ot.name(),
        || acts(SRC, WType::F32, ot),
        "main",
        &[Access::Read, Access::Read, Access::Read, Access::Write],
    )?;
    rec.dispatch(
        &k,
        &[x, gb.0, gb.0, out],
        bytemuck::bytes_of(&p),
        Gpu::grid(rows, 1),
    );
    traffic(rows * d * (4 + ot.size()) + 2 * d * 4);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec};

    #[test]
    fn matches_cpu_on_strided_rows() {
        let Some(g) = gpu() else { return };
        let (rows, d, stride) = (7, 389, 401);
        let mut x = rand_vec(rows * stride, 11);
        x.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = *v * 3.0 + (i % 5) as f32);
        let gamma = rand_vec(d, 12);
        let beta = rand_vec(d, 13);
        let mut gb = gamma.clone();
        gb.extend_from_slice(&beta);
        let xs: Vec<f32> = (0..rows)
            .flat_map(|r| x[r * stride..r * stride + d].to_vec())
            .collect();
        let mut want = vec![0f32; rows * d];
        crate::cpu::ops::layer_norm(&xs, d, &gamma, &beta, 1e-5, &mut want);
        let xb = g.upload_f32(&x, "x").unwrap();
        let gbb = g.upload_f32(&gb, "gb").unwrap();
        let ob = g.alloc((rows * d * 4) as u64, "o").unwrap();
        let mut rec = g.recorder();
        super::record(
            &g,
            &mut rec,
            &xb,
            0,
            stride,
            rows,
            d,
            (&gbb, 0),
            1e-5,
            &ob,
            0,
        )
        .unwrap();
        g.submit(rec).unwrap();
        assert_close(
            &g.read(&ob, 0, rows * d).unwrap(),
            &want,
            2e-5,
            "layer norm",
        );
        // float16 output (the encoder's float16 activations).
        if !g.f16 {
            eprintln!("skipping f16 layer norm: adapter has no SHADER_F16");
            return;
        }
        let oh = g.alloc((rows * d * 2) as u64, "oh").unwrap();
        let mut rec = g.recorder();
        super::record_to(
            &g,
            &mut rec,
            &xb,
            0,
            stride,
            rows,
            d,
            (&gbb, 0),
            1e-5,
            (&oh, 0, super::WType::F16),
        )
        .unwrap();
        g.submit(rec).unwrap();
        let words = g.read(&oh, 0, (rows * d).div_ceil(2)).unwrap();
        let h: &[half::f16] = bytemuck::cast_slice(&words);
        let got: Vec<f32> = h[..rows * d].iter().map(|v| v.to_f32()).collect();
        let want16: Vec<f32> = want
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect();
        assert_close(&got, &want16, 2e-3, "layer norm, f16 output");
    }
}
