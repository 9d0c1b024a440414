//! aarch64 int8 kernels over one packed block of 16 weight rows (see
//! `mod.rs` for the layout). Each 64-byte step is four 16-byte vectors, each
//! holding 4 consecutive inputs of 4 rows, so one vector against the 4
//! activation bytes broadcast to every 32-bit lane gives 4 row sums: exactly
//! the operand shape of `sdot`. Activations are signed (no `+ 128` offset).

#![cfg(target_arch = "aarch64")]

use super::{BLOCK, MR};
use std::arch::aarch64::*;

/// Activation rows per register tile: 4 rows × 4 accumulators + 4 weight
/// vectors + 1 broadcast stay inside the 32 vector registers.
const TILE: usize = 4;

/// 4 activation bytes broadcast to every 32-bit lane.
#[inline(always)]
unsafe fn x4(x: *const u8, off: usize) -> int8x16_t {
    vreinterpretq_s8_s32(vdupq_n_s32(std::ptr::read_unaligned(
        x.add(off) as *const i32
    )))
}

/// `acc += sdot(w, x)`: per 32-bit lane, the sum of 4 byte products.
/// The `sdot` intrinsics are not stable Rust yet, so this is the one
/// instruction written out; callers enable `dotprod`.
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut a = acc;
    std::arch::asm!(
        ".arch_extension dotprod",
        "sdot {a:v}.4s, {w:v}.16b, {x:v}.16b",
        a = inout(vreg) a,
        w = in(vreg) w,
        x = in(vreg) x,
        options(pure, nomem, nostack, preserves_flags)
    );
    a
}

/// The same 4-lane dot product from ARMv8.0 NEON: widening products, a
/// pairwise add that still fits 16 bits (|x| ≤ 127, so a pair is at most
/// 2 · 128 · 127 < 2^15), then a pairwise add-accumulate into 32 bits.
#[inline(always)]
unsafe fn dot_v8(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    let hi = vmull_high_s8(w, x);
    vpadalq_s16(acc, vpaddq_s16(lo, hi))
}

#[inline(always)]
unsafe fn tile<const M: usize, const DOT: bool>(
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]],
) {
    let mut a = [[vdupq_n_s32(0); 4]; M];
    for s in 0..steps {
        let wp = w.add(s * 64);
        let wv = [
            vld1q_s8(wp),
            vld1q_s8(wp.add(16)),
            vld1q_s8(wp.add(32)),
            vld1q_s8(wp.add(48)),
        ];
        for (i, ai) in a.iter_mut().enumerate() {
            let xb = x4(x, i * xs + s * 4);
            for (q, aq) in ai.iter_mut().enumerate() {
                *aq = if DOT {
                    sdot(*aq, wv[q], xb)
                } else {
                    dot_v8(*aq, wv[q], xb)
                };
            }
        }
    }
    for (ai, out) in a.iter().zip(acc.iter_mut()) {
        for (q, aq) in ai.iter().enumerate() {
            vst1q_s32(out.as_mut_ptr().add(4 * q), *aq);
        }
    }
}

#[inline(always)]
unsafe fn rows<const DOT: bool>(
    mr: usize,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    let mut i0 = 0;
    while i0 < mr.min(MR) {
        let (xr, out) = (x.add(i0 * xs), &mut acc[i0..]);
        match mr - i0 {
            1 => tile::<1, DOT>(xr, xs, w, steps, out),
            2 => tile::<2, DOT>(xr, xs, w, steps, out),
            3 => tile::<3, DOT>(xr, xs, w, steps, out),
            _ => tile::<TILE, DOT>(xr, xs, w, steps, out),
        }
        i0 += TILE;
    }
}

/// ARMv8.2 dot product (`sdot`, FEAT_DotProd): signed activations.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn neon_dot(
    mr: usize,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    rows::<true>(mr, x, xs, w, steps, acc)
}

/// Baseline NEON (every aarch64 CPU): signed activations.
#[target_feature(enable = "neon")]
pub unsafe fn neon(
    mr: usize,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    rows::<false>(mr, x, xs, w, steps, acc)
}
