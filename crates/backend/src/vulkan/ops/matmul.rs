//! Matrix multiply: `out = alpha · x · Wᵀ + bias`, optionally followed by
//! GELU and/or accumulated into `out` (the residual add), batched over `z`
//! with per-operand strides (attention heads).
//!
//! A plain Linear of up to [`gemv::MAX_ROWS`] rows goes to the few-row
//! kernel ([`gemv`]), which streams the weight once; aligned products of
//! more rows to [`gemm`] (small-M split-K, 128×128 SIMT tiles or matrix
//! cores); the rest — attention's batched and transposed products,
//! unaligned shapes — to the register-blocked 64×64 tiles here
//! (`matmul.wgsl`).
//! Weights are read as float32, float16 or int8 ([`WType`]); accumulation
//! is float32, which is what CTranslate2 computes for
//! `compute_type=float32` (spec §2.6).

use super::gemm::{self, Gemm};
use super::gemv::{self, Gemv};
use super::{check_range, kernel, traffic, u, with_wtype, WType, GELU_WGSL};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("matmul.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    ldx: u32,
    ldw: u32,
    ldo: u32,
    x_off: u32,
    w_off: u32,
    o_off: u32,
    b_off: u32,
    flags: u32,
    alpha: f32,
    bx: u32,
    bw: u32,
    bo: u32,
    pad: u32,
}

/// One (batched) matrix multiply; build with [`MatMul::new`] and adjust fields.
pub struct MatMul<'a> {
    /// Left operand `[m, k]`, rows `ldx` apart, from element `x_off`.
    pub x: &'a Buf,
    /// Row stride of `x`.
    pub ldx: usize,
    /// First element of `x`.
    pub x_off: usize,
    /// Weight `[n, k]` (or `[k, n]` with `w_kn`), rows `ldw` apart.
    pub w: &'a Buf,
    /// Element type of `w`.
    pub wtype: WType,
    /// Row stride of `w`.
    pub ldw: usize,
    /// First element of `w`.
    pub w_off: usize,
    /// `w` is `[k, n]` (not transposed).
    pub w_kn: bool,
    /// int8 row scales (`w = q / scale`), required for [`WType::I8`].
    pub scale: Option<&'a Buf>,
    /// Bias `[n]` and its first element.
    pub bias: Option<(&'a Buf, usize)>,
    /// Output `[m, n]`, rows `ldo` apart.
    pub out: &'a Buf,
    /// Row stride of `out`.
    pub ldo: usize,
    /// First element of `out`.
    pub o_off: usize,
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Scale of the product (before the bias).
    pub alpha: f32,
    /// Apply GELU after the bias.
    pub gelu: bool,
    /// `out += result` instead of `out = result`.
    pub accumulate: bool,
    /// Batch count and per-batch element strides of x, w and out.
    pub batch: (usize, usize, usize, usize),
    /// Element type of `x` (f16: activations of the float16 mode; only the
    /// [`gemm`] kernels read it).
    pub xt: WType,
    /// Element type of `out` (likewise).
    pub ot: WType,
    /// Scratch for split-K partials of a small-M product
    /// ([`gemm::partials_len`] floats); without it nothing is split.
    pub part: Option<&'a Buf>,
    /// Force a [`gemm`] kernel and split count (tests, the device check).
    pub force: Option<(gemm::Kernel, usize)>,
}

impl<'a> MatMul<'a> {
    /// A Linear layer: `out[m, n] = x[m, k] · w[n, k]ᵀ`, contiguous rows.
    pub fn new(
        x: &'a Buf,
        w: &'a Buf,
        wtype: WType,
        out: &'a Buf,
        m: usize,
        n: usize,
        k: usize,
    ) -> Self {
        Self {
            x,
            ldx: k,
            x_off: 0,
            w,
            wtype,
            ldw: k,
            w_off: 0,
            w_kn: false,
            scale: None,
            bias: None,
            out,
            ldo: n,
            o_off: 0,
            m,
            n,
            k,
            alpha: 1.0,
            gelu: false,
            accumulate: false,
            batch: (1, 0, 0, 0),
            xt: WType::F32,
            ot: WType::F32,
            part: None,
            force: None,
        }
    }

    /// Whether the [`gemm`] kernels take this product: one batch of a
    /// Linear weight, `k`, strides and offsets multiples of 4.
    fn gemm_fits(&self) -> bool {
        self.batch.0 == 1
            && !self.w_kn
            && [self.k, self.ldx, self.ldw, self.x_off, self.w_off]
                .iter()
                .all(|v| v.is_multiple_of(4))
    }

    /// Record the dispatch.
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        let (nb, bx, bw, bo) = self.batch;
        if self.m == 0 || self.n == 0 || nb == 0 {
            return Ok(());
        }
        let f32_io = self.xt == WType::F32 && self.ot == WType::F32;
        if nb == 1
            && !self.w_kn
            && self.alpha == 1.0
            && self.ldw == self.k
            && f32_io
            && self.force.is_none()
            && gemv::fits(gpu, self.m, self.k, self.w_off)
        {
            let mut g = Gemv::new(self.x, self.w, self.wtype, self.out, self.m, self.n, self.k);
            g.ldx = self.ldx;
            g.x_off = self.x_off;
            g.w_off = self.w_off;
            g.scale = self.scale;
            g.bias = self.bias;
            g.gelu = self.gelu;
            g.accumulate = self.accumulate;
            g.ldo = self.ldo;
            g.o_off = self.o_off;
            return g.record(gpu, rec);
        }
        if (self.wtype == WType::I8) != self.scale.is_some() || (self.w_kn && self.scale.is_some())
        {
            return Err(BackendError::Shape(
                "matmul: int8 weights need their row scales (and only they)".into(),
            ));
        }
        if self.k == 0 || self.ldx < self.k || self.ldo < self.n {
            return Err(BackendError::Shape(format!(
                "matmul: k {} with row strides x {} / out {} for n {}",
                self.k, self.ldx, self.ldo, self.n
            )));
        }
        let last = nb - 1;
        check_range(
            "matmul x",
            self.x_off + last * bx + (self.m - 1) * self.ldx,
            self.k,
            self.xt.size(),
            self.x.bytes,
        )?;
        let (w_rows, w_cols) = if self.w_kn {
            (self.k, self.n)
        } else {
            (self.n, self.k)
        };
        if self.ldw < w_cols {
            return Err(BackendError::Shape(format!(
                "matmul: weight row stride {} below its {} columns",
                self.ldw, w_cols
            )));
        }
        check_range(
            "matmul weight",
            self.w_off + last * bw + (w_rows - 1) * self.ldw,
            w_cols,
            self.wtype.size(),
            self.w.bytes,
        )?;
        check_range(
            "matmul out",
            self.o_off + last * bo + (self.m - 1) * self.ldo,
            self.n,
            self.ot.size(),
            self.out.bytes,
        )?;
        if let Some((b, off)) = self.bias {
            check_range("matmul bias", off, self.n, 4, b.bytes)?;
        }
        if let Some(s) = self.scale {
            check_range("matmul scales", 0, self.n, 4, s.bytes)?;
        }
        let to_gemm =
            self.gemm_fits() && (self.force.is_some() || !f32_io || gemm::preferred(gpu, self.m));
        if !to_gemm && !f32_io {
            return Err(BackendError::Shape(
                "matmul: float16 activations need an aligned Linear product".into(),
            ));
        }
        let flags = u32::from(self.bias.is_some())
            | (u32::from(self.gelu) << 1)
            | (u32::from(self.accumulate) << 2)
            | (u32::from(self.w_kn) << 3)
            | (u32::from(self.scale.is_some()) << 4);
        let p = Params {
            m: u("rows", self.m)?,
            n: u("columns", self.n)?,
            k: u("inner size", self.k)?,
            ldx: u("stride", self.ldx)?,
            ldw: u("stride", self.ldw)?,
            ldo: u("stride", self.ldo)?,
            x_off: u("offset", self.x_off)?,
            w_off: u("offset", self.w_off)?,
            o_off: u("offset", self.o_off)?,
            b_off: u("offset", self.bias.map_or(0, |b| b.1))?,
            flags,
            alpha: self.alpha,
            bx: u("stride", bx)?,
            bw: u("stride", bw)?,
            bo: u("stride", bo)?,
            pad: 0,
        };
        if to_gemm {
            return Gemm {
                x: self.x,
                xt: self.xt,
                w: self.w,
                wt: self.wtype,
                scale: self.scale,
                bias: self.bias.map(|b| b.0),
                out: self.out,
                ot: self.ot,
                part: self.part,
                p: gemm::Params {
                    m: p.m,
                    n: p.n,
                    k: p.k,
                    ldx: p.ldx,
                    ldw: p.ldw,
                    ldo: p.ldo,
                    x_off: p.x_off,
                    w_off: p.w_off,
                    o_off: p.o_off,
                    b_off: p.b_off,
                    flags: p.flags,
                    alpha: p.alpha,
                    ksplit: 0,
                    splits: 1,
                    p0: 0,
                    p1: 0,
                },
                force: self.force.map(|f| f.0),
                force_splits: self.force.map(|f| f.1),
            }
            .record(gpu, rec);
        }
        let wt = self.wtype;
        let k = kernel(
            gpu,
            "matmul",
            wt.name(),
            || format!("{}{GELU_WGSL}", with_wtype(SRC, wt)),
            "tiled",
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Write,
            ],
        )?;
        let bias = self.bias.map_or(self.x, |b| b.0);
        let scale = self.scale.unwrap_or(self.x);
        let groups = [
            u("columns", self.n.div_ceil(64))?,
            u("rows", self.m.div_ceil(64))?,
            u("batch", nb)?,
        ];
        rec.dispatch(
            &k,
            &[self.x, self.w, bias, scale, self.out],
            bytemuck::bytes_of(&p),
            groups,
        );
        let out_bytes = self.m * self.n * 4 * (1 + usize::from(self.accumulate));
        traffic(nb * (self.m * self.k * 4 + self.n * self.k * self.wtype.size() + out_bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec, upload_weight};

    fn reference(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
        k: usize,
        gelu: bool,
    ) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        crate::cpu::matmul::linear(
            x,
            m,
            k,
            k,
            vkw_model::WeightView::F32(w),
            n,
            Some(b),
            &mut out,
        );
        if gelu {
            crate::cpu::ops::gelu(&mut out);
        }
        out
    }

    fn run(m: usize, n: usize, k: usize, wt: WType, gelu: bool, acc: bool) {
        let Some(g) = gpu() else { return };
        if wt == WType::F16 && !g.f16 {
            eprintln!("skipping f16 matmul: adapter has no SHADER_F16");
            return;
        }
        let x = rand_vec(m * k, 1);
        let (wbuf, w) = upload_weight(&g, &rand_vec(n * k, 2), wt);
        let b = rand_vec(n, 3);
        let base = rand_vec(m * n, 4);
        let mut want = reference(&x, &w, &b, m, n, k, gelu);
        if acc {
            want.iter_mut().zip(&base).for_each(|(a, b)| *a += b);
        }
        let xb = g.upload_f32(&x, "x").unwrap();
        let bb = g.upload_f32(&b, "b").unwrap();
        let ob = g.upload_f32(&base, "o").unwrap();
        let mut mm = MatMul::new(&xb, &wbuf, wt, &ob, m, n, k);
        mm.bias = Some((&bb, 0));
        mm.gelu = gelu;
        mm.accumulate = acc;
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&ob, 0, m * n).unwrap();
        assert_close(
            &got,
            &want,
            2e-5 * (k as f32).sqrt(),
            &format!("matmul {m}x{n}x{k} {wt:?}"),
        );
    }

    #[test]
    fn tiled_and_gemv_match_cpu_f32() {
        run(67, 45, 33, WType::F32, false, false);
        run(130, 70, 129, WType::F32, true, true);
        run(5, 301, 97, WType::F32, false, true);
        run(1, 17, 384, WType::F32, true, false);
    }

    #[test]
    fn tiled_and_gemv_match_cpu_f16_weights() {
        run(67, 45, 33, WType::F16, true, false);
        run(3, 129, 65, WType::F16, false, true);
        run(4, 129, 64, WType::F16, false, true);
    }

    #[test]
    fn tiled_int8_weights_match_dequantised() {
        let Some(g) = gpu() else { return };
        let (m, n, k) = (70, 33, 36);
        let x = rand_vec(m * k, 7);
        let q: Vec<i8> = (0..n * k)
            .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
            .collect();
        let sc: Vec<f32> = (0..n).map(|i| 50.0 + i as f32).collect();
        let w: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 / sc[i / k])
            .collect();
        let want = reference(&x, &w, &vec![0.0; n], m, n, k, false);
        let xb = g.upload_f32(&x, "x").unwrap();
        let qb = g.upload(bytemuck::cast_slice(&q), "q").unwrap();
        let sb = g.upload_f32(&sc, "s").unwrap();
        let ob = g.alloc((m * n * 4) as u64, "o").unwrap();
        let mut mm = MatMul::new(&xb, &qb, WType::I8, &ob, m, n, k);
        mm.scale = Some(&sb);
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        assert_close(&g.read(&ob, 0, m * n).unwrap(), &want, 1e-4, "int8 tiled");
    }

    #[test]
    fn batched_kn_matches_naive() {
        let Some(g) = gpu() else { return };
        // Two heads of P·V: x [2][m, k], W [2][k, n] (not transposed).
        let (m, n, k) = (21, 13, 37);
        let x = rand_vec(2 * m * k, 5);
        let w = rand_vec(2 * k * n, 6);
        let xb = g.upload_f32(&x, "x").unwrap();
        let wb = g.upload_f32(&w, "w").unwrap();
        let ob = g.alloc((2 * m * n * 4) as u64, "o").unwrap();
        let mut mm = MatMul::new(&xb, &wb, WType::F32, &ob, m, n, k);
        mm.w_kn = true;
        mm.ldw = n;
        mm.alpha = 0.5;
        mm.batch = (2, m * k, k * n, m * n);
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&ob, 0, 2 * m * n).unwrap();
        let mut want = vec![0f32; 2 * m * n];
        for z in 0..2 {
            for i in 0..m {
                for j in 0..n {
                    let s: f32 = (0..k)
                        .map(|t| x[z * m * k + i * k + t] * w[z * k * n + t * n + j])
                        .sum();
                    want[z * m * n + i * n + j] = 0.5 * s;
                }
            }
        }
        assert_close(&got, &want, 1e-5, "batched kn");
    }

    #[test]
    fn out_of_range_is_a_shape_error() {
        let Some(g) = gpu() else { return };
        let a = g.alloc(16, "a").unwrap();
        let mm = MatMul::new(&a, &a, WType::F32, &a, 4, 4, 4);
        let mut rec = g.recorder();
        assert!(matches!(
            mm.record(&g, &mut rec),
            Err(BackendError::Shape(_))
        ));
    }
}
