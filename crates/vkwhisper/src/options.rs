//! What one transcription asks for.

use vkw_decode::{CancelToken, DecodeOptions};
use vkw_vad::VadOptions;

/// Pieces of at most this many seconds in batched mode (FW's `chunk_length`).
const CHUNK_SECONDS: f64 = 30.0;

/// The options of one [`crate::Engine::transcribe`] call, for every mode:
/// sequential or batched, with or without the VAD.
///
/// * `decoding`: faster-whisper 1.2.1's `transcribe` keyword arguments with
///   its defaults (beam size 5, the temperature ladder, thresholds, prompts,
///   word timestamps, …).
/// * `vad`: sequential mode: `Some` is faster-whisper's `vad_filter=True`
///   with these `vad_parameters` (speech only, times on the original
///   audio). Batched mode always cuts pieces with the VAD, as
///   `BatchedInferencePipeline` does: `None` means the pipeline's own
///   defaults (`VadOptions(max_speech_duration_s=30,
///   min_silence_duration_ms=160)`), `Some(o)` means `o` with
///   `max_speech_duration_s` forced to 30 s.
/// * `batch`: `Some(n)` is faster-whisper's `BatchedInferencePipeline` with
///   `batch_size = n` (see [`crate::Engine::transcribe`]).
/// * `cancel`: a token another thread can cancel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TranscribeOptions {
    /// faster-whisper's decoding options.
    pub decoding: DecodeOptions,
    /// Voice activity detection (see the type's documentation).
    pub vad: Option<VadOptions>,
    /// Batched mode with this batch size.
    pub batch: Option<usize>,
    /// Stops the call from another thread.
    pub cancel: Option<CancelToken>,
    /// Take turns at the engine's concurrency limit ahead of every
    /// non-urgent call (live streams: a pass must not wait behind the
    /// windows of queued file jobs).
    pub urgent: bool,
}

impl TranscribeOptions {
    /// The defaults with these decoding options.
    pub fn new(decoding: DecodeOptions) -> Self {
        Self {
            decoding,
            ..Self::default()
        }
    }

    /// faster-whisper's `BatchedInferencePipeline.transcribe` defaults with
    /// `batch_size`: its decoding defaults differ from the sequential ones
    /// only in `without_timestamps = True`; the VAD uses the pipeline's own
    /// parameters unless [`TranscribeOptions::with_vad`] sets others.
    pub fn batched(batch_size: usize) -> Self {
        Self {
            decoding: DecodeOptions {
                without_timestamps: true,
                ..DecodeOptions::default()
            },
            batch: Some(batch_size),
            ..Self::default()
        }
    }

    /// With the VAD (`vad_filter=True`) and these parameters.
    pub fn with_vad(mut self, vad: VadOptions) -> Self {
        self.vad = Some(vad);
        self
    }

    /// Batched mode with `batch_size` windows decoded together, keeping the
    /// decoding options as they are (see [`TranscribeOptions::batched`] for
    /// the pipeline's defaults).
    pub fn with_batch(mut self, batch_size: usize) -> Self {
        self.batch = Some(batch_size);
        self
    }

    /// Cancellable through `token`.
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Ahead of non-urgent calls at the concurrency limit (see
    /// [`TranscribeOptions::urgent`]).
    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }

    /// The VAD options a run uses: the batched pipeline's own defaults, or
    /// the caller's with its 30 s pieces; `None` for sequential mode without
    /// the VAD.
    pub(crate) fn effective_vad(&self) -> Option<VadOptions> {
        match (self.batch, &self.vad) {
            (Some(_), None) => Some(VadOptions::batched(CHUNK_SECONDS)),
            (Some(_), Some(o)) => Some(VadOptions {
                max_speech_duration_s: CHUNK_SECONDS,
                ..o.clone()
            }),
            (None, o) => o.clone(),
        }
    }

    /// Whether the run needs the VAD model.
    pub(crate) fn needs_vad(&self) -> bool {
        let clips = self.decoding.clip_timestamps != [0.0];
        match self.batch {
            Some(_) => !clips,
            None => self.vad.is_some() && !clips,
        }
    }
}
