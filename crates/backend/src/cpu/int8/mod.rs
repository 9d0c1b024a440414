//! int8 matmul: `y = x · Wᵀ + b` with int8 weights and int8 activations,
//! accumulated in int32, as CTranslate2 computes its int8 Linear layers on
//! the CPU (spec §2.6, "What CT2 does at run time").
//!
//! * Weights are quantised per output row (`scale = 127 / max|row|`,
//!   `q = round_half_even(w · scale)`, spec §2.6), or taken as stored from an
//!   int8 model, and repacked once at load into blocks of 16 output rows with
//!   4 consecutive inputs per row interleaved (`[block][k/4][16][4]`). One
//!   64-byte load is then the 4-input slices of 16 rows, which is exactly
//!   the operand of a `vpdpbusd` against 4 broadcast activation bytes: no
//!   horizontal sums, 16 outputs per instruction.
//! * Activations are quantised per row at run time the same way (CT2 does
//!   this per batch row too), so `y[i, j] = acc[i, j] / (a_scale[i] ·
//!   w_scale[j]) + b[j]`.
//! * `vpdpbusd` multiplies *unsigned* by signed bytes, so the VNNI kernels
//!   feed `q + 128` and subtract `128 · Σ_k q_w[j, k]` (precomputed per row).
//!   The AVX2 kernel instead moves the sign of each weight onto the
//!   activation (`|w| · sign(x, w)`), which keeps `vpmaddubsw` from
//!   saturating and stays exact for a stored −128 weight.
//!
//! * On aarch64 the same layout feeds `sdot` (4 rows per 16-byte vector)
//!   or, without the dot-product extension, widening NEON multiplies; both
//!   take signed activations.
//!
//! Kernels are chosen at run time ([`Isa::best`]): AVX-512 VNNI, AVX-VNNI,
//! AVX2, NEON with dot product, NEON, or a portable fallback. Every kernel computes the same integers,
//! so the result does not depend on the path.

mod arm;
mod x86;

use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::OnceLock;
use vkw_model::WeightView;

/// Output rows per packed block (one 512-bit vector of int32 results).
pub const BLOCK: usize = 16;
/// Rows of `x` one kernel call handles.
pub const MR: usize = 8;

/// An int8 kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 with VNNI (`vpdpbusd` on 512-bit vectors).
    Avx512Vnni,
    /// AVX-VNNI (`vpdpbusd` on 256-bit vectors, VEX-encoded).
    AvxVnni,
    /// AVX2 (`vpmaddubsw` + `vpmaddwd`).
    Avx2,
    /// aarch64 NEON with the dot-product extension (`sdot`, ARMv8.2+:
    /// Apple M-series, Graviton 2+, Cortex-A76+).
    NeonDot,
    /// aarch64 baseline NEON (`smull` + pairwise adds): any 64-bit ARM.
    Neon,
    /// Plain Rust; any CPU.
    Portable,
}

impl Isa {
    /// Every kernel family, fastest first.
    pub const ALL: [Isa; 6] = [
        Isa::Avx512Vnni,
        Isa::AvxVnni,
        Isa::Avx2,
        Isa::NeonDot,
        Isa::Neon,
        Isa::Portable,
    ];

    /// Whether this CPU can run the family.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            // VKW_CPU_ISA=avx2 leaves only the AVX2 kernel on x86-64.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                !vkw_math::avx2_cap()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => {
                !vkw_math::avx2_cap()
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            _ => false,
        }
    }

    /// The name used by `VKW_INT8_KERNEL` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512vnni",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx2 => "avx2",
            Isa::NeonDot => "neondot",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        }
    }

    /// The fastest family this CPU runs, unless `VKW_INT8_KERNEL` names a
    /// supported one (for benchmarking the fallbacks). Detected once.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let forced = std::env::var("VKW_INT8_KERNEL").ok();
            let forced = Isa::ALL
                .into_iter()
                .find(|i| Some(i.name()) == forced.as_deref() && i.supported());
            forced.unwrap_or_else(|| {
                Isa::ALL
                    .into_iter()
                    .find(|i| i.supported())
                    .unwrap_or(Isa::Portable)
            })
        })
    }

    /// Whether the kernels take activations as `q + 128` (unsigned bytes).
    fn offset(self) -> bool {
        matches!(self, Isa::Avx512Vnni | Isa::AvxVnni)
    }
}

/// An int8 weight `[n, k]`, packed for the kernels (see the module docs).
pub struct QMatrix {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// `k` rounded up to a multiple of 4 (padding is zero).
    kp: usize,
    /// `[ceil(n/16)][kp/4][16][4]`; rows past `n` are zero.
    data: Vec<i8>,
    /// Per-row scale (`W ≈ q / scale`), padded with 1.
    scale: Vec<f32>,
    /// `1 / scale`, padded with 1.
    inv_scale: Vec<f32>,
    /// `128 · Σ_k q[j, k]`: what the unsigned-activation kernels add.
    comp: Vec<i32>,
}

/// `round_half_even(v · scale)` clamped to ±127, plus `bias` (0, or 128
/// for the unsigned-activation kernels), as a byte.
///
/// Adding 1.5·2^23 leaves no fraction bits, so the FPU's default rounding
/// (ties to even) rounds, and the low byte of the sum's bit pattern is the
/// two's complement of the rounded value (the sum's bits are
/// `0x4B40_0000 + n` for |n| < 2^22). Unlike `round_ties_even` and an `as`
/// cast, this is branch-free and vectorises without SSE4.1.
#[inline(always)]
fn quantize_into(row: &[f32], scale: f32, bias: u8, q: &mut [u8]) {
    const MAGIC: f32 = 12_582_912.0;
    for (o, &v) in q.iter_mut().zip(row) {
        let t = (v * scale).clamp(-127.0, 127.0) + MAGIC;
        *o = (t.to_bits() as u8).wrapping_add(bias);
    }
}

#[inline(always)]
fn amax(row: &[f32]) -> f32 {
    // Independent lanes so the compiler vectorises the reduction.
    let mut m = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(0f32, |a, &v| a.max(v.abs()));
    for c in chunks {
        for l in 0..16 {
            m[l] = m[l].max(c[l].abs());
        }
    }
    m.iter().fold(tail, |a, &v| a.max(v))
}

/// The per-row scale of the spec's rule (§2.6): `127 / max|row|`, or 1
/// for an all-zero row.
#[inline(always)]
fn row_scale(row: &[f32]) -> f32 {
    let a = amax(row);
    if a == 0.0 {
        1.0
    } else {
        127.0 / a
    }
}

#[inline(always)]
fn quantize_act_row(row: &[f32], bias: u8, q: &mut [u8]) -> f32 {
    let scale = row_scale(row);
    quantize_into(row, scale, bias, q);
    scale
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_act_row_avx2(row: &[f32], bias: u8, q: &mut [u8]) -> f32 {
    quantize_act_row(row, bias, q)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn quantize_act_row_avx512(row: &[f32], bias: u8, q: &mut [u8]) -> f32 {
    quantize_act_row(row, bias, q)
}

/// Quantise one activation row; returns its scale.
fn quantize_act(row: &[f32], bias: u8, q: &mut [u8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if vkw_math::has_avx512() && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU features were checked.
        return unsafe { quantize_act_row_avx512(row, bias, q) };
    }
    #[cfg(target_arch = "x86_64")]
    if vkw_math::has_avx2() {
        // SAFETY: the CPU features were checked.
        return unsafe { quantize_act_row_avx2(row, bias, q) };
    }
    quantize_act_row(row, bias, q)
}

/// Quantise one row by the spec's per-row rule (§2.6) into `q`; returns the
/// scale (`127 / max|row|`, or 1 for an all-zero row).
pub fn quantize_row(row: &[f32], q: &mut [i8]) -> f32 {
    // SAFETY: i8 and u8 have the same layout; the bytes are the two's
    // complement of q (bias 0).
    let qu = unsafe { std::slice::from_raw_parts_mut(q.as_mut_ptr() as *mut u8, q.len()) };
    quantize_act(row, 0, qu)
}

impl QMatrix {
    /// Pack a weight `[n, k]`: float weights are quantised per row (§2.6),
    /// int8 weights are taken as stored with their scales.
    pub fn from_view(w: WeightView<'_>, n: usize, k: usize) -> Self {
        let kp = k.div_ceil(4) * 4;
        let blocks = n.div_ceil(BLOCK);
        let mut data = vec![0i8; blocks * BLOCK * kp];
        let mut scale = vec![1f32; blocks * BLOCK];
        let mut comp = vec![0i32; blocks * BLOCK];
        data.par_chunks_mut(BLOCK * kp)
            .zip(scale.par_chunks_mut(BLOCK))
            .zip(comp.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(b, ((dst, sc), cp))| {
                let mut f = vec![0f32; k];
                let mut q = vec![0i8; k];
                for (r, (s, c)) in sc.iter_mut().zip(cp.iter_mut()).enumerate() {
                    let row = b * BLOCK + r;
                    if row >= n {
                        break;
                    }
                    match w {
                        WeightView::I8 { data, scale } => {
                            q.copy_from_slice(&data[row * k..(row + 1) * k]);
                            *s = scale[row];
                        }
                        _ => {
                            super::matmul::widen_row(w, row, k, &mut f);
                            *s = quantize_row(&f, &mut q);
                        }
                    }
                    *c = 128 * q.iter().map(|&v| i32::from(v)).sum::<i32>();
                    for (c, &v) in q.iter().enumerate() {
                        dst[(c / 4) * BLOCK * 4 + r * 4 + c % 4] = v;
                    }
                }
            });
        let inv_scale = scale.iter().map(|s| 1.0 / s).collect();
        Self {
            n,
            k,
            kp,
            data,
            scale,
            inv_scale,
            comp,
        }
    }

    #[inline(always)]
    fn at(data: &[i8], kp: usize, r: usize, c: usize) -> i8 {
        data[(r / BLOCK) * BLOCK * kp + (c / 4) * BLOCK * 4 + (r % BLOCK) * 4 + c % 4]
    }

    /// Row `r` dequantised (`q / scale`, spec §2.6): the embedding lookup of
    /// a tied embedding/projection matrix.
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        let s = self.scale[r];
        for (c, o) in out[..self.k].iter_mut().enumerate() {
            *o = f32::from(Self::at(&self.data, self.kp, r, c)) / s;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() + 12 * self.scale.len()
    }
}

/// Activations of one call, quantised per row.
#[derive(Default)]
struct QActs {
    /// `[m, kp]` bytes (`q`, or `q + 128` for the VNNI kernels).
    data: Vec<u8>,
    /// `1 / scale` per row.
    inv: Vec<f32>,
}

thread_local! {
    /// Reused per calling thread so decoder steps do not allocate.
    static ACTS: RefCell<QActs> = const { RefCell::new(QActs { data: Vec::new(), inv: Vec::new() }) };
}

fn quantize_acts(
    x: &[f32],
    m: usize,
    k: usize,
    stride: usize,
    kp: usize,
    offset: bool,
    a: &mut QActs,
) {
    a.data.clear();
    a.data.resize(m * kp, if offset { 128 } else { 0 });
    a.inv.clear();
    a.inv.resize(m, 1.0);
    let bias = if offset { 128 } else { 0 };
    let work = |(i, (dst, inv)): (usize, (&mut [u8], &mut f32))| {
        *inv = 1.0 / quantize_act(&x[i * stride..i * stride + k], bias, &mut dst[..k]);
    };
    let it = a.data.chunks_mut(kp).zip(a.inv.iter_mut()).enumerate();
    if m * k >= 1 << 16 {
        a.data
            .par_chunks_mut(kp)
            .zip(a.inv.par_iter_mut())
            .enumerate()
            .for_each(work);
    } else {
        it.for_each(work);
    }
}

/// What is applied to `x · Wᵀ + b` before it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing.
    None,
    /// Exact (erf) GELU (spec §4.4): fuses FC1's bias and activation.
    Gelu,
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint (row, column) tiles of the output.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `out[m, n] = epilogue(x[m, k] · Wᵀ + bias)` with the best kernel.
#[allow(clippy::too_many_arguments)]
pub fn qlinear(
    x: &[f32],
    m: usize,
    k: usize,
    x_stride: usize,
    w: &QMatrix,
    bias: Option<&[f32]>,
    epi: Epilogue,
    out: &mut [f32],
) {
    qlinear_with(Isa::best(), x, m, k, x_stride, w, bias, epi, out)
}

/// [`qlinear`] on a given kernel family (tests force each one).
///
/// # Panics
/// If `isa` is not [`Isa::supported`] or the shapes do not fit.
#[allow(clippy::too_many_arguments)]
pub fn qlinear_with(
    isa: Isa,
    x: &[f32],
    m: usize,
    k: usize,
    x_stride: usize,
    w: &QMatrix,
    bias: Option<&[f32]>,
    epi: Epilogue,
    out: &mut [f32],
) {
    assert!(isa.supported(), "int8 kernel {isa:?} not supported here");
    assert_eq!(k, w.k);
    let n = w.n;
    if m == 0 || n == 0 {
        return;
    }
    assert!(x.len() >= (m - 1) * x_stride + k && out.len() >= m * n);
    assert!(bias.is_none_or(|b| b.len() >= n));
    // The buffer is taken out of the thread-local for the call, not
    // borrowed across it: while this thread waits for the call's parallel
    // tasks, rayon may run another request's job on it (engines share the
    // pool), and that job's `qlinear` would find the buffer borrowed — a
    // `RefCell already borrowed` panic, seen with four live sessions and two
    // file jobs on one int8 server. A nested call gets a fresh buffer.
    let mut a = ACTS.with_borrow_mut(std::mem::take);
    quantize_acts(x, m, k, x_stride, w.kp, isa.offset(), &mut a);
    run(isa, &a, m, n, w, bias, epi, OutPtr(out.as_mut_ptr()));
    ACTS.with_borrow_mut(|slot| {
        if slot.data.capacity() < a.data.capacity() {
            *slot = a;
        }
    });
}

/// Rows and 16-column blocks per task: decoder steps (few rows) split the
/// columns into at least 4 tasks per thread, so the 384-wide projections
/// (24 blocks) still balance over the threads; the encoder tiles rows too so
/// a task's activations stay in L2 while its weight blocks stay in L1.
fn tiling(m: usize, blocks: usize) -> (usize, usize) {
    let threads = rayon::current_num_threads().max(1);
    let cols = (blocks / (4 * threads)).clamp(1, 8);
    if m <= MR {
        (m, cols)
    } else {
        (8 * MR, 8.min(blocks))
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    a: &QActs,
    m: usize,
    n: usize,
    w: &QMatrix,
    bias: Option<&[f32]>,
    epi: Epilogue,
    out: OutPtr,
) {
    let blocks = n.div_ceil(BLOCK);
    let (rows_per, blocks_per) = tiling(m, blocks);
    let (rt, bt) = (m.div_ceil(rows_per), blocks.div_ceil(blocks_per));
    // One tile of rows (decoder steps) reads each weight block once, in
    // order: the kernels prefetch ahead. Many rows reuse a block from cache.
    let stream = m <= MR;
    let task = |t: usize| {
        let (r0, b0) = ((t / bt) * rows_per, (t % bt) * blocks_per);
        let (r1, b1) = ((r0 + rows_per).min(m), (b0 + blocks_per).min(blocks));
        let mut acc = [[0i32; BLOCK]; MR];
        for b in b0..b1 {
            let mut i0 = r0;
            while i0 < r1 {
                let mr = (r1 - i0).min(MR);
                let xp = a.data[i0 * w.kp..].as_ptr();
                let wp = w.data[b * BLOCK * w.kp..].as_ptr();
                // SAFETY: xp points at `mr` rows of `kp` bytes, wp at one
                // packed block of `16 · kp` bytes; `isa` is supported.
                unsafe { kernel(isa, mr, stream, xp, w.kp, wp, w.kp / 4, &mut acc) };
                store(isa, a, w, i0, mr, b, n, bias, epi, &acc, out);
                i0 += mr;
            }
        }
    };
    let tasks = rt * bt;
    if tasks > 1 && rayon::current_num_threads() > 1 && m * n * w.k >= 1 << 16 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// Dequantise, add the bias, apply the epilogue and store one tile, in code
/// compiled for the kernel's ISA (built for the baseline, this per-value
/// loop with its GELU call per row was a third of the kernel's time in the
/// small-shape encoder).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store(
    isa: Isa,
    a: &QActs,
    w: &QMatrix,
    i0: usize,
    mr: usize,
    b: usize,
    n: usize,
    bias: Option<&[f32]>,
    epi: Epilogue,
    acc: &[[i32; BLOCK]; MR],
    out: OutPtr,
) {
    let args = (a, w, i0, mr, b, n, bias, epi, acc, out);
    match isa {
        // SAFETY: `isa` is supported (checked by `qlinear_with`); VNNI on
        // 512-bit vectors implies AVX-512F, every x86 family AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { store_avx512::<true>(args) },
        #[cfg(target_arch = "x86_64")]
        Isa::AvxVnni => unsafe { store_avx2::<true>(args) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { store_avx2::<false>(args) },
        _ if isa.offset() => store_impl::<true>(args),
        _ => store_impl::<false>(args),
    }
}

type StoreArgs<'a> = (
    &'a QActs,
    &'a QMatrix,
    usize,
    usize,
    usize,
    usize,
    Option<&'a [f32]>,
    Epilogue,
    &'a [[i32; BLOCK]; MR],
    OutPtr,
);

/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn store_avx512<const OFFSET: bool>(args: StoreArgs) {
    store_impl::<OFFSET>(args)
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_avx2<const OFFSET: bool>(args: StoreArgs) {
    store_impl::<OFFSET>(args)
}

#[inline(always)]
fn store_impl<const OFFSET: bool>((a, w, i0, mr, b, n, bias, epi, acc, out): StoreArgs) {
    let j0 = b * BLOCK;
    let width = (n - j0).min(BLOCK);
    let comp: &[i32; BLOCK] = w.comp[j0..j0 + BLOCK].try_into().expect("padded");
    let inv: &[f32; BLOCK] = w.inv_scale[j0..j0 + BLOCK].try_into().expect("padded");
    // The bias of a partial last block, zero-padded so every row is one
    // full-width vector operation.
    let mut bb = [0f32; BLOCK];
    if let Some(bias) = bias {
        let part = &bias[j0..j0 + width];
        match <&[f32; BLOCK]>::try_from(part) {
            Ok(full) => bb = *full,
            // Out of line, as the partial store below.
            Err(_) => load_partial(part, &mut bb),
        }
    }
    for (i, acc_row) in acc.iter().enumerate().take(mr) {
        let ai = a.inv[i0 + i];
        // Straight-line lanes (the offset and the bias are not tested per
        // value): one vector per row. A branchy loop was split by the
        // compiler into odd-width pieces whose reload as one vector stalled
        // on store forwarding. Adding a zero bias changes no value
        // (only a −0 becomes +0).
        let mut v = [0f32; BLOCK];
        for c in 0..BLOCK {
            let q = acc_row[c] - if OFFSET { comp[c] } else { 0 };
            v[c] = q as f32 * (ai * inv[c]) + bb[c];
        }
        if epi == Epilogue::Gelu {
            vkw_math::gelu_inline(&mut v);
        }
        // SAFETY: this task alone writes row i0+i, columns j0..j0+width,
        // which lie inside out[m, n].
        let dst = unsafe { out.0.add((i0 + i) * n + j0) };
        if width == BLOCK {
            // One vector store. With the partial copy inline, LLVM merged
            // both into one `memcpy` call of length min(4·width, 64) per
            // row (6 % of a tiny int8 run's samples).
            // SAFETY: as above, with width = BLOCK.
            unsafe { std::ptr::write_unaligned(dst as *mut [f32; BLOCK], v) };
        } else {
            // SAFETY: as above.
            unsafe { store_partial(dst, width, &v) };
        }
    }
}

/// The bias of a partial last block, kept out of line (see `store_impl`).
#[cold]
#[inline(never)]
fn load_partial(part: &[f32], bb: &mut [f32; BLOCK]) {
    bb[..part.len()].copy_from_slice(part);
}

/// The last, partial block of a row (`n` not a multiple of 16: the
/// vocabulary projection), kept out of line (see `store_impl`).
///
/// # Safety
/// `dst` must be valid for `width ≤ 16` floats.
#[cold]
#[inline(never)]
unsafe fn store_partial(dst: *mut f32, width: usize, v: &[f32; BLOCK]) {
    std::ptr::copy_nonoverlapping(v.as_ptr(), dst, width.min(BLOCK));
}

/// `acc[i][c] = Σ_k x[i, k] · w[block row c, k]` for `mr` rows.
///
/// # Safety
/// `x` must hold `mr` rows of `xs ≥ 4·steps` bytes, `w` one block of
/// `64 · steps` bytes, and `isa` must be supported.
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    isa: Isa,
    mr: usize,
    stream: bool,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    // Only the x86-64 kernels prefetch (measured there; no aarch64 machine
    // to measure on).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = stream;
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => x86::avx512vnni(mr, stream, x, xs, w, steps, acc),
        #[cfg(target_arch = "x86_64")]
        Isa::AvxVnni => x86::avxvnni(mr, stream, x, xs, w, steps, acc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::avx2(mr, stream, x, xs, w, steps, acc),
        #[cfg(target_arch = "aarch64")]
        Isa::NeonDot => arm::neon_dot(mr, x, xs, w, steps, acc),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => arm::neon(mr, x, xs, w, steps, acc),
        _ => portable(mr, x, xs, w, steps, acc),
    }
}

/// The reference kernel: signed activations, plain integer loops.
unsafe fn portable(
    mr: usize,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    for (i, acc_row) in acc.iter_mut().enumerate().take(mr) {
        let xr = std::slice::from_raw_parts(x.add(i * xs) as *const i8, steps * 4);
        let wb = std::slice::from_raw_parts(w, steps * 64);
        *acc_row = [0; BLOCK];
        for (s, xq) in xr.chunks_exact(4).enumerate() {
            let ws = &wb[s * 64..s * 64 + 64];
            for (c, a) in acc_row.iter_mut().enumerate() {
                let wr = &ws[c * 4..c * 4 + 4];
                *a += (0..4)
                    .map(|t| i32::from(xq[t]) * i32::from(wr[t]))
                    .sum::<i32>();
            }
        }
    }
}

#[cfg(test)]
mod tests;
