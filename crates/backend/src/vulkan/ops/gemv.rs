//! The few-row matmul of decoder steps (`gemv.wgsl`): up to [`MAX_ROWS`]
//! rows against a weight read once as 4-vectors (f32, f16 or int8 with
//! per-row scales), optionally with the LayerNorm before it fused into the
//! input staging and the self-attention cache append fused into the store,
//! so a decoder layer needs no separate norm or append dispatch.

use super::{check_range, kernel, traffic, u, with_wtype, WType, GELU_WGSL};
use crate::vulkan::gpu::{Access, Buf, Gpu, Recorder};
use crate::BackendError;

const SRC: &str = include_str!("gemv.wgsl");
/// Most rows one dispatch takes (beams × windows of a step).
pub const MAX_ROWS: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    k: u32,
    ldx: u32,
    ldo: u32,
    x_off: u32,
    o_off: u32,
    b_off: u32,
    flags: u32,
    eps: f32,
    kv_d: u32,
    kv_cap: u32,
    kv_base: u32,
    kv_t: u32,
    kv_vo: u32,
    g_off: u32,
    w_off4: u32,
}

/// Where the fused QKV projection appends K and V: `cache` is one layer's
/// `[2][slots][cap][d]`; row `r` is sequence `r / t` at position
/// `base + r % t`, stored in slot `first + r / t`.
#[derive(Clone, Copy)]
pub struct KvAppend<'a> {
    /// The layer's cache.
    pub cache: &'a Buf,
    /// Positions per slot.
    pub cap: usize,
    /// Slots.
    pub slots: usize,
    /// Model width (the K columns are `d..2d`, V `2d..3d`).
    pub d: usize,
    /// First position written.
    pub base: usize,
    /// Positions per sequence in this call.
    pub t: usize,
    /// Slot of the first row's sequence (a chunk of a larger call's rows).
    pub first: usize,
}

/// `out[m, n] (+)= epi(norm(x)[m, k] · w[n, k]ᵀ)`.
pub struct Gemv<'a> {
    /// Input rows `ldx` apart from `x_off`.
    pub x: &'a Buf,
    /// Row stride of `x`.
    pub ldx: usize,
    /// First element of `x`.
    pub x_off: usize,
    /// Weight `[n, k]`, contiguous rows.
    pub w: &'a Buf,
    /// Its type.
    pub wtype: WType,
    /// First element of `w` (a multiple of 4).
    pub w_off: usize,
    /// int8 row scales (`w = q / scale`), required for [`WType::I8`].
    pub scale: Option<&'a Buf>,
    /// Bias and its first element.
    pub bias: Option<(&'a Buf, usize)>,
    /// LayerNorm γ then β (`2k` values from the element given) and ε,
    /// applied to each row of `x` first.
    pub norm: Option<(&'a Buf, usize, f32)>,
    /// GELU after the bias.
    pub gelu: bool,
    /// `out += result`.
    pub accumulate: bool,
    /// Also append the K/V columns to a cache.
    pub kv: Option<KvAppend<'a>>,
    /// Output, rows `ldo` apart from `o_off`.
    pub out: &'a Buf,
    /// Row stride of `out`.
    pub ldo: usize,
    /// First element of `out`.
    pub o_off: usize,
    /// Rows.
    pub m: usize,
    /// Output columns.
    pub n: usize,
    /// Inner size (a multiple of 4).
    pub k: usize,
    /// Kernel, or by adapter (`None`: the one the device was opened with
    /// in `VKW_GEMV` (`direct`, `wide`), else per column on software Vulkan
    /// and `Staged` on GPUs; see `gemv.wgsl`).
    pub kernel: Option<GemvKernel>,
}

/// The entry points of `gemv.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemvKernel {
    /// `main`: a team of 32 lanes per column, inputs staged in workgroup
    /// memory a chunk at a time (what GPUs have run so far).
    Staged,
    /// `direct`: a team per column, inputs read where they lie, no barrier
    /// in the loop (a candidate for GPUs, timed by the device check).
    Direct,
    /// `wide`: a team of [`wide_lanes`] lanes per column, each lane's ~8
    /// weight loads issued at once (a candidate for GPUs, timed by the
    /// device check).
    Wide,
    /// `percol`: one column per invocation (software Vulkan).
    PerColumn,
}

/// Lanes per column of the `wide` kernel for inner size `k`: the power of
/// two, 32 to 256, that gives each lane at most ~8 weight 4-vectors (k =
/// 1280: 64 lanes of 5; k = 5120: 256 lanes of 5).
pub fn wide_lanes(k: usize) -> usize {
    (k / 4).div_ceil(8).next_power_of_two().clamp(32, 256)
}

/// Whether `m` rows of inner size `k` from weight element `w_off` can use
/// this kernel on `gpu` (its workgroup memory holds `m` staged rows).
pub fn fits(gpu: &Gpu, m: usize, k: usize, w_off: usize) -> bool {
    (1..=MAX_ROWS).contains(&m)
        && k.is_multiple_of(4)
        && w_off.is_multiple_of(4)
        && (m * 1024 + 8 * m) as u64 <= gpu.max_workgroup_bytes()
}

impl<'a> Gemv<'a> {
    /// A Linear layer on `m` contiguous rows.
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
            w_off: 0,
            scale: None,
            bias: None,
            norm: None,
            gelu: false,
            accumulate: false,
            kv: None,
            out,
            ldo: n,
            o_off: 0,
            m,
            n,
            k,
            kernel: None,
        }
    }

    /// Record the dispatch.
    pub fn record(&self, gpu: &Gpu, rec: &mut Recorder) -> Result<(), BackendError> {
        if self.m == 0 || self.n == 0 {
            return Ok(());
        }
        if !fits(gpu, self.m, self.k, self.w_off) || self.ldx < self.k || self.ldo < self.n {
            return Err(BackendError::Shape(format!(
                "gemv: {} rows of {} (x stride {}, weight offset {}) into {} columns (stride {})",
                self.m, self.k, self.ldx, self.w_off, self.n, self.ldo
            )));
        }
        check_range(
            "gemv x",
            self.x_off + (self.m - 1) * self.ldx,
            self.k,
            4,
            self.x.bytes,
        )?;
        check_range(
            "gemv weight",
            self.w_off,
            self.n * self.k,
            self.wtype.size(),
            self.w.bytes,
        )?;
        check_range(
            "gemv out",
            self.o_off + (self.m - 1) * self.ldo,
            self.n,
            4,
            self.out.bytes,
        )?;
        if let Some((b, off)) = self.bias {
            check_range("gemv bias", off, self.n, 4, b.bytes)?;
        }
        if let Some((g, off, _)) = self.norm {
            check_range("gemv norm", off, 2 * self.k, 4, g.bytes)?;
        }
        let scale = match (self.wtype, self.scale) {
            (WType::I8, Some(s)) => {
                check_range("gemv scales", 0, self.n, 4, s.bytes)?;
                Some(s)
            }
            (WType::I8, None) => {
                return Err(BackendError::Shape(
                    "gemv: int8 weight without scales".into(),
                ))
            }
            _ => None,
        };
        let mut p = Params {
            n: u("columns", self.n)?,
            k: u("inner size", self.k)?,
            ldx: u("stride", self.ldx)?,
            ldo: u("stride", self.ldo)?,
            x_off: u("offset", self.x_off)?,
            o_off: u("offset", self.o_off)?,
            b_off: u("offset", self.bias.map_or(0, |b| b.1))?,
            flags: u32::from(self.bias.is_some())
                | (u32::from(self.gelu) << 1)
                | (u32::from(self.accumulate) << 2)
                | (u32::from(self.norm.is_some()) << 3)
                | (u32::from(self.kv.is_some()) << 4)
                | (u32::from(scale.is_some()) << 5),
            eps: self.norm.map_or(0.0, |n| n.2),
            kv_d: 1,
            kv_cap: 0,
            kv_base: 0,
            kv_t: 1,
            kv_vo: 0,
            g_off: u("offset", self.norm.map_or(0, |n| n.1))?,
            w_off4: u("offset", self.w_off / 4)?,
        };
        if let Some(kv) = &self.kv {
            if self.n != 3 * kv.d
                || kv.t == 0
                || !self.m.is_multiple_of(kv.t)
                || kv.first + self.m / kv.t > kv.slots
                || kv.base + kv.t > kv.cap
            {
                return Err(BackendError::Shape(format!(
                    "gemv kv append: {} rows of {} positions at {} into {} slots from {} of {} (width {})",
                    self.m, kv.t, kv.base, kv.slots, kv.first, kv.cap, kv.d
                )));
            }
            check_range(
                "gemv kv cache",
                0,
                2 * kv.slots * kv.cap * kv.d,
                4,
                kv.cache.bytes,
            )?;
            p.kv_d = u("width", kv.d)?;
            p.kv_cap = u("capacity", kv.cap)?;
            // The shader stores row r at `(r / t) · cap + base + r % t`;
            // counting slots from `first` adds `first · cap` to that, which
            // the base carries (the shader never reads it alone).
            p.kv_base = u("position", kv.first * kv.cap + kv.base)?;
            p.kv_t = u("tokens", kv.t)?;
            p.kv_vo = u("offset", kv.slots * kv.cap * kv.d)?;
        }
        let (wt, rows) = (self.wtype, self.m);
        let which = self.kernel.or(gpu.candidates.gemv).unwrap_or(
            if gpu.desc.kind == crate::any::DeviceKind::Cpu {
                GemvKernel::PerColumn
            } else {
                GemvKernel::Staged
            },
        );
        // `wide`'s team width is a constant of its module; the other
        // entries do not read it.
        let lanes = if which == GemvKernel::Wide {
            wide_lanes(self.k)
        } else {
            32
        };
        let (entry, cols) = match which {
            GemvKernel::PerColumn => ("percol", 64),
            GemvKernel::Staged => ("main", 8),
            GemvKernel::Direct => ("direct", 8),
            GemvKernel::Wide => ("wide", 256 / lanes),
        };
        let k = kernel(
            gpu,
            "gemv",
            &format!("{}/rows{rows}/lanes{lanes}", wt.name()),
            || {
                let src = with_wtype(SRC, wt)
                    .replace("GEMV_ROWS", &format!("{rows}u"))
                    .replace("GEMV_WIDE", &format!("{lanes}u"));
                format!("{src}{GELU_WGSL}")
            },
            entry,
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Write,
                Access::Write,
            ],
        )?;
        // Unused bindings get a buffer of the call that the kernel never
        // reads (or, for the cache, writes) then.
        let bias = self.bias.map_or(self.x, |b| b.0);
        let gb = self.norm.map_or(self.x, |n| n.0);
        let scale = scale.unwrap_or(self.x);
        let cache = self.kv.as_ref().map_or(self.out, |kv| kv.cache);
        rec.dispatch(
            &k,
            &[self.x, self.w, bias, gb, scale, self.out, cache],
            bytemuck::bytes_of(&p),
            Gpu::grid(self.n, cols),
        );
        let out = self.m * self.n * 4 * (1 + usize::from(self.accumulate));
        let kv = self.kv.as_ref().map_or(0, |kv| 2 * self.m * kv.d * 4);
        traffic(self.m * self.k * 4 + self.n * self.k * self.wtype.size() + out + kv);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulkan::ops::testutil::{assert_close, gpu, rand_vec, upload_weight};

    /// CPU reference: LN (optional) → x·Wᵀ → bias → GELU, plus `base`
    /// when accumulating.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        gb: Option<&[f32]>,
        m: usize,
        n: usize,
        k: usize,
        gelu: bool,
    ) -> Vec<f32> {
        let xin = match gb {
            Some(gb) => {
                let mut o = vec![0f32; m * k];
                crate::cpu::ops::layer_norm(x, k, &gb[..k], &gb[k..], 1e-5, &mut o);
                o
            }
            None => x.to_vec(),
        };
        let mut out = vec![0f32; m * n];
        crate::cpu::matmul::linear(
            &xin,
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

    /// int8 of `w` per row as CTranslate2 quantises: `q = round(w·s)`,
    /// `s = 127 / max|row|`; returns the packed bytes, scales and `q / s`.
    fn quantise(w: &[f32], n: usize, k: usize) -> (Vec<i8>, Vec<f32>, Vec<f32>) {
        let (mut q, mut s, mut back) = (Vec::new(), Vec::new(), Vec::new());
        for row in w.chunks(k).take(n) {
            let amax = row.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-8);
            let sc = 127.0 / amax;
            s.push(sc);
            for &v in row {
                let qi = (v * sc).round_ties_even().clamp(-127.0, 127.0) as i8;
                q.push(qi);
                back.push(qi as f32 / sc);
            }
        }
        (q, s, back)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(m: usize, n: usize, k: usize, wt: WType, norm: bool, gelu: bool, acc: bool) {
        for kernel in [
            GemvKernel::Staged,
            GemvKernel::Direct,
            GemvKernel::Wide,
            GemvKernel::PerColumn,
        ] {
            run_one(m, n, k, wt, norm, gelu, acc, kernel);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_one(
        m: usize,
        n: usize,
        k: usize,
        wt: WType,
        norm: bool,
        gelu: bool,
        acc: bool,
        kernel: GemvKernel,
    ) {
        let Some(g) = gpu() else { return };
        if wt == WType::F16 && !g.f16 {
            eprintln!("skipping f16 gemv: adapter has no SHADER_F16");
            return;
        }
        let mut x = rand_vec(m * k, 1);
        x.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = *v * 2.0 + (i % 3) as f32);
        let wf = rand_vec(n * k, 2);
        let (wbuf, w, sbuf) = if wt == WType::I8 {
            let (q, s, back) = quantise(&wf, n, k);
            let qb = g.upload(bytemuck::cast_slice(&q), "w").unwrap();
            (qb, back, Some(g.upload_f32(&s, "s").unwrap()))
        } else {
            let (b, w) = upload_weight(&g, &wf, wt);
            (b, w, None)
        };
        let b = rand_vec(n, 3);
        let gbv = rand_vec(2 * k, 5);
        let base = rand_vec(m * n, 4);
        let mut want = reference(&x, &w, &b, norm.then_some(&gbv[..]), m, n, k, gelu);
        if acc {
            want.iter_mut().zip(&base).for_each(|(a, b)| *a += b);
        }
        let xb = g.upload_f32(&x, "x").unwrap();
        let bb = g.upload_f32(&b, "b").unwrap();
        let gbb = g.upload_f32(&gbv, "gb").unwrap();
        let ob = g.upload_f32(&base, "o").unwrap();
        let mut mm = Gemv::new(&xb, &wbuf, wt, &ob, m, n, k);
        mm.bias = Some((&bb, 0));
        mm.scale = sbuf.as_ref();
        mm.norm = norm.then_some((&gbb, 0, 1e-5));
        mm.gelu = gelu;
        mm.accumulate = acc;
        mm.kernel = Some(kernel);
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let got = g.read(&ob, 0, m * n).unwrap();
        assert_close(
            &got,
            &want,
            3e-5 * (k as f32).sqrt(),
            &format!("gemv {m}x{n}x{k} {wt:?} norm {norm} kernel {kernel:?}"),
        );
    }

    #[test]
    fn rows_1_5_8_16_odd_widths_match_cpu() {
        for m in [1, 5, 8, 16] {
            run(m, 37, 388, WType::F32, false, false, false);
            run(m, 301, 68, WType::F32, true, true, false);
        }
        run(3, 1001, 516, WType::F32, true, false, true);
    }

    #[test]
    fn f16_and_int8_weights_match_cpu() {
        for m in [1, 5, 16] {
            run(m, 45, 260, WType::F16, true, false, true);
            run(m, 77, 132, WType::I8, false, true, false);
        }
        run(8, 129, 1028, WType::I8, true, false, true);
    }

    #[test]
    fn wide_teams_cover_long_rows() {
        // k = 8200: 256 lanes per column and a second pass of 8 loads in
        // which only 2 lanes have weights left.
        assert_eq!(wide_lanes(8200), 256);
        run_one(5, 19, 8200, WType::F16, true, false, true, GemvKernel::Wide);
        run_one(3, 11, 8200, WType::I8, false, true, false, GemvKernel::Wide);
    }

    #[test]
    fn wide_lanes_follow_the_inner_size() {
        assert_eq!(wide_lanes(4), 32);
        assert_eq!(wide_lanes(384), 32);
        assert_eq!(wide_lanes(1280), 64);
        assert_eq!(wide_lanes(1536), 64);
        assert_eq!(wide_lanes(5120), 256);
    }

    #[test]
    fn qkv_epilogue_appends_to_the_cache() {
        for kernel in [GemvKernel::Staged, GemvKernel::Direct, GemvKernel::Wide] {
            // One token per sequence from slot 0; from slot 1 (a chunk of a
            // larger call's rows); two tokens per sequence from slot 1.
            for (t, first) in [(1, 0), (1, 1), (2, 1)] {
                qkv_append(kernel, t, first);
            }
        }
    }

    fn qkv_append(kernel: GemvKernel, t: usize, first: usize) {
        let Some(g) = gpu() else { return };
        // 2 sequences × t tokens, d = 8, cache of 3 slots × 4 positions.
        let (d, seqs, cap, slots, base) = (8, 2, 4, 3, 2);
        let (m, n, k) = (seqs * t, 3 * d, 12);
        let x = rand_vec(m * k, 21);
        let wv = rand_vec(n * k, 22);
        let xb = g.upload_f32(&x, "x").unwrap();
        let wb = g.upload_f32(&wv, "w").unwrap();
        let ob = g.alloc((m * n * 4) as u64, "o").unwrap();
        let cb = g.alloc((2 * slots * cap * d * 4) as u64, "c").unwrap();
        let mut mm = Gemv::new(&xb, &wb, WType::F32, &ob, m, n, k);
        mm.kernel = Some(kernel);
        mm.kv = Some(KvAppend {
            cache: &cb,
            cap,
            slots,
            d,
            base,
            t,
            first,
        });
        let mut rec = g.recorder();
        mm.record(&g, &mut rec).unwrap();
        g.submit(rec).unwrap();
        let out = g.read(&ob, 0, m * n).unwrap();
        let cache = g.read(&cb, 0, 2 * slots * cap * d).unwrap();
        let want = reference(&x, &wv, &vec![0.0; n], None, m, n, k, false);
        assert_close(&out, &want, 1e-4, "qkv");
        let mut written = 0;
        for r in 0..m {
            let at = ((first + r / t) * cap + base + r % t) * d;
            for c in 0..d {
                assert_eq!(cache[at + c], out[r * n + d + c], "K row {r}");
                assert_eq!(
                    cache[slots * cap * d + at + c],
                    out[r * n + 2 * d + c],
                    "V row {r}"
                );
            }
            written += 2 * d;
        }
        // Nothing else of the cache was written (it starts zeroed).
        let nonzero = cache.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(nonzero, written, "{kernel:?} t={t} first={first}");
        // A chunk running past the last slot is refused.
        mm.kv.as_mut().unwrap().first = slots - 1;
        assert!(mm.record(&g, &mut g.recorder()).is_err());
    }
}
