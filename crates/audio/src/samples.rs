//! 16 kHz mono samples as the log-mel, the VAD and the speech pieces read
//! them: f32, or the signed 16-bit values that stand for `x / 32768` (half
//! the memory of a long input; [`crate::load_audio_s16`]).

use std::borrow::Cow;
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

/// 16 kHz mono samples, owned or borrowed, as f32 or as the signed 16-bit
/// values that stand for `x / 32768` (what [`crate::load_audio_s16`]
/// returns: half the memory). This is what transcription takes: a decoded
/// file, a caller's slice, or 16-bit PCM from a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Pcm<'a> {
    /// f32 samples in [-1, 1).
    F32(Cow<'a, [f32]>),
    /// Signed 16-bit samples, read as `v / 32768`.
    S16(Cow<'a, [i16]>),
}

/// A borrowed view of a [`Pcm`], cheap to copy into hot loops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PcmRef<'a> {
    F32(&'a [f32]),
    S16(&'a [i16]),
}

impl PcmRef<'_> {
    #[inline]
    pub(crate) fn at(&self, j: usize) -> f32 {
        match self {
            PcmRef::F32(s) => s.at(j),
            PcmRef::S16(s) => s.at(j),
        }
    }
}

impl<'a> Pcm<'a> {
    /// A borrowed view of these samples.
    pub(crate) fn view(&self) -> PcmRef<'_> {
        match self {
            Pcm::F32(s) => PcmRef::F32(s),
            Pcm::S16(s) => PcmRef::S16(s),
        }
    }

    /// Duration in seconds at 16 kHz.
    pub fn duration(&self) -> f64 {
        self.len() as f64 / f64::from(crate::SAMPLE_RATE)
    }

    /// The same samples, owned (copied only when borrowed).
    pub fn into_owned(self) -> Pcm<'static> {
        match self {
            Pcm::F32(s) => Pcm::F32(Cow::Owned(s.into_owned())),
            Pcm::S16(s) => Pcm::S16(Cow::Owned(s.into_owned())),
        }
    }

    /// Only the sample `ranges` (in order, not overlapping, within the
    /// input), concatenated. Owned samples are compacted in place, so no
    /// second copy of a long input exists; borrowed ones are copied.
    pub fn keep_ranges(self, ranges: &[Range<usize>]) -> Pcm<'static> {
        fn keep<T: Copy>(v: Cow<'_, [T]>, ranges: &[Range<usize>]) -> Vec<T> {
            let n = v.len();
            let ordered = ranges
                .iter()
                .try_fold(0usize, |prev, r| {
                    (r.start >= prev && r.start <= r.end && r.end <= n).then_some(r.end)
                })
                .is_some();
            match v {
                Cow::Owned(mut v) if ordered => {
                    let mut w = 0;
                    for r in ranges {
                        v.copy_within(r.clone(), w);
                        w += r.len();
                    }
                    v.truncate(w);
                    v.shrink_to_fit();
                    v
                }
                v => ranges
                    .iter()
                    .flat_map(|r| v[r.start.min(n)..r.end.min(n)].iter().copied())
                    .collect(),
            }
        }
        match self {
            Pcm::F32(s) => Pcm::F32(Cow::Owned(keep(s, ranges))),
            Pcm::S16(s) => Pcm::S16(Cow::Owned(keep(s, ranges))),
        }
    }
}

impl Samples for Pcm<'_> {
    fn len(&self) -> usize {
        match self {
            Pcm::F32(s) => s.len(),
            Pcm::S16(s) => s.len(),
        }
    }

    #[inline]
    fn at(&self, j: usize) -> f32 {
        self.view().at(j)
    }

    fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>) {
        match self {
            Pcm::F32(s) => s.as_ref().extend_f32(range, out),
            Pcm::S16(s) => s.as_ref().extend_f32(range, out),
        }
    }
}

impl<'a> From<&'a [f32]> for Pcm<'a> {
    fn from(s: &'a [f32]) -> Self {
        Pcm::F32(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a [i16]> for Pcm<'a> {
    fn from(s: &'a [i16]) -> Self {
        Pcm::S16(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a Vec<f32>> for Pcm<'a> {
    fn from(s: &'a Vec<f32>) -> Self {
        Pcm::F32(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a Vec<i16>> for Pcm<'a> {
    fn from(s: &'a Vec<i16>) -> Self {
        Pcm::S16(Cow::Borrowed(s))
    }
}

impl From<Vec<f32>> for Pcm<'static> {
    fn from(s: Vec<f32>) -> Self {
        Pcm::F32(Cow::Owned(s))
    }
}

impl From<Vec<i16>> for Pcm<'static> {
    fn from(s: Vec<i16>) -> Self {
        Pcm::S16(Cow::Owned(s))
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

    #[test]
    fn keep_ranges_in_place_and_borrowed_agree() {
        let v: Vec<i16> = (0..100).collect();
        let ranges = [2..5, 5..9, 50..52];
        let want: Vec<i16> = vec![2, 3, 4, 5, 6, 7, 8, 50, 51];
        assert_eq!(
            Pcm::from(v.clone()).keep_ranges(&ranges),
            Pcm::from(want.clone())
        );
        assert_eq!(Pcm::from(&v).keep_ranges(&ranges), Pcm::from(want.clone()));
        // Out of order: copied, clipped to the input.
        let odd = [50..52, 2..5, 98..120];
        let got = Pcm::from(v.clone()).keep_ranges(&odd);
        assert_eq!(got, Pcm::from(vec![50i16, 51, 2, 3, 4, 98, 99]));
        assert_eq!(Pcm::from(v).keep_ranges(&[]).len(), 0);
    }
}
