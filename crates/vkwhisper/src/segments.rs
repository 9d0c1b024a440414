//! [`Segments`]: a transcription decoded lazily, window by window.

use crate::{Engine, Error, Result};
use std::collections::VecDeque;
use vkw_backend::any::AnyBackend;
use vkw_decode::{CancelToken, Pipeline};
use vkw_segments::{Progress, Segment, TranscriptionInfo};

/// The segments of a transcription, produced as they are asked for: each
/// call to `next` decodes another window only when the segments of the
/// previous one are used up. Dropping it stops decoding (nothing runs in the
/// background). Made by [`Engine::segments`].
///
/// After an error the iterator ends.
pub struct Segments<'a> {
    engine: Engine,
    pipeline: Pipeline<'a, AnyBackend>,
    cancel: CancelToken,
    urgent: bool,
    buffer: VecDeque<Segment>,
    failed: bool,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(
        engine: Engine,
        pipeline: Pipeline<'a, AnyBackend>,
        cancel: CancelToken,
        urgent: bool,
    ) -> Self {
        Self {
            engine,
            pipeline,
            cancel,
            urgent,
            buffer: VecDeque::new(),
            failed: false,
        }
    }

    /// The transcription's facts: language (detected before the first
    /// window), its probability, the duration and the duration after VAD.
    pub fn info(&self) -> &TranscriptionInfo {
        self.pipeline.info()
    }

    /// The speech chunks (samples of the input) the VAD kept, when it ran:
    /// faster-whisper's `get_speech_timestamps`, which its batched pipeline
    /// reports as `clip_timestamps`.
    pub fn speech_chunks(&self) -> Option<&[vkw_vad::SpeechChunk]> {
        self.pipeline.speech_chunks()
    }

    /// How far decoding has got (seconds of the input).
    pub fn progress(&self) -> Progress {
        self.pipeline.progress()
    }

    /// Whether every window has been decoded (buffered segments may remain).
    pub fn is_done(&self) -> bool {
        self.pipeline.is_done()
    }

    /// The token that cancels this transcription (the caller's, or one made
    /// for it).
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Decode the next window (or batch of windows) and return its
    /// segments, bypassing the buffer; `None` when done.
    pub fn next_window(&mut self) -> Result<Option<Vec<Segment>>> {
        if self.failed {
            return Ok(None);
        }
        let pipeline = &mut self.pipeline;
        let r = self
            .engine
            .run(&self.cancel, self.urgent, || pipeline.step());
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

impl Iterator for Segments<'_> {
    type Item = Result<Segment, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(s) = self.buffer.pop_front() {
                return Some(Ok(s));
            }
            match self.next_window() {
                Ok(Some(window)) => self.buffer.extend(window),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
