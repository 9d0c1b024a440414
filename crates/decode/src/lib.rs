//! faster-whisper's decoding on top of a [`vkw_backend::Backend`]: the
//! per-step logit rules (spec §6.3–§6.5), greedy/sampling (§6.7) and beam
//! search (§6.8) as CTranslate2 runs them, the temperature fallback (§6.9),
//! prompts (§6.1–§6.2), language detection (§6.13) and the window loop
//! (§6.10–§6.12).
//!
//! The entry point is [`Transcriber`]; segments are delivered through a
//! callback as each 30 s window finishes.
#![deny(missing_docs)]

mod batched;
mod beam;
mod error;
mod fallback;
mod generate;
mod greedy;
mod language;
mod logits;
mod options;
mod prompt;
mod transcribe;
mod vad_filter;
pub mod words;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod search_tests;

pub use batched::{BatchChunk, ChunkFeatures};
pub use error::DecodeError;
pub use fallback::compression_ratio;
pub use greedy::Rng;
pub use options::{clip_frames, parse_clip_timestamps, Task, TranscribeOptions};
pub use prompt::MAX_LENGTH;
pub use transcribe::{Transcriber, WINDOW_FRAMES};
pub use vad_filter::VadFilter;
pub use vkw_vad::{SileroVad, SpeechChunk, VadOptions};
