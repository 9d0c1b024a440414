//! From decoded audio of any rate and channel count to Whisper's 16 kHz mono input (spec §4.1):
//! FFmpeg's down-mix weights, the store for the 16-bit result, and the streaming mono
//! resampler for live input. The conversion itself is libswresample's (`swr.rs`).

use crate::swr::Polyphase;
use crate::SAMPLE_RATE;

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

/// Where decoded 16 kHz samples go, quantised to 16 bits (spec §4.1) as they
/// arrive: f32 (`int16 / 32768`, what faster-whisper hands the model) or the
/// int16 values themselves, half the memory for long inputs.
pub(crate) trait PcmStore: Default {
    /// Append 16-bit samples.
    fn extend_s16(&mut self, xs: &[i16]);
    /// From FFmpeg's s16 output.
    fn from_s16(s: Vec<i16>) -> Self;
    /// Apply an MP4 edit list (spec §4.1: what FFmpeg plays).
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self;
    /// Samples stored.
    fn len(&self) -> usize;
}

impl PcmStore for Vec<f32> {
    fn extend_s16(&mut self, xs: &[i16]) {
        self.extend(xs.iter().map(|&x| crate::s16_to_f32(x)));
    }
    fn from_s16(s: Vec<i16>) -> Self {
        s.iter().map(|&x| crate::s16_to_f32(x)).collect()
    }
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self {
        crate::mp4::apply(self, edit, rate)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl PcmStore for Vec<i16> {
    fn extend_s16(&mut self, xs: &[i16]) {
        self.extend_from_slice(xs);
    }
    fn from_s16(s: Vec<i16>) -> Self {
        s
    }
    fn edit(self, edit: crate::mp4::Edit, rate: f64) -> Self {
        crate::mp4::apply(self, edit, rate)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// Streaming sample-rate converter to 16 kHz for one mono signal: swresample's filter
/// (`swr.rs`), unquantised.
///
/// Output length follows FFmpeg/PyAV with a final flush (`ceil(n_in · 16000 / rate)` samples,
/// or one fewer where swresample's tail reflection falls short), time-aligned so that output
/// sample `j` sits at input time `j · rate / 16000`.
pub(crate) struct MonoResampler {
    /// `None` at 16 kHz (a pass-through).
    inner: Option<Polyphase>,
    out: Vec<f32>,
}

impl MonoResampler {
    /// A converter from `rate` Hz; at 16 kHz it is a pass-through.
    pub(crate) fn new(rate: u32) -> Result<Self, String> {
        if !(crate::MIN_SAMPLE_RATE..=crate::MAX_SAMPLE_RATE).contains(&rate) {
            return Err(format!(
                "cannot resample from {rate} Hz (supported: {}-{} Hz)",
                crate::MIN_SAMPLE_RATE,
                crate::MAX_SAMPLE_RATE
            ));
        }
        Ok(MonoResampler {
            inner: (rate != SAMPLE_RATE).then(|| Polyphase::new(rate)),
            out: Vec::new(),
        })
    }

    /// Feed more input samples.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<(), String> {
        match &mut self.inner {
            None => self.out.extend_from_slice(samples),
            Some(p) => p.push(samples, &mut self.out),
        }
        Ok(())
    }

    /// The output produced so far (16 kHz, not quantised).
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, f32> {
        self.out.drain(..)
    }

    /// Flush the resampler and return the 16 kHz samples not yet drained.
    pub(crate) fn finish(mut self) -> Result<Vec<f32>, String> {
        if let Some(p) = &mut self.inner {
            p.flush(&mut self.out);
        }
        Ok(self.out)
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
                let ceil = (n * 16000).div_ceil(rate as usize);
                assert!(out.len() == ceil || out.len() + 1 == ceil, "rate {rate}");
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
