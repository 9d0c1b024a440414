//! [`SegmentSink`]: where a transcription's results go, in ripgrep's `Sink`
//! style — every call can answer [`ControlFlow::Break`] to stop decoding
//! (a client went away, an output file failed).

use crate::{Segment, TranscriptionInfo};
use std::ops::ControlFlow;

/// How far a transcription has got, in seconds of the input's timeline.
/// Reported once per decoded window (or batch of windows); `done_s` never
/// decreases and the last report has `done_s == total_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Seconds of the input processed so far.
    pub done_s: f64,
    /// Duration of the input in seconds.
    pub total_s: f64,
}

impl Progress {
    /// `done_s / total_s` in `[0, 1]` (1 for an empty input).
    pub fn fraction(&self) -> f64 {
        if self.total_s > 0.0 {
            (self.done_s / self.total_s).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// A consumer of a transcription, called in order: [`SegmentSink::begin`]
/// once (the language and duration are known before the first window is
/// decoded), then [`SegmentSink::segment`] for each segment and
/// [`SegmentSink::progress`] after each window. Answering
/// [`ControlFlow::Break`] from any of them stops decoding; the transcription
/// then ends with a "stopped" error, so the caller knows not to treat what it
/// has as complete.
pub trait SegmentSink {
    /// The transcription's facts, before any segment.
    fn begin(&mut self, info: &TranscriptionInfo) -> ControlFlow<()> {
        let _ = info;
        ControlFlow::Continue(())
    }

    /// The next segment.
    fn segment(&mut self, segment: &Segment) -> ControlFlow<()>;

    /// Progress after a window.
    fn progress(&mut self, progress: Progress) -> ControlFlow<()> {
        let _ = progress;
        ControlFlow::Continue(())
    }
}

impl<S: SegmentSink + ?Sized> SegmentSink for &mut S {
    fn begin(&mut self, info: &TranscriptionInfo) -> ControlFlow<()> {
        (**self).begin(info)
    }
    fn segment(&mut self, segment: &Segment) -> ControlFlow<()> {
        (**self).segment(segment)
    }
    fn progress(&mut self, progress: Progress) -> ControlFlow<()> {
        (**self).progress(progress)
    }
}

impl<S: SegmentSink + ?Sized> SegmentSink for Box<S> {
    fn begin(&mut self, info: &TranscriptionInfo) -> ControlFlow<()> {
        (**self).begin(info)
    }
    fn segment(&mut self, segment: &Segment) -> ControlFlow<()> {
        (**self).segment(segment)
    }
    fn progress(&mut self, progress: Progress) -> ControlFlow<()> {
        (**self).progress(progress)
    }
}

/// Collects every segment.
impl SegmentSink for Vec<Segment> {
    fn segment(&mut self, segment: &Segment) -> ControlFlow<()> {
        self.push(segment.clone());
        ControlFlow::Continue(())
    }
}

/// A sink made of a closure over segments; see [`from_fn`].
pub struct FnSink<F>(F);

/// A sink that calls `f` for each segment; `f` answers whether to go on.
///
/// ```
/// use vkw_segments::{from_fn, ControlFlow, SegmentSink};
/// let mut texts = Vec::new();
/// let mut sink = from_fn(|s| {
///     texts.push(s.text.clone());
///     ControlFlow::Continue(())
/// });
/// # let _ = &mut sink;
/// ```
pub fn from_fn<F: FnMut(&Segment) -> ControlFlow<()>>(f: F) -> FnSink<F> {
    FnSink(f)
}

impl<F: FnMut(&Segment) -> ControlFlow<()>> SegmentSink for FnSink<F> {
    fn segment(&mut self, segment: &Segment) -> ControlFlow<()> {
        (self.0)(segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_fraction_is_clamped() {
        let p = |d, t| Progress {
            done_s: d,
            total_s: t,
        };
        assert_eq!(p(5.0, 10.0).fraction(), 0.5);
        assert_eq!(p(12.0, 10.0).fraction(), 1.0);
        assert_eq!(p(0.0, 0.0).fraction(), 1.0);
    }
}
