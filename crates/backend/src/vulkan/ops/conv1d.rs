//! The encoder's Conv1D (kernel 3, padding 1, stride 1 or 2; spec §4.4) as
//! im2col (`conv1d.wgsl`) followed by a matmul with the bias and GELU fused.
//! The columns are float16 in the float16 compute mode, so the matmul is a
//! float16-activation product like the encoder's others (on matrix cores
//! where the adapter has them; float32 columns kept it on the SIMT tiles:
//! 13 ms of large-v3's encoder window on an H200).

use super::matmul::MatMul;
use super::{acts, check_range, kernel, traffic, u, WType};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("conv1d.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    t_in: u32,
    c_in: u32,
    t_out: u32,
    stride: u32,
    channel_major: u32,
    x_off: u32,
    pad: [u32; 2],
}

/// Output frames of a kernel-3, padding-1 convolution.
pub fn out_frames(t_in: usize, stride: usize) -> usize {
    (t_in + 2 - 3) / stride + 1
}

/// A Conv1D layer: input `x` from `x_off`, `[c_in, t_in]` when
/// `channel_major` (the mel) else `[t_in, c_in]`; output `[t_out, c_out]`
/// = GELU(conv + bias). `cols` is scratch of `t_out · c_in · 3` values.
pub struct Conv<'a> {
    /// Input.
    pub x: &'a Buf,
    /// First input element.
    pub x_off: usize,
    /// Input frames.
    pub t_in: usize,
    /// Input channels.
    pub c_in: usize,
    /// The mel's `[channels, frames]` layout.
    pub channel_major: bool,
    /// 1 or 2.
    pub stride: usize,
    /// Weight `[c_out, c_in · 3]`.
    pub w: &'a Buf,
    /// Its element type.
    pub wtype: WType,
    /// Bias `[c_out]`.
    pub bias: &'a Buf,
    /// Output channels.
    pub c_out: usize,
    /// The columns' type: `F32`, or `F16` (float16 activations; taken
    /// where `c_in · 3` is a multiple of 4, as the float16 matmuls need).
    pub ct: WType,
}

impl Conv<'_> {
    /// The columns' type that runs: `ct` where the float16 matmuls take it
    /// (`c_in · 3` a multiple of 4), else `F32`.
    pub fn column_type(&self) -> WType {
        if self.ct == WType::F16 && (self.c_in * 3).is_multiple_of(4) {
            WType::F16
        } else {
            WType::F32
        }
    }

    /// Record im2col and the matmul; returns the output frames.
    pub fn record(
        &self,
        gpu: &Gpu,
        rec: &mut Recorder,
        cols: &Buf,
        out: &Buf,
    ) -> Result<usize, BackendError> {
        if self.stride == 0 || self.t_in == 0 {
            return Err(BackendError::Shape(
                "conv1d: empty input or stride 0".into(),
            ));
        }
        let t_out = out_frames(self.t_in, self.stride);
        let kk = self.c_in * 3;
        let ct = self.column_type();
        check_range(
            "conv1d input",
            self.x_off,
            self.t_in * self.c_in,
            4,
            self.x.bytes,
        )?;
        check_range("conv1d columns", 0, t_out * kk, ct.size(), cols.bytes)?;
        let p = Params {
            t_in: u("frames", self.t_in)?,
            c_in: u("channels", self.c_in)?,
            t_out: u("frames", t_out)?,
            stride: u("stride", self.stride)?,
            channel_major: u32::from(self.channel_major),
            x_off: u("offset", self.x_off)?,
            pad: [0; 2],
        };
        let k = kernel(
            gpu,
            "conv1d",
            ct.name(),
            || acts(SRC, WType::F32, ct),
            "main",
            &[Access::Read, Access::Write],
        )?;
        rec.dispatch(
            &k,
            &[self.x, cols],
            bytemuck::bytes_of(&p),
            Gpu::grid(t_out * kk, 256),
        );
        traffic(self.t_in * self.c_in * 4 + t_out * kk * ct.size());
        let mut mm = MatMul::new(cols, self.w, self.wtype, out, t_out, self.c_out, kk);
        mm.xt = ct;
        mm.bias = Some((self.bias, 0));
        mm.gelu = true;
        mm.record(gpu, rec)?;
        Ok(t_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec, upload_weight};

    /// Direct convolution (not im2col) as the reference.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        t_in: usize,
        c_in: usize,
        cm: bool,
        stride: usize,
        w: &[f32],
        b: &[f32],
        c_out: usize,
    ) -> Vec<f32> {
        let t_out = out_frames(t_in, stride);
        let mut out = vec![0f32; t_out * c_out];
        for t in 0..t_out {
            for o in 0..c_out {
                let mut s = b[o];
                for i in 0..c_in {
                    for j in 0..3 {
                        let src = (t * stride + j) as isize - 1;
                        if src < 0 || src as usize >= t_in {
                            continue;
                        }
                        let v = if cm {
                            x[i * t_in + src as usize]
                        } else {
                            x[src as usize * c_in + i]
                        };
                        s += v * w[o * c_in * 3 + i * 3 + j];
                    }
                }
                out[t * c_out + o] = s;
            }
        }
        crate::cpu::ops::gelu(&mut out);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn run(t_in: usize, c_in: usize, cm: bool, stride: usize, c_out: usize, wt: WType, ct: WType) {
        let Some(g) = gpu() else { return };
        if (wt == WType::F16 || ct == WType::F16) && !g.f16 {
            return;
        }
        let x = rand_vec(t_in * c_in, 51);
        let (wb, w) = upload_weight(&g, &rand_vec(c_out * c_in * 3, 52), wt);
        let b = rand_vec(c_out, 53);
        let want = naive(&x, t_in, c_in, cm, stride, &w, &b, c_out);
        let xb = g.upload_f32(&x, "x").unwrap();
        let bb = g.upload_f32(&b, "b").unwrap();
        let t_out = out_frames(t_in, stride);
        let cols = g.alloc((t_out * c_in * 3 * 4) as u64, "cols").unwrap();
        let ob = g.alloc((t_out * c_out * 4) as u64, "o").unwrap();
        let conv = Conv {
            x: &xb,
            x_off: 0,
            t_in,
            c_in,
            channel_major: cm,
            stride,
            w: &wb,
            wtype: wt,
            bias: &bb,
            c_out,
            ct,
        };
        let mut rec = g.recorder();
        assert_eq!(conv.record(&g, &mut rec, &cols, &ob).unwrap(), t_out);
        g.submit(rec).unwrap();
        // float16 columns round each input to f16 (relative 2^-11) before
        // the f32-accumulated products.
        let tol = if conv.column_type() == WType::F16 {
            2e-3
        } else {
            1e-4
        };
        assert_close(
            &g.read(&ob, 0, t_out * c_out).unwrap(),
            &want,
            tol,
            &format!("conv1d {t_in}x{c_in} stride {stride} {wt:?} columns {ct:?}"),
        );
    }

    #[test]
    fn both_encoder_convs_match_direct_convolution() {
        run(37, 11, true, 1, 19, WType::F32, WType::F32);
        run(37, 19, false, 2, 23, WType::F32, WType::F32);
        run(36, 19, false, 2, 5, WType::F16, WType::F32);
    }

    #[test]
    fn float16_columns_match_direct_convolution() {
        // c_in · 3 a multiple of 4 (Whisper's 80/128 mels and widths):
        // float16 columns and a float16-activation matmul.
        run(40, 20, true, 1, 24, WType::F16, WType::F16);
        run(41, 16, false, 2, 36, WType::F16, WType::F16);
        // Otherwise float32 columns, whatever was asked.
        run(37, 11, true, 1, 19, WType::F16, WType::F16);
    }
}
