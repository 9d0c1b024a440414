//! From decoded audio of any rate and channel count to Whisper's 16 kHz mono input (spec §4.1):
//! FFmpeg-style downmix, `rubato` resampling, and the signed 16-bit quantisation that
//! faster-whisper's PyAV decoding applies.

use rubato::{FftFixedInOut, Resampler};

use crate::SAMPLE_RATE;

/// Input frames per resampler call. The FFT resampler's anti-aliasing filter is as long as one
/// chunk, so this also sets its quality: about 1300 taps at 44.1 kHz, far steeper than needed.
const RESAMPLE_CHUNK: usize = 1024;

/// FFmpeg's default `-3 dB` centre/surround mix level (libswresample `clev`/`slev`).
const MINUS_3DB: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Mono downmix weights for `count` channels whose positions are the bits of `mask`
/// (WAVE/symphonia channel-mask order), mirroring libswresample's default matrix for a mono
/// output followed by its normalisation for integer output (row sum scaled down to 1).
///
/// * mono: 1; stereo: 0.5 / 0.5 (FFmpeg: √½ each, then normalised), whatever the mask says,
///   because FFmpeg assumes the default layout for one or two channels;
/// * centre 1 (clev·√2); front left/right and their centre/wide variants √½;
///   back/side/rear-centre channels slev·√½ = ½; LFE 0 (FFmpeg's default `lfe_mix_level`);
///   height channels √½;
/// * without a usable mask, an equal average.
pub(crate) fn downmix_weights(count: usize, mask: Option<u32>) -> Vec<f64> {
    match count {
        0 => return Vec::new(),
        1 => return vec![1.0],
        2 => return vec![0.5, 0.5],
        _ => {}
    }
    let equal = vec![1.0 / count as f64; count];
    let Some(mask) = mask.filter(|m| m.count_ones() as usize == count) else {
        return equal;
    };
    let mut weights = Vec::with_capacity(count);
    for bit in (0..32).filter(|b| mask & (1u32 << b) != 0) {
        let w = match 1u32 << bit {
            0x4 => 1.0,                          // front centre
            0x8 | 0x0200_0000 => 0.0,            // LFE1, LFE2
            0x10 | 0x20 | 0x100 | 0x200 | 0x400  // rear L/R, rear centre, side L/R
            | 0x4_0000 | 0x8_0000 => MINUS_3DB * MINUS_3DB, // rear L/R centre
            _ => MINUS_3DB,                      // fronts, wides, heights
        };
        weights.push(w);
    }
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 {
        return equal;
    }
    if sum > 1.0 {
        for w in &mut weights {
            *w /= sum;
        }
    }
    weights
}

/// Signed 16-bit quantisation as FFmpeg's float→s16 conversion does it (`lrintf(x·32768)`,
/// round half to even, then clip), divided by 32768 like faster-whisper (spec §4.1).
pub(crate) fn quantise_s16(x: f32) -> f32 {
    let q = (f64::from(x) * 32768.0)
        .round_ties_even()
        .clamp(-32768.0, 32767.0);
    (q / 32768.0) as f32
}

/// Where decoded 16 kHz samples go, quantised to 16 bits (spec §4.1) as they
/// arrive: f32 (`int16 / 32768`, what faster-whisper hands the model) or the
/// int16 values themselves, half the memory for long inputs.
pub(crate) trait PcmStore: Default {
    /// Quantise and append.
    fn extend_quantised(&mut self, xs: &[f32]);
    /// From FFmpeg's s16 output.
    fn from_s16(s: Vec<i16>) -> Self;
    /// Apply an MP4 edit list (spec §4.1: what FFmpeg plays).
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self;
}

impl PcmStore for Vec<f32> {
    fn extend_quantised(&mut self, xs: &[f32]) {
        self.extend(xs.iter().map(|&x| quantise_s16(x)));
    }
    fn from_s16(s: Vec<i16>) -> Self {
        s.iter().map(|&x| crate::s16_to_f32(x)).collect()
    }
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self {
        crate::mp4::apply(self, edit, rate)
    }
}

impl PcmStore for Vec<i16> {
    fn extend_quantised(&mut self, xs: &[f32]) {
        // quantise_s16 returns k / 32768 exactly, so k is recovered exactly.
        self.extend(xs.iter().map(|&x| (quantise_s16(x) * 32768.0) as i16));
    }
    fn from_s16(s: Vec<i16>) -> Self {
        s
    }
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self {
        crate::mp4::apply(self, edit, rate)
    }
}

/// Streaming sample-rate converter to 16 kHz for one mono signal.
///
/// Output length follows FFmpeg/PyAV with a final flush: `ceil(n_in · 16000 / rate)` samples,
/// time-aligned so that output sample `j` sits at input time `j · rate / 16000`.
pub(crate) struct MonoResampler {
    inner: Option<Inner>,
    /// Input samples seen so far (for the output length).
    n_in: u64,
    rate: u32,
    out: Vec<f32>,
    /// Output samples already handed out by [`MonoResampler::drain`].
    emitted: usize,
}

struct Inner {
    rs: FftFixedInOut<f32>,
    pending: Vec<f32>,
    out_buf: Vec<Vec<f32>>,
    /// Output samples still to be dropped to undo the resampler's delay.
    skip: usize,
}

impl MonoResampler {
    /// A converter from `rate` Hz; at 16 kHz it is a pass-through.
    pub(crate) fn new(rate: u32) -> Result<Self, String> {
        let inner = if rate == SAMPLE_RATE {
            None
        } else {
            // The FFT resampler works in blocks of k·(rate/g) input samples, g = gcd(rate,
            // 16000), with a sinc filter centred on sample `block / 2` (integer division). An
            // even k makes both block lengths even, so the filter centre falls exactly on the
            // reported delay of `out_block / 2`; an odd block would shift the output by a
            // fraction of a sample (e.g. 0.18 at 44.1 kHz), costing ~20 dB of fidelity.
            let unit = rate as usize / gcd(rate as usize, SAMPLE_RATE as usize);
            let blocks = RESAMPLE_CHUNK.div_ceil(unit).next_multiple_of(2);
            let rs =
                FftFixedInOut::<f32>::new(rate as usize, SAMPLE_RATE as usize, blocks * unit, 1)
                    .map_err(|e| format!("cannot resample from {rate} Hz: {e}"))?;
            let skip = rs.output_delay();
            let out_buf = rs.output_buffer_allocate(true);
            Some(Inner {
                rs,
                pending: Vec::new(),
                out_buf,
                skip,
            })
        };
        Ok(MonoResampler {
            inner,
            n_in: 0,
            rate,
            out: Vec::new(),
            emitted: 0,
        })
    }

    /// The input rate this converter was made for.
    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    /// Feed more input samples.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<(), String> {
        self.n_in += samples.len() as u64;
        match &mut self.inner {
            None => self.out.extend_from_slice(samples),
            Some(inner) => {
                inner.pending.extend_from_slice(samples);
                let chunk = inner.rs.input_frames_next();
                let mut used = 0;
                while inner.pending.len() - used >= chunk {
                    inner.run(used, chunk, &mut self.out)?;
                    used += chunk;
                }
                inner.pending.drain(..used);
            }
        }
        Ok(())
    }

    /// The output produced so far (16 kHz, not yet quantised), handed out so
    /// that the caller can store it compactly while decoding goes on.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, f32> {
        self.emitted += self.out.len();
        self.out.drain(..)
    }

    /// Flush the resampler and return the 16 kHz samples not yet drained
    /// (not yet quantised).
    pub(crate) fn finish(mut self) -> Result<Vec<f32>, String> {
        let rate = u64::from(self.rate.max(1));
        let total = (self.n_in * u64::from(SAMPLE_RATE)).div_ceil(rate) as usize;
        let target = total.saturating_sub(self.emitted);
        if let Some(inner) = &mut self.inner {
            // Zero-pad the tail and keep flushing until the delayed output is all out.
            let chunk = inner.rs.input_frames_next();
            while self.out.len() < target {
                let have = inner.pending.len();
                inner.pending.resize(have.max(chunk), 0.0);
                inner.run(0, chunk, &mut self.out)?;
                inner.pending.drain(..chunk);
            }
        }
        self.out.truncate(target);
        Ok(self.out)
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Inner {
    fn run(&mut self, start: usize, len: usize, out: &mut Vec<f32>) -> Result<(), String> {
        let input = [&self.pending[start..start + len]];
        let (_, produced) = self
            .rs
            .process_into_buffer(&input, &mut self.out_buf, None)
            .map_err(|e| format!("resampling failed: {e}"))?;
        let produced = &self.out_buf[0][..produced];
        let drop = self.skip.min(produced.len());
        self.skip -= drop;
        out.extend_from_slice(&produced[drop..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_basic_layouts() {
        assert_eq!(downmix_weights(1, Some(0x1)), vec![1.0]);
        assert_eq!(downmix_weights(2, None), vec![0.5, 0.5]);
        // 5.1 (FL FR FC LFE BL BR): √½, √½, 1, 0, ½, ½ normalised by their sum.
        let w = downmix_weights(6, Some(0x3f));
        let sum = 2.0 * MINUS_3DB + 1.0 + 1.0;
        let expect = [MINUS_3DB, MINUS_3DB, 1.0, 0.0, 0.5, 0.5].map(|x| x / sum);
        assert!(
            w.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-12),
            "{w:?}"
        );
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Mask that does not match the channel count: plain average.
        assert_eq!(downmix_weights(4, Some(0x3)), vec![0.25; 4]);
    }

    #[test]
    fn quantise_rounds_and_clips() {
        assert_eq!(quantise_s16(1.0), 32767.0 / 32768.0);
        assert_eq!(quantise_s16(-2.0), -1.0);
        assert_eq!(quantise_s16(0.5 / 32768.0), 0.0); // ties to even
        assert_eq!(quantise_s16(1.5 / 32768.0), 2.0 / 32768.0);
        for i in [-32768i32, -1, 0, 1, 12345, 32767] {
            let x = i as f32 / 32768.0;
            assert_eq!(quantise_s16(x), x);
        }
    }

    fn resample(rate: u32, input: &[f32], pieces: usize) -> Vec<f32> {
        let mut rs = MonoResampler::new(rate).expect("resampler");
        let mut out = Vec::new();
        for (i, part) in input
            .chunks(input.len().div_ceil(pieces).max(1))
            .enumerate()
        {
            rs.push(part).expect("push");
            // Draining some of the way (as the decoder does) changes nothing.
            if i % 2 == 1 {
                out.extend(rs.drain());
            }
        }
        out.extend(rs.finish().expect("finish"));
        out
    }

    #[test]
    fn resampled_length_and_alignment() {
        for rate in [8000u32, 22050, 44100, 48000, 11025] {
            let n = rate as usize * 2 + 7;
            // A 440 Hz tone: after resampling it must still be the same tone, in phase.
            let f = 440.0;
            let tone = |t: f64| (2.0 * std::f64::consts::PI * f * t).sin() * 0.5;
            let input: Vec<f32> = (0..n)
                .map(|i| tone(i as f64 / rate as f64) as f32)
                .collect();
            for pieces in [1, 7] {
                let out = resample(rate, &input, pieces);
                assert_eq!(
                    out.len(),
                    (n * 16000).div_ceil(rate as usize),
                    "rate {rate}"
                );
                // Away from the edges the error is tiny.
                let err = out[1000..out.len() - 1000]
                    .iter()
                    .enumerate()
                    .map(|(j, &y)| (f64::from(y) - tone((j + 1000) as f64 / 16000.0)).abs())
                    .fold(0.0, f64::max);
                assert!(err < 1e-3, "rate {rate}: max error {err}");
            }
        }
    }

    #[test]
    fn passthrough_at_16k() {
        let input: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        assert_eq!(resample(16000, &input, 3), input);
        assert!(resample(44100, &[], 1).is_empty());
    }
}
