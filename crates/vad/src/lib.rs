//! Silero VAD v6 as faster-whisper 1.2.1 runs it for `vad_filter=True`
//! (spec §8), without onnxruntime: the weights are read from the ONNX file's
//! initializers ([`onnx`]) and the network runs in Rust.
//!
//! Typical use (16 kHz mono samples, times in samples unless said otherwise):
//!
//! ```no_run
//! # fn main() -> Result<(), vkw_vad::VadError> {
//! use vkw_vad::{collect_chunks, SileroVad, SpeechTimestampsMap, VadOptions};
//! let vad = SileroVad::load(std::path::Path::new("silero_vad_v6.onnx"))?;
//! let samples: Vec<f32> = vec![0.0; 16_000];
//! // Speech segments of the original audio: Vec<SpeechChunk { start, end }>.
//! let chunks = vad.speech_timestamps(&samples, &VadOptions::default())?;
//! // Sequential path (§8.6): all speech in one piece...
//! let speech = collect_chunks(&samples, &chunks, f64::INFINITY).remove(0).audio;
//! // ...batched path (§9.3): pieces of at most 30 s, each with its `offset`.
//! let pieces = collect_chunks(&samples, &chunks, 30.0);
//! // Times in the concatenated speech → original times.
//! let map = SpeechTimestampsMap::new(&chunks);
//! let t = map.original_time(1.5, None, false);
//! # let _ = (speech, pieces, t); Ok(()) }
//! ```
//!
//! Segments from transcribing the concatenated speech are mapped back with
//! [`SpeechTimestampsMap::restore_segment`] (words by their midpoint's chunk).
#![deny(missing_docs)]

mod chunks;
mod net;
pub mod onnx;
mod stream;
mod timestamps;

use std::path::PathBuf;
use vkw_audio::Samples;

pub use chunks::{collect_chunks, concatenate_in_place, CollectedChunk, SpeechTimestampsMap};
pub use net::{SileroVad, WINDOW_SAMPLES};
pub use stream::VadStream;
pub use timestamps::{timestamps_from_probs, SpeechChunk, VadOptions};

/// Errors of loading or running the VAD.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The model file could not be read.
    #[error(
        "cannot read the VAD model {}: {source} (run `vkwhisper models pull vad`)",
        vkw_guard::path(path)
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not the Silero VAD v6 ONNX file.
    #[error(
        "{}: {detail} (run `vkwhisper models pull vad` to reinstall it)",
        vkw_guard::path(path)
    )]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The ONNX bytes are malformed or hold other weights.
    #[error("VAD model: {0}")]
    Format(String),
    /// A [`VadOptions`] value is out of range.
    #[error("{0}")]
    InvalidOption(String),
}

impl SileroVad {
    /// faster-whisper's `get_speech_timestamps` (§8.3–§8.5): the speech
    /// segments of `samples` (16 kHz mono, f32 or i16), in samples of the
    /// input.
    pub fn speech_timestamps<S: Samples + ?Sized>(
        &self,
        samples: &S,
        opts: &VadOptions,
    ) -> Result<Vec<SpeechChunk>, VadError> {
        opts.validate()?;
        let probs = self.speech_probs(samples);
        Ok(timestamps_from_probs(&probs, samples.len(), opts))
    }
}
