//! Vectorisable `exp`, softmax, sum of exponentials and erf-GELU, shared by
//! the CPU backend (attention softmax, FFN GELU) and decoding (log-softmax of
//! logit rows) so that neither reaches into the other's internals.
#![deny(missing_docs)]
//!
//! The encoder's attention takes ~54 million exponentials per window and its
//! FFN ~10 million erf evaluations; the scalar libm calls were a fifth of the
//! encoder's time. These versions are branch-free so the compiler turns the
//! loops into SIMD code (compiled for AVX2+FMA and picked at run time).
//! Accuracy: `exp` within 2 ulp (degree-7 polynomial after Cody–Waite range
//! reduction); erf within 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), below
//! the float32 rounding noise of the matmuls around them.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in a part exact in float32 and the remainder (Cody–Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x = 2^n · p` for one value: `n` (integral, |n| ≤ 127 after the
/// clamp) and the polynomial `p = e^r`, `r = x − n·ln 2`.
#[inline(always)]
fn exp_parts(x: f32) -> (f32, f32) {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E).round_ties_even();
    // Separate multiplies and adds, not `mul_add`: fused, the encoder ran
    // ~3 % faster but every exp and erf changed in its last bits, which moved
    // the offline and live longform transcripts (docs/BENCHMARKS.md,
    // 2026-12-05); these numerics are what the parity tests pin down.
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor series of e^r for |r| <= ln2/2, Horner form.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    (n, p)
}

/// `e^x` for one value; inlined into the SIMD loops below.
#[inline(always)]
fn exp1(x: f32) -> f32 {
    let (n, p) = exp_parts(x);
    // 2^n from n's bits: adding 1.5·2^23 leaves the integer n in the low
    // mantissa bits (n is already integral, |n| ≤ 127), so the biased
    // exponent is an integer subtraction away. Bit-identical to
    // `(n as i32 + 127) << 23`, but `as i32` (saturating, NaN → 0) compiled
    // to 16 scalar conversions per vector, the largest cost of the encoder
    // softmax; this stays in vector registers.
    const MAGIC: f32 = 12_582_912.0;
    let biased = (n + MAGIC).to_bits().wrapping_sub(0x4B40_0000 - 127);
    f32::from_bits(biased << 23) * p
}

/// erf-GELU of one value: `0.5·x·(1 + erf(x/√2))`.
#[inline(always)]
fn gelu1(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let az = z.abs();
    let t = 1.0 / (1.0 + P * az);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf_abs = 1.0 - poly * exp1(-az * az);
    let erf = erf_abs.copysign(z);
    0.5 * x * (1.0 + erf)
}

/// The largest value of a row (`-inf` for an empty or all-NaN row).
///
/// In 16 independent lanes: a scalar fold is one dependent `maxss` per
/// element (4 cycles each), which made the max pass of a 1500-key encoder
/// softmax row cost more than its exponentials. The maximum does not
/// depend on the order, so the result is the fold's bit for bit; NaNs are
/// skipped as `f32::max` skips them.
#[inline(always)]
fn max_impl(x: &[f32]) -> f32 {
    const L: usize = 16;
    let mut m = [f32::NEG_INFINITY; L];
    let chunks = x.chunks_exact(L);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
    for c in chunks {
        for l in 0..L {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    m.iter().fold(tail, |a, &v| if v > a { v } else { a })
}

#[inline(always)]
fn softmax_impl(x: &mut [f32]) {
    let max = max_impl(x);
    const L: usize = 16;
    let mut acc = [0f32; L];
    let mut chunks = x.chunks_exact_mut(L);
    for c in &mut chunks {
        for l in 0..L {
            c[l] = exp1(c[l] - max);
            acc[l] += c[l];
        }
    }
    let mut sum: f32 = 0.0;
    for v in chunks.into_remainder() {
        *v = exp1(*v - max);
        sum += *v;
    }
    sum += acc.iter().sum::<f32>();
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

#[inline(always)]
fn sum_exp_impl(x: &[f32], shift: f32) -> f32 {
    const L: usize = 16;
    let mut acc = [0f32; L];
    let chunks = x.chunks_exact(L);
    let tail: f32 = chunks.remainder().iter().map(|&v| exp1(v - shift)).sum();
    for c in chunks {
        for l in 0..L {
            acc[l] += exp1(c[l] - shift);
        }
    }
    tail + acc.iter().sum::<f32>()
}

#[inline(always)]
fn gelu_impl(x: &mut [f32]) {
    // Explicit 16-value chunks: a plain loop is vectorised 64 values at a
    // time with a scalar remainder, so the int8 epilogue's 16-column tiles
    // ran entirely on the scalar path (a division per value).
    const L: usize = 16;
    let mut chunks = x.chunks_exact_mut(L);
    for c in &mut chunks {
        for v in c.iter_mut() {
            *v = gelu1(*v);
        }
    }
    chunks
        .into_remainder()
        .iter_mut()
        .for_each(|v| *v = gelu1(*v));
}

/// erf-GELU in place, inlined into the caller and compiled for the caller's
/// target features: for kernels already built per ISA (the int8 epilogue),
/// where a dispatching call per 16-value tile row costs more than the
/// values. Same results as [`gelu`] (the same operations in the same order).
#[inline(always)]
pub fn gelu_inline(x: &mut [f32]) {
    gelu_impl(x)
}

/// `pub fn $name` running `$imp` compiled for AVX-512 (`$avx512`), for
/// AVX2 + FMA (`$avx2`) or for the baseline: the widest this CPU (and
/// `VKW_CPU_ISA`) allows. The lanes are explicit in the `_impl` sources (16
/// independent accumulators) and no operation is fused or reordered, so
/// every build gives the same bits, only wider (a test compares them).
macro_rules! multiversioned {
    (
        $(#[$doc:meta])*
        pub fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?
            => $imp:ident, $avx2:ident, $avx512:ident
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($arg: $ty),*) $(-> $ret)? {
            $imp($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn $avx512($($arg: $ty),*) $(-> $ret)? {
            $imp($($arg),*)
        }

        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if has_avx512() {
                // SAFETY: the CPU features were checked.
                return unsafe { $avx512($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                // SAFETY: the CPU features were checked.
                return unsafe { $avx2($($arg),*) };
            }
            $imp($($arg),*)
        }
    };
}

multiversioned! {
    /// `Σ exp(x − shift)` over a row (log-softmax of 51k-token logits in
    /// decoding). Entries at `-inf` contribute nothing measurable.
    pub fn sum_exp(x: &[f32], shift: f32) -> f32 => sum_exp_impl, sum_exp_avx2, sum_exp_avx512
}

multiversioned! {
    /// Softmax of one row, in place.
    pub fn softmax(x: &mut [f32]) => softmax_impl, softmax_avx2, softmax_avx512
}

multiversioned! {
    /// The largest value of a row, NaNs skipped (`-inf` for an empty or
    /// all-NaN row): `fold(f32::NEG_INFINITY, f32::max)` bit for bit, in
    /// vector lanes (the fold is one dependent `maxss` per value; decoding
    /// takes several maxima of each 51,865-token logit row per step).
    pub fn max(x: &[f32]) -> f32 => max_impl, max_avx2, max_avx512
}

multiversioned! {
    /// erf-GELU, in place.
    pub fn gelu(x: &mut [f32]) => gelu_impl, gelu_avx2, gelu_avx512
}

/// Whether the AVX-512 builds can run: AVX-512F is present and
/// `VKW_CPU_ISA=avx2` does not cap the CPU kernels at AVX2 (detected once).
/// Every AVX-512 path of the CPU backend asks here, so the cap runs an
/// AVX-512 machine as an AVX2-only one (Zen 2/3, most laptops) for
/// benchmarking and testing those paths.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| has_avx2() && !avx2_cap() && std::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether `VKW_CPU_ISA=avx2` caps the CPU kernels at AVX2 + FMA (no
/// AVX-512, no AVX-VNNI), read once.
pub fn avx2_cap() -> bool {
    static CAP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| std::env::var("VKW_CPU_ISA").is_ok_and(|v| v.eq_ignore_ascii_case("avx2")))
}

/// Whether the CPU runs the AVX2+FMA kernels (shared by every multiversioned
/// kernel of the CPU backend).
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp1(x)) - want) / want).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "max relative error {worst}");
    }

    #[test]
    fn gelu_matches_libm_erf() {
        let mut worst = 0f32;
        let mut x = -10.0f32;
        while x < 10.0 {
            let want = 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
            worst = worst.max((gelu1(x) - want).abs());
            x += 0.001;
        }
        assert!(worst < 1e-6, "max abs error {worst}");
        let mut v: Vec<f32> = (0..100).map(|i| i as f32 / 10.0 - 5.0).collect();
        let w: Vec<f32> = v.iter().map(|&x| gelu1(x)).collect();
        gelu(&mut v);
        assert_eq!(v, w);
    }

    #[test]
    fn sum_exp_matches_exact() {
        let v: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).cos() * 10.0).collect();
        let want: f64 = v.iter().map(|&x| f64::from(x - 10.0).exp()).sum();
        let got = f64::from(sum_exp(&v, 10.0));
        assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
    }

    // Only x86-64 has several builds of these kernels.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_build_gives_identical_bits() {
        let v: Vec<f32> = (0..1037).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        let mut a = v.clone();
        softmax_impl(&mut a);
        let mut g = v.clone();
        gelu_impl(&mut g);
        let s = sum_exp_impl(&v, 3.0);
        #[cfg(target_arch = "x86_64")]
        {
            let mut builds: Vec<(&str, Vec<f32>, Vec<f32>, f32)> = Vec::new();
            if has_avx2() {
                let (mut b, mut h) = (v.clone(), v.clone());
                // SAFETY: features checked.
                let t = unsafe {
                    softmax_avx2(&mut b);
                    gelu_avx2(&mut h);
                    sum_exp_avx2(&v, 3.0)
                };
                builds.push(("avx2", b, h, t));
            }
            if has_avx512() {
                let (mut b, mut h) = (v.clone(), v.clone());
                // SAFETY: features checked.
                let t = unsafe {
                    softmax_avx512(&mut b);
                    gelu_avx512(&mut h);
                    sum_exp_avx512(&v, 3.0)
                };
                builds.push(("avx512", b, h, t));
            }
            for (name, b, h, t) in builds {
                assert_eq!(a, b, "softmax {name}");
                assert_eq!(g, h, "gelu {name}");
                assert_eq!(s.to_bits(), t.to_bits(), "sum_exp {name}");
            }
        }
    }

    #[test]
    fn exp_scaling_matches_the_integer_cast() {
        // The power of two built from n's bits equals the `as i32` one for
        // every n the clamp allows.
        for n in -126..=127 {
            let nf = n as f32;
            let want = f32::from_bits(((n + 127) as u32) << 23);
            let got = f32::from_bits(
                (nf + 12_582_912.0)
                    .to_bits()
                    .wrapping_sub(0x4B40_0000 - 127)
                    << 23,
            );
            assert_eq!(got.to_bits(), want.to_bits(), "n={n}");
        }
        assert!(exp1(f32::NAN).is_nan());
        // And exp1 as a whole, against the same polynomial with the cast.
        let cast = |x: f32| {
            let (n, p) = exp_parts(x);
            f32::from_bits(((n as i32 + 127) as u32) << 23) * p
        };
        let mut x = -100.0f32;
        while x < 100.0 {
            assert_eq!(exp1(x).to_bits(), cast(x).to_bits(), "x={x}");
            x += 0.0071;
        }
        for x in [f32::NEG_INFINITY, f32::INFINITY, -87.0, 88.0, 0.0, -0.0] {
            assert_eq!(exp1(x).to_bits(), cast(x).to_bits(), "x={x}");
        }
    }

    #[test]
    fn lane_max_is_the_fold_bit_for_bit() {
        // `max_impl` as built here and `max` as dispatched (this CPU's ISA).
        for n in [0, 1, 15, 16, 17, 100, 1500, 51_865] {
            let mut v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.71).sin() * 30.0).collect();
            let fold = |v: &[f32]| v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let check = |v: &[f32], what: &str| {
                assert_eq!(max_impl(v).to_bits(), fold(v).to_bits(), "n={n}{what}");
                assert_eq!(max(v).to_bits(), fold(v).to_bits(), "n={n}{what} (max)");
            };
            check(&v, "");
            if n > 3 {
                v[n / 2] = f32::NAN;
                v[1] = f32::NEG_INFINITY;
                check(&v, " with NaN");
                v.iter_mut().for_each(|x| *x = f32::NAN);
                check(&v, " all NaN");
            }
        }
    }

    #[test]
    fn softmax_matches_exact() {
        let mut v: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 20.0).collect();
        let max = v.iter().cloned().fold(f32::MIN, f32::max);
        let z: f64 = v.iter().map(|&x| f64::from(x - max).exp()).sum();
        let want: Vec<f64> = v.iter().map(|&x| f64::from(x - max).exp() / z).collect();
        softmax(&mut v);
        for (a, b) in v.iter().zip(&want) {
            assert!((f64::from(*a) - b).abs() < 1e-7, "{a} vs {b}");
        }
    }
}
