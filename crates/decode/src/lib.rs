//! faster-whisper's decoding on top of a [`vkw_backend::Backend`]: the
//! per-step logit rules (spec §6.3–§6.5), greedy/sampling (§6.7) and beam
//! search (§6.8) as CTranslate2 runs them, the temperature fallback (§6.9),
//! prompts (§6.1–§6.2), language detection (§6.13), the window loop
//! (§6.10–§6.12), word timestamps (§7), `vad_filter` (§8.6) and the batched
//! pipeline (§9.3).
//!
//! One [`Pipeline`] runs every mode: it is prepared with the audio and a
//! [`Request`] (the language is known then), and stepped one window (or one
//! batch of windows) at a time. The `vkwhisper` crate wraps it for callers.
#![deny(missing_docs)]

mod cancel;
mod error;
mod fallback;
mod generate;
mod language;
mod logits;
mod options;
mod pipeline;
mod prompt;
mod search;
mod split;

mod words;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod search_tests;

pub use cancel::CancelToken;
pub use error::DecodeError;
pub(crate) use fallback::compression_ratio;
pub use options::{parse_clip_timestamps, DecodeOptions, Task, MAX_BEAMS};
pub use pipeline::{
    detect_language, LanguageOutcome, Pipeline, Request, VadFilter, MAX_BATCH, WINDOW_FRAMES,
};
pub use prompt::MAX_LENGTH;
pub use words::{word_anomaly_score, words_look_hallucinated};
