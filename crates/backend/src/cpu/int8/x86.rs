//! x86-64 int8 kernels over one packed block of 16 weight rows (see
//! `mod.rs` for the layout): each step reads 64 bytes of weights (4 inputs ×
//! 16 rows) and the matching 4 bytes of every activation row.
#![cfg(target_arch = "x86_64")]

use super::{BLOCK, MR};
use std::arch::x86_64::*;

/// `$f::<mr, $c...>(args)` for the row count `mr` (1..=8).
macro_rules! dispatch_rows {
    ($mr:expr, $f:ident, $($c:expr),+; $($arg:expr),*) => {
        match $mr {
            1 => $f::<1, $($c),+>($($arg),*),
            2 => $f::<2, $($c),+>($($arg),*),
            3 => $f::<3, $($c),+>($($arg),*),
            4 => $f::<4, $($c),+>($($arg),*),
            5 => $f::<5, $($c),+>($($arg),*),
            6 => $f::<6, $($c),+>($($arg),*),
            7 => $f::<7, $($c),+>($($arg),*),
            _ => $f::<8, $($c),+>($($arg),*),
        }
    };
}

/// Prefetch the weight line `prefetch::AHEAD` bytes past `p` when `STREAM`.
#[inline(always)]
fn ahead<const STREAM: bool>(p: *const i8) {
    if STREAM {
        crate::cpu::prefetch::ahead(p);
    }
}

/// 4 activation bytes as one i32 (to broadcast).
#[inline(always)]
unsafe fn x4(x: *const u8, off: usize) -> i32 {
    std::ptr::read_unaligned(x.add(off) as *const i32)
}

#[inline(always)]
unsafe fn vnni512<const M: usize, const STREAM: bool>(
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    let mut a = [_mm512_setzero_si512(); M];
    for s in 0..steps {
        ahead::<STREAM>(w.add(s * 64));
        let wv = _mm512_loadu_si512(w.add(s * 64) as *const _);
        for (i, ai) in a.iter_mut().enumerate() {
            let xb = _mm512_set1_epi32(x4(x, i * xs + s * 4));
            *ai = _mm512_dpbusd_epi32(*ai, xb, wv);
        }
    }
    for (i, ai) in a.iter().enumerate() {
        _mm512_storeu_si512(acc[i].as_mut_ptr() as *mut _, *ai);
    }
}

/// AVX-512 VNNI: unsigned activations (`q + 128`). `stream`: the weights
/// are read once (one tile of rows), so prefetch them.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn avx512vnni(
    mr: usize,
    stream: bool,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    if stream {
        dispatch_rows!(mr, vnni512, true; x, xs, w, steps, acc)
    } else {
        dispatch_rows!(mr, vnni512, false; x, xs, w, steps, acc)
    }
}

/// 256-bit kernels handle a block as two halves of 8 rows (32 bytes of each
/// 64-byte step), so `M` accumulators fit the 16 ymm registers.
#[inline(always)]
unsafe fn half256<const M: usize, const VNNI: bool, const STREAM: bool>(
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    let ones = _mm256_set1_epi16(1);
    for half in 0..2 {
        let mut a = [_mm256_setzero_si256(); M];
        for s in 0..steps {
            if half == 0 {
                // The second half re-reads the block from cache.
                ahead::<STREAM>(w.add(s * 64));
            }
            let wv = _mm256_loadu_si256(w.add(s * 64 + half * 32) as *const _);
            // |w| as unsigned bytes: −128 becomes 128, still exact.
            let wa = _mm256_abs_epi8(wv);
            for (i, ai) in a.iter_mut().enumerate() {
                let xb = _mm256_set1_epi32(x4(x, i * xs + s * 4));
                if VNNI {
                    *ai = _mm256_dpbusd_avx_epi32(*ai, xb, wv);
                } else {
                    // |w| · sign(x, w) = x · w. The sign goes onto the
                    // activation (|x| ≤ 127, so negating it cannot wrap,
                    // unlike a stored −128 weight), and a pair sum
                    // (≤ 2·128·127) cannot saturate vpmaddubsw.
                    let p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(xb, wv));
                    *ai = _mm256_add_epi32(*ai, _mm256_madd_epi16(p, ones));
                }
            }
        }
        for (i, ai) in a.iter().enumerate() {
            _mm256_storeu_si256(acc[i].as_mut_ptr().add(half * 8) as *mut _, *ai);
        }
    }
}

/// AVX-VNNI: unsigned activations (`q + 128`).
#[target_feature(enable = "avx2,avxvnni")]
pub unsafe fn avxvnni(
    mr: usize,
    stream: bool,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    if stream {
        dispatch_rows!(mr, half256, true, true; x, xs, w, steps, acc)
    } else {
        dispatch_rows!(mr, half256, true, false; x, xs, w, steps, acc)
    }
}

/// AVX2: signed activations.
#[target_feature(enable = "avx2")]
pub unsafe fn avx2(
    mr: usize,
    stream: bool,
    x: *const u8,
    xs: usize,
    w: *const i8,
    steps: usize,
    acc: &mut [[i32; BLOCK]; MR],
) {
    if stream {
        dispatch_rows!(mr, half256, false, true; x, xs, w, steps, acc)
    } else {
        dispatch_rows!(mr, half256, false, false; x, xs, w, steps, acc)
    }
}
