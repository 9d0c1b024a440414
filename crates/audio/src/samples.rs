//! 16 kHz mono samples as the log-mel, the VAD and the speech pieces read
//! them: f32, or the signed 16-bit values that stand for `x / 32768` (half
//! the memory of a long input; [`crate::load_audio_s16`]).

use std::ops::Range;

/// Read access to 16 kHz mono samples, whatever they are stored as.
pub trait Samples: Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `j` as f32 (0 past the end). An i16 value `v` reads as
    /// `v / 32768` ([`s16_to_f32`]), exactly the f32 [`crate::load_audio`] gives.
    fn at(&self, j: usize) -> f32;

    /// Appends samples `range` (clipped to the input) as f32 to `out`.
    fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>);
}

/// The f32 a 16-bit sample stands for: `v / 32768`, exactly the value
/// [`crate::load_audio`] returns for it (spec §4.1).
#[inline]
pub fn s16_to_f32(v: i16) -> f32 {
    f32::from(v) / 32768.0
}

fn clip(range: Range<usize>, n: usize) -> Range<usize> {
    let end = range.end.min(n);
    range.start.min(end)..end
}

impl Samples for [f32] {
    fn len(&self) -> usize {
        <[f32]>::len(self)
    }

    #[inline]
    fn at(&self, j: usize) -> f32 {
        self.get(j).copied().unwrap_or(0.0)
    }

    fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>) {
        out.extend_from_slice(&self[clip(range, self.len())]);
    }
}

impl Samples for [i16] {
    fn len(&self) -> usize {
        <[i16]>::len(self)
    }

    #[inline]
    fn at(&self, j: usize) -> f32 {
        self.get(j).map_or(0.0, |&v| s16_to_f32(v))
    }

    fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>) {
        out.extend(self[clip(range, self.len())].iter().map(|&v| s16_to_f32(v)));
    }
}

impl<T: Sync> Samples for Vec<T>
where
    [T]: Samples,
{
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    #[inline]
    fn at(&self, j: usize) -> f32 {
        self.as_slice().at(j)
    }

    fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>) {
        self.as_slice().extend_f32(range, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_reads_as_the_f32_load_audio_gives() {
        let s: Vec<i16> = vec![-32768, -1, 0, 1, 32767];
        let f: Vec<f32> = s.iter().map(|&v| f32::from(v) / 32768.0).collect();
        for j in 0..6 {
            assert_eq!(s.at(j).to_bits(), f.at(j).to_bits());
        }
        assert_eq!(s.at(9), 0.0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.extend_f32(1..9, &mut a);
        f.extend_f32(1..9, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        assert!(Vec::<i16>::new().is_empty());
    }
}
