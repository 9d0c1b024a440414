//! Software prefetch for the kernels that stream from DRAM (decoder steps:
//! every weight, and each window's cross-attention K/V, read once per step).
//!
//! One core alone keeps too few misses in flight to read memory at its rate:
//! on this project's 2-vCPU Xeon VM a plain read loop streams ~10 GB/s per
//! core, ~15 GB/s with prefetches 4–8 KB ahead of the loads (docs/BENCHMARKS.md,
//! "Streaming kernels"). The int8 kernels (single-tile calls), `gemv` and
//! `attend` prefetch [`AHEAD`] bytes ahead of what they read.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};

/// How far ahead of its loads a streaming kernel prefetches, in bytes.
pub const AHEAD: usize = 4096;

/// Prefetch the 64-byte line holding `p` into L1. `p` may point past an
/// allocation: a prefetch never faults, and the address is only formed with
/// wrapping arithmetic.
#[inline(always)]
pub fn line<T>(p: *const T) {
    // SAFETY: `prefetcht0` reads nothing architecturally and cannot fault;
    // SSE is part of the x86-64 baseline.
    unsafe { _mm_prefetch(p as *const i8, _MM_HINT_T0) };
}

/// Prefetch the `count` consecutive lines from `p` on.
#[inline(always)]
pub fn lines(p: *const f32, count: usize) {
    for l in 0..count {
        line(p.wrapping_add(l * 16));
    }
}

/// Prefetch the line [`AHEAD`] bytes past `p`.
#[inline(always)]
pub fn ahead<T>(p: *const T) {
    line((p as *const u8).wrapping_add(AHEAD));
}
