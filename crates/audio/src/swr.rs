//! FFmpeg's libswresample as faster-whisper's `decode_audio` drives it (spec §4.1): PyAV's
//! `AudioResampler(format="s16", layout="mono", rate=16000)` is an FFmpeg filter graph whose
//! auto-inserted `aresample` runs one `SwrContext` with every option at its default, fed frame
//! by frame and flushed at the end. This module is an independent implementation of what that
//! context computes, written from the behaviour documented in libswresample's source:
//!
//! * **Internal format** (`swr_init`, [`Kind`]): float whenever it resamples, whatever the
//!   decoder's format (verified bit for bit against PyAV 18 / libswresample 6 with s16 and
//!   fltp input at 8–48 kHz); 16-bit integer arithmetic only at 16 kHz for decoders that
//!   output at most 16 bits (16-bit WAV/FLAC/ALAC, 8-bit PCM, ADPCM), where only the
//!   down-mix runs.
//! * **Filter** (`resample_init`/`build_filter`, defaults of `options.c`): Kaiser-windowed sinc,
//!   `filter_size` 32, `phase_shift` 10 (1024 phases), `cutoff` 0.97, `kaiser_beta` 9,
//!   `exact_rational` on (the phase count becomes `16000 / gcd(rate, 16000)` when that is at
//!   most 1024, so every output sample uses an exact phase), `linear_interp` on (used only
//!   when the ratio is not exact). The filter is `ceil(32 / factor)` taps rounded up to even,
//!   `factor = min(16000 · 0.97 / rate, 1)`; every phase is normalised by the sum of phase 0.
//! * **Edges**: output 0 is centred on input 0; before it the input is mirrored
//!   (`x[-n] = x[n]`, `invert_initial_buffer`); at the flush, `(min(left, taps) + 1) / 2`
//!   samples of the end are mirrored (`resample_flush`), which yields `ceil(n · 16000 / rate)`
//!   output samples for inputs of normal length.
//! * **Arithmetic**: float coefficients `tab / norm`; each output is FFmpeg's x86 FMA3 kernel
//!   (`resample_common_float_fma3`): eight lanes of fused multiply-adds over the taps and a
//!   fixed pairwise horizontal sum, reproduced exactly here (with AVX2/FMA when the CPU has
//!   them, else the same operations one by one). Ratios that are not exact with 1024 phases
//!   interpolate linearly between two phases (C semantics; within 1 LSB of the x86 kernel).
//! * **Down-mix** (`rematrix.c`): stereo is `0.5·L + 0.5·R` (√½ each, normalised to a row sum
//!   of 1 because the output is integer); in 16 bits the coefficients are 16384 and the sum is
//!   `(16384·L + 16384·R + 16384) >> 15`. For a mono output swresample resamples every input
//!   channel first and mixes afterwards (`resample_first`).
//! * **To 16 bits**: `lrintf(x · 32768)` (round half to even), saturated.

use std::f64::consts::PI;
use std::sync::Arc;

use crate::SAMPLE_RATE;

/// libswresample's `filter_size` default.
const FILTER_SIZE: f64 = 32.0;
/// `1 << phase_shift` with the default `phase_shift` 10.
const MAX_PHASES: i64 = 1 << 10;
/// The cutoff `resample_init` uses when the option is 0 (its default).
const CUTOFF: f64 = 0.97;
/// `kaiser_beta` default.
const KAISER_BETA: f64 = 9.0;

/// The sample format swresample works in (`int_sample_fmt`, chosen by `swr_init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `AV_SAMPLE_FMT_S16P`: the decoder gives at most 16-bit samples.
    S16,
    /// `AV_SAMPLE_FMT_FLTP`: float or wider integer samples.
    Flt,
}

/// `val + (v2 - val) · frac / src_incr` (`resample_linear`, float: the step is in double).
fn lerp(val: f32, v2: f32, frac: i64, src_incr: i64) -> f32 {
    let inv = 1.0 / src_incr as f64;
    (f64::from(val) + f64::from(v2 - val) * inv * frac as f64) as f32
}

/// FFmpeg's `resample_common_float_fma3`: eight lanes, lane `k` accumulates taps `k, k+8, …`
/// with fused multiply-adds; then `(l0+l4 + l2+l6) + (l1+l5 + l3+l7)`.
fn dot_f32(window: &[f32], filter: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { dot_f32_fma(window, filter) };
        }
    }
    dot_f32_lanes(window, filter)
}

/// [`dot_f32`] one operation at a time (same rounding: `mul_add` is a fused multiply-add).
fn dot_f32_lanes(window: &[f32], filter: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (w, f) in window.chunks_exact(8).zip(filter.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] = w[k].mul_add(f[k], acc[k]);
        }
    }
    let b: [f32; 4] = std::array::from_fn(|k| acc[k] + acc[k + 4]);
    (b[0] + b[2]) + (b[1] + b[3])
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32_fma(window: &[f32], filter: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = window.len().min(filter.len()) / 8;
    let mut acc = _mm256_setzero_ps();
    for c in 0..n {
        // SAFETY: 8·c + 8 <= len of both slices.
        let (w, f) = unsafe {
            (
                _mm256_loadu_ps(window.as_ptr().add(8 * c)),
                _mm256_loadu_ps(filter.as_ptr().add(8 * c)),
            )
        };
        acc = _mm256_fmadd_ps(w, f, acc);
    }
    let b = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    let d = _mm_add_ss(c, _mm_shuffle_ps(c, c, 1));
    _mm_cvtss_f32(d)
}

/// `av_reduce`: `num/den` as a fraction with both terms at most `max` (exact when possible,
/// else the best continued-fraction approximation). Inputs are positive.
fn reduce(num: i64, den: i64, max: i64) -> (i64, i64) {
    let g = gcd(num, den).max(1);
    let (mut num, mut den) = (num / g, den / g);
    if num <= max && den <= max {
        return (num, den);
    }
    let (mut a0, mut a1) = ((0i64, 1i64), (1i64, 0i64));
    while den != 0 {
        let x = num / den;
        let next_den = num - den * x;
        let a2n = x * a1.0 + a0.0;
        let a2d = x * a1.1 + a0.1;
        if a2n > max || a2d > max {
            let mut x = x;
            if a1.0 != 0 {
                x = (max - a0.0) / a1.0;
            }
            if a1.1 != 0 {
                x = x.min((max - a0.1) / a1.1);
            }
            if den * (2 * x * a1.1 + a0.1) > num * a1.1 {
                a1 = (x * a1.0 + a0.0, x * a1.1 + a0.1);
            }
            break;
        }
        a0 = a1;
        a1 = (a2n, a2d);
        num = den;
        den = next_den;
    }
    a1
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// Modified Bessel function of the first kind, order 0 (power series; the Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut v, mut t) = (1.0f64, 1.0f64);
    for k in 1..500 {
        t *= q / (k * k) as f64;
        let next = v + t;
        if next == v {
            break;
        }
        v = next;
    }
    v
}

/// The geometry of swresample's filter for one rate pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Design {
    /// Taps per phase (`filter_length`).
    pub taps: usize,
    /// Taps rounded up to 8 (`filter_alloc`).
    pub alloc: usize,
    /// Number of phases.
    pub phases: i64,
    /// Position step per output sample, in phases: `div + modu / src_incr`.
    pub div: i64,
    /// Fractional part of the step (numerator over `src_incr`).
    pub modu: i64,
    /// Denominator of the fractional phase.
    pub src_incr: i64,
    /// Low-pass factor (cutoff / ratio).
    pub factor: f64,
}

impl Design {
    /// `resample_init` with libswresample's defaults, from `rate` to 16 kHz.
    pub(crate) fn new(rate: u32) -> Self {
        let (out, inp) = (i64::from(SAMPLE_RATE), i64::from(rate));
        let factor = (f64::from(SAMPLE_RATE) * CUTOFF / f64::from(rate)).min(1.0);
        let mut taps = ((FILTER_SIZE / factor).ceil() as usize).max(1);
        if taps > 1 {
            taps = taps.next_multiple_of(2);
        }
        let mut phases = MAX_PHASES;
        // exact_rational: one phase per distinct output position when that is few enough.
        let (exact, _) = reduce(out, inp, i64::from(i32::MAX));
        if exact <= phases {
            phases = exact;
        }
        let (mut src_incr, mut dst_incr) = reduce(out, inp * phases, i64::from(i32::MAX / 2));
        while dst_incr < (1 << 20) && src_incr < (1 << 20) {
            dst_incr *= 2;
            src_incr *= 2;
        }
        Design {
            taps,
            alloc: taps.next_multiple_of(8),
            phases,
            div: dst_incr / src_incr,
            modu: dst_incr % src_incr,
            src_incr,
            factor,
        }
    }

    /// `build_filter` (Kaiser, float coefficients `tab / norm`) plus the extra phase
    /// `resample_init` appends for the interpolation.
    fn bank(&self) -> Vec<f32> {
        let (taps, alloc, pc) = (self.taps, self.alloc, self.phases as usize);
        let mut bank = vec![0f32; alloc * (pc + 1)];
        let ph_nb = if pc % 2 == 1 { pc } else { pc / 2 + 1 };
        let center = (taps as i64 - 1) / 2;
        let factor = self.factor;
        let mut tab = vec![0f64; taps];
        let mut norm = 0f64;
        for ph in 0..ph_nb {
            // Without low-pass (factor 1) the sine comes from a table with alternating sign.
            let mut s = if factor == 1.0 {
                (PI * ph as f64 / pc as f64).sin() * if center & 1 == 1 { 1.0 } else { -1.0 }
            } else {
                0.0
            };
            for (i, t) in tab.iter_mut().enumerate() {
                let x = PI * ((i as i64 - center) as f64 - ph as f64 / pc as f64) * factor;
                let mut y = if x == 0.0 {
                    1.0
                } else if factor == 1.0 {
                    s / x
                } else {
                    x.sin() / x
                };
                let w = 2.0 * x / (factor * taps as f64 * PI);
                y *= bessel_i0(KAISER_BETA * (1.0 - w * w).max(0.0).sqrt());
                *t = y;
                s = -s;
                if ph == 0 {
                    norm += y;
                }
            }
            for (i, &t) in tab.iter().enumerate() {
                bank[ph * alloc + i] = (t / norm) as f32;
            }
            if pc % 2 == 0 {
                // The other half of the phases mirror these (done in place, in this order).
                for i in 0..taps {
                    bank[(pc - ph) * alloc + taps - 1 - i] = bank[ph * alloc + i];
                }
            }
        }
        // Phase `pc` is phase 0 one sample later (for the interpolation of the last phase).
        for k in 0..alloc - 1 {
            bank[pc * alloc + 1 + k] = bank[k];
        }
        bank[pc * alloc] = bank[alloc - 1];
        bank
    }
}

/// One channel of swresample's polyphase resampler, streaming.
pub(crate) struct Polyphase {
    design: Design,
    /// The filter bank, shared by every channel of a stream (up to 1.6 M
    /// coefficients at the highest rates: built once, not per channel).
    bank: Arc<[f32]>,
    /// Input before the initial mirror can be built (fewer than `taps + 1` samples).
    head: Vec<f32>,
    started: bool,
    /// Input from the mirrored start on; `buf[pos]` is the first tap of the next output.
    buf: Vec<f32>,
    pos: usize,
    /// Phase of the next output and its fraction (over `src_incr`).
    index: i64,
    frac: i64,
    flushed: bool,
    scratch: Vec<f32>,
}

impl Polyphase {
    pub(crate) fn new(rate: u32) -> Self {
        let design = Design::new(rate);
        Self::with_bank(design, design.bank().into())
    }

    /// A channel using `bank`, which is `design`'s.
    fn with_bank(design: Design, bank: Arc<[f32]>) -> Self {
        Polyphase {
            bank,
            design,
            head: Vec::new(),
            started: false,
            buf: Vec::new(),
            pos: 0,
            index: 0,
            frac: 0,
            flushed: false,
            scratch: vec![0.0; design.alloc],
        }
    }

    /// Feed input; outputs that are complete are appended to `out`.
    pub(crate) fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.flushed {
            return;
        }
        if self.started {
            self.buf.extend_from_slice(input);
        } else {
            self.head.extend_from_slice(input);
            if self.head.len() < self.design.taps + 1 {
                return;
            }
            self.start();
        }
        self.run(out);
    }

    /// The end of the input: mirror the tail and produce the last outputs.
    pub(crate) fn flush(&mut self, out: &mut Vec<f32>) {
        if std::mem::replace(&mut self.flushed, true) {
            return;
        }
        let taps = self.design.taps;
        let v = if self.started {
            &mut self.buf
        } else {
            &mut self.head
        };
        let end = v.len();
        let left = if self.started { end - self.pos } else { end };
        let reflection = left.min(taps).div_ceil(2);
        for j in 0..reflection.min(end) {
            let x = v[end - 1 - j];
            v.push(x);
        }
        if !self.started {
            // Still not enough for the initial mirror: swresample outputs nothing at all.
            if self.head.len() < taps + 1 {
                return;
            }
            self.start();
        }
        self.run(out);
    }

    /// `invert_initial_buffer`: `x[-n] = x[n]` for n = 1..=taps; output 0 is centred on x[0].
    fn start(&mut self) {
        let taps = self.design.taps;
        let head = std::mem::take(&mut self.head);
        self.buf = Vec::with_capacity(head.len() + taps + 4096);
        self.buf.extend((1..=taps).rev().map(|n| head[n]));
        self.buf.extend_from_slice(&head);
        self.pos = taps - (taps - 1) / 2;
        self.index = 0;
        self.frac = 0;
        self.started = true;
    }

    fn run(&mut self, out: &mut Vec<f32>) {
        let d = self.design;
        let linear = d.modu != 0;
        while self.pos + d.taps <= self.buf.len() {
            let window = if self.pos + d.alloc <= self.buf.len() {
                &self.buf[self.pos..self.pos + d.alloc]
            } else {
                // The last outputs: taps past the filter are zero, so pad with zeros.
                let have = self.buf.len() - self.pos;
                self.scratch[..have].copy_from_slice(&self.buf[self.pos..]);
                self.scratch[have..].fill(0.0);
                &self.scratch[..]
            };
            let ph = self.index as usize;
            let f1 = &self.bank[ph * d.alloc..(ph + 1) * d.alloc];
            let mut acc = dot_f32(window, f1);
            if linear {
                let f2 = &self.bank[(ph + 1) * d.alloc..(ph + 2) * d.alloc];
                acc = lerp(acc, dot_f32(window, f2), self.frac, d.src_incr);
            }
            out.push(acc);

            self.frac += d.modu;
            self.index += d.div;
            if self.frac >= d.src_incr {
                self.frac -= d.src_incr;
                self.index += 1;
            }
            self.pos += (self.index / d.phases) as usize;
            self.index %= d.phases;
        }
        // Keep the buffer short: drop what no later output reads.
        if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// The down-mix of `n` channels to mono, in swresample's arithmetic for `kind`.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    /// Float coefficients.
    flt: Vec<f32>,
    /// Integer coefficients ×32768 (`Kind::S16`).
    int: Vec<i32>,
    /// Whether the 16-bit sum can overflow and must be clipped.
    clip: bool,
}

impl Mix {
    /// From the (already normalised) weights of each input channel.
    pub(crate) fn new(weights: &[f64]) -> Self {
        // swri_rematrix_init (S16P): lrintf with the rounding error carried to the next
        // coefficient, so a row keeps its sum.
        let mut rem = 0f64;
        let mut int = Vec::with_capacity(weights.len());
        for &w in weights {
            let target = w * 32768.0 + rem;
            let c = f64::from(target as f32).round_ties_even() as i32;
            rem += target - f64::from(c);
            int.push(c);
        }
        let sum: i64 = int.iter().map(|c| i64::from(c.unsigned_abs())).sum();
        Mix {
            flt: weights.iter().map(|&w| w as f32).collect(),
            int,
            clip: sum > 32768,
        }
    }

    /// Mix sample `j` of every channel (float).
    #[inline]
    fn flt(&self, chans: &[&[f32]], j: usize) -> f32 {
        match chans.len() {
            // mix_2_1: two products, one sum.
            2 => self.flt[0] * chans[0][j] + self.flt[1] * chans[1][j],
            _ => {
                let mut v = 0f32;
                for (c, ch) in self.flt.iter().zip(chans) {
                    if *c != 0.0 {
                        v += ch[j] * c;
                    }
                }
                v
            }
        }
    }

    /// Mix sample `j` of every channel (16-bit: `(Σ c·x + 16384) >> 15`).
    #[inline]
    fn s16(&self, chans: &[Vec<i16>], j: usize) -> i16 {
        let mut v = 0i32;
        for (c, ch) in self.int.iter().zip(chans) {
            v = v.wrapping_add(c * i32::from(ch[j]));
        }
        let r = v.wrapping_add(16384) >> 15;
        if self.clip {
            r.clamp(-32768, 32767) as i16
        } else {
            r as i16
        }
    }
}

/// `lrintf(x · 32768)` saturated to 16 bits (swresample's float → s16 conversion).
#[inline]
pub(crate) fn flt_to_s16(x: f32) -> i16 {
    (x * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
}

/// A whole conversion: `channels` planar channels at `rate` → 16 kHz mono signed 16-bit.
pub(crate) struct Converter {
    rate: u32,
    channels: usize,
    kind: Kind,
    mix: Mix,
    /// One resampler per input channel (none at 16 kHz).
    lanes: Vec<Polyphase>,
    /// Each lane's output not yet mixed.
    pending: Vec<Vec<f32>>,
    /// 16-bit input, per channel (`Kind::S16`).
    s16: Vec<Vec<i16>>,
}

impl Converter {
    /// For `channels` channels mixed with `weights` (one per channel), at `rate` Hz;
    /// `int16_input` when the decoder's samples are integers of at most 16 bits (FFmpeg's
    /// decoder would output `s16`/`u8`), which swresample keeps in 16 bits when it does not
    /// resample. When it resamples it works in float whatever the input (libswresample 6:
    /// measured against PyAV 18 on 8–48 kHz s16 input, bit for bit).
    pub(crate) fn new(rate: u32, channels: usize, weights: &[f64], int16_input: bool) -> Self {
        let resample = rate != SAMPLE_RATE;
        let kind = if int16_input && !resample {
            Kind::S16
        } else {
            Kind::Flt
        };
        let n = if resample { channels } else { 0 };
        let lanes = if n > 0 {
            let design = Design::new(rate);
            let bank: Arc<[f32]> = design.bank().into();
            (0..n)
                .map(|_| Polyphase::with_bank(design, Arc::clone(&bank)))
                .collect()
        } else {
            Vec::new()
        };
        Converter {
            rate,
            channels,
            kind,
            mix: Mix::new(weights),
            lanes,
            pending: vec![Vec::new(); n],
            s16: vec![Vec::new(); channels],
        }
    }

    /// The input rate, channel count and internal format this converter was made for.
    pub(crate) fn params(&self) -> (u32, usize, Kind) {
        (self.rate, self.channels, self.kind)
    }

    /// Feed one decoded packet: `planes[c]` are channel `c`'s samples as f32 (integer PCM as
    /// `v / 2^(bits-1)`, exact). Finished 16 kHz mono samples are appended to `out`.
    pub(crate) fn push(&mut self, planes: &[&[f32]], out: &mut Vec<i16>) {
        if self.kind == Kind::S16 {
            // 16 kHz, at most 16 bits: integer mix (`(Σ c·x + 16384) >> 15`) or a copy.
            for (dst, src) in self.s16.iter_mut().zip(planes) {
                dst.clear();
                // Integer PCM of at most 16 bits is k / 32768 exactly.
                dst.extend(src.iter().map(|&x| (x * 32768.0) as i16));
            }
            let n = self.s16.first().map_or(0, Vec::len);
            if self.s16.len() == 1 {
                out.extend_from_slice(&self.s16[0]);
            } else {
                out.extend((0..n).map(|j| self.mix.s16(&self.s16, j)));
            }
            return;
        }
        if self.lanes.is_empty() {
            let n = planes.first().map_or(0, |p| p.len());
            if planes.len() == 1 {
                out.extend(planes[0].iter().map(|&x| flt_to_s16(x)));
            } else {
                out.extend((0..n).map(|j| flt_to_s16(self.mix.flt(planes, j))));
            }
            return;
        }
        for ((r, t), x) in self.lanes.iter_mut().zip(&mut self.pending).zip(planes) {
            r.push(x, t);
        }
        self.mix_out(out);
    }

    /// The end of the input (swresample's flush).
    pub(crate) fn finish(&mut self, out: &mut Vec<i16>) {
        for (r, t) in self.lanes.iter_mut().zip(&mut self.pending) {
            r.flush(t);
        }
        self.mix_out(out);
    }

    /// Mix and quantise what every lane has produced (the lanes advance in lockstep).
    fn mix_out(&mut self, out: &mut Vec<i16>) {
        let n = self.pending.iter().map(Vec::len).min().unwrap_or(0);
        if self.pending.len() == 1 {
            out.extend(self.pending[0][..n].iter().map(|&x| flt_to_s16(x)));
        } else {
            let chans: Vec<&[f32]> = self.pending.iter().map(|p| &p[..n]).collect();
            out.extend((0..n).map(|j| flt_to_s16(self.mix.flt(&chans, j))));
        }
        for p in &mut self.pending {
            p.drain(..n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designs_match_swresample_defaults() {
        // 44.1 kHz: factor 0.3519…, 32/factor = 90.9 → 91 → 92 taps; 160 exact phases,
        // 441 phases (2.75625 samples) per output.
        let d = Design::new(44_100);
        assert_eq!(
            (d.taps, d.alloc, d.phases, d.div, d.modu),
            (92, 96, 160, 441, 0)
        );
        let d = Design::new(22_050);
        assert_eq!((d.taps, d.phases, d.div, d.modu), (46, 320, 441, 0));
        let d = Design::new(48_000);
        assert_eq!((d.taps, d.phases, d.div, d.modu), (100, 1, 3, 0));
        // Upsampling: no low-pass, 32 taps, 2 phases.
        let d = Design::new(8_000);
        assert_eq!((d.taps, d.phases, d.div, d.modu), (32, 2, 1, 0));
        // A ratio needing more than 1024 phases: 1024 phases with a fractional step.
        let d = Design::new(44_101);
        assert_eq!(d.phases, 1024);
        assert_ne!(d.modu, 0);
    }

    #[test]
    fn reduce_is_av_reduce() {
        assert_eq!(reduce(16_000, 44_100, i64::from(i32::MAX)), (160, 441));
        assert_eq!(reduce(6, 4, 100), (3, 2));
        // Approximation when the exact terms exceed max.
        let (n, d) = reduce(1_000_003, 999_999, 1000);
        assert!(n <= 1000 && d <= 1000);
        assert!((n as f64 / d as f64 - 1_000_003.0 / 999_999.0).abs() < 1e-5);
    }

    #[test]
    fn phases_are_normalised_to_phase_zero() {
        let d = Design::new(22_050);
        let bank = d.bank();
        let sum0: f32 = bank[..d.alloc].iter().sum();
        assert!((sum0 - 1.0).abs() < 1e-5, "{sum0}");
    }

    #[test]
    fn fma_kernel_equals_lane_emulation() {
        let w: Vec<f32> = (0..96)
            .map(|i| ((i * 7919) % 201) as f32 / 97.0 - 1.0)
            .collect();
        let f: Vec<f32> = (0..96)
            .map(|i| ((i * 104_729) % 113) as f32 / 1130.0)
            .collect();
        assert_eq!(dot_f32(&w, &f).to_bits(), dot_f32_lanes(&w, &f).to_bits());
    }

    fn convert(rate: u32, int16: bool, x: &[f32], pieces: usize) -> Vec<i16> {
        let mut c = Converter::new(rate, 1, &[1.0], int16);
        let mut out = Vec::new();
        for p in x.chunks(x.len().div_ceil(pieces).max(1)) {
            c.push(&[p], &mut out);
        }
        c.finish(&mut out);
        out
    }

    #[test]
    fn channels_share_one_filter_bank() {
        // Found by the resample fuzz target: 24 channels at 767,999 Hz built
        // 24 banks of 1.6 M coefficients (156 MB, seconds) for 224 bytes.
        let c = Converter::new(767_999, 24, &[1.0 / 24.0; 24], false);
        assert_eq!(c.lanes.len(), 24);
        assert!(c
            .lanes
            .iter()
            .all(|l| Arc::ptr_eq(&l.bank, &c.lanes[0].bank)));
    }

    #[test]
    fn length_is_ceil_and_chunking_changes_nothing() {
        for rate in [8000u32, 11_025, 22_050, 44_100, 48_000, 44_101] {
            let n = rate as usize + 123;
            let x: Vec<f32> = (0..n)
                .map(|i| (i as f32 * 0.05).sin() * 0.5)
                .map(|v| (v * 32768.0).round() / 32768.0)
                .collect();
            for int16 in [true, false] {
                let one = convert(rate, int16, &x, 1);
                let ceil = (n * 16000).div_ceil(rate as usize);
                assert!(one.len() == ceil || one.len() + 1 == ceil, "{rate}");
                assert_eq!(convert(rate, int16, &x, 13), one, "{rate} {int16}");
            }
        }
        // Too short for the initial mirror even after the flush: nothing, as swresample.
        assert!(convert(44_100, false, &[0.1; 10], 1).is_empty());
        assert!(convert(44_100, false, &[], 1).is_empty());
    }

    #[test]
    fn lengths_are_pyavs() {
        // Output lengths PyAV 18 (libswresample 6) gives for `n` input samples fed in
        // 1152-sample frames and flushed: usually ceil(n · 16000 / rate), but the tail
        // reflection is (left + 1) / 2 samples, which can fall one output short; inputs
        // too short for the initial mirror give nothing.
        let table: [(u32, [(usize, usize); 8]); 4] = [
            (
                48_000,
                [
                    (96_007, 32_002),
                    (48_123, 16_041),
                    (10, 0),
                    (60, 0),
                    (100, 34),
                    (150, 50),
                    (1000, 333),
                    (96_077, 32_026),
                ],
            ),
            (
                44_100,
                [
                    (88_207, 32_003),
                    (44_223, 16_045),
                    (96_007, 34_833),
                    (10, 0),
                    (60, 0),
                    (100, 36),
                    (150, 55),
                    (1000, 363),
                ],
            ),
            (
                8_000,
                [
                    (16_007, 32_014),
                    (8_123, 16_246),
                    (96_007, 192_014),
                    (10, 0),
                    (60, 120),
                    (100, 200),
                    (150, 300),
                    (1000, 2000),
                ],
            ),
            (
                22_050,
                [
                    (44_107, 32_006),
                    (22_173, 16_090),
                    (96_007, 69_665),
                    (10, 0),
                    (60, 44),
                    (100, 73),
                    (150, 109),
                    (1000, 726),
                ],
            ),
        ];
        for (rate, cases) in table {
            for (n, want) in cases {
                let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
                let mut c = Converter::new(rate, 1, &[1.0], false);
                let mut out = Vec::new();
                for p in x.chunks(1152) {
                    c.push(&[p], &mut out);
                }
                c.finish(&mut out);
                assert_eq!(out.len(), want, "{rate} Hz, {n} samples");
            }
        }
    }

    #[test]
    fn passthrough_and_downmix_at_16k() {
        let l = [0.5f32, -0.25, 1.0, -1.0];
        let r = [0.25f32, 0.25, 1.0, -1.0];
        let mut c = Converter::new(16_000, 2, &[0.5, 0.5], true);
        assert_eq!(c.params().2, Kind::S16);
        let mut out = Vec::new();
        c.push(&[&l, &r], &mut out);
        c.finish(&mut out);
        // (16384·a + 16384·b + 16384) >> 15, a and b in 16-bit units.
        assert_eq!(out, vec![12288, 0, 32767, -32768]);
        // The same in float: 0.5·a + 0.5·b, then lrintf.
        let mut c = Converter::new(16_000, 2, &[0.5, 0.5], false);
        let mut out = Vec::new();
        c.push(&[&l, &r], &mut out);
        assert_eq!(out, vec![12288, 0, 32767, -32768]);
        // Resampling always works in float.
        assert_eq!(
            Converter::new(22_050, 1, &[1.0], true).params().2,
            Kind::Flt
        );
        assert_eq!(flt_to_s16(0.5 / 32768.0), 0);
        assert_eq!(flt_to_s16(1.5 / 32768.0), 2);
        assert_eq!(flt_to_s16(2.0), 32767);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release -p vkw-audio --lib swr::speed -- --ignored --nocapture`:
    /// input samples per second through the converter (docs/BENCHMARKS.md).
    #[test]
    #[ignore]
    fn resampler_speed() {
        for (rate, ch) in [(44_100u32, 1usize), (48_000, 1), (22_050, 1), (44_100, 2)] {
            let secs = 600usize;
            let x: Vec<f32> = (0..rate as usize * 10)
                .map(|i| (i as f32 * 0.01).sin() * 0.3)
                .collect();
            let mut c = Converter::new(rate, ch, &vec![1.0 / ch as f64; ch], false);
            let mut out = Vec::with_capacity(16_000 * secs + 16);
            let t = std::time::Instant::now();
            for _ in 0..secs / 10 {
                for p in x.chunks(1152) {
                    let planes: Vec<&[f32]> = (0..ch).map(|_| p).collect();
                    c.push(&planes, &mut out);
                }
            }
            c.finish(&mut out);
            let dt = t.elapsed().as_secs_f64();
            println!(
                "{rate} Hz x{ch}: {secs} s of audio in {dt:.2} s: {:.1} M input samples/s per channel, one hour in {:.1} s",
                (rate as usize * secs) as f64 / dt / 1e6,
                dt * 3600.0 / secs as f64
            );
        }
    }
}
