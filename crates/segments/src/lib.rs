//! Transcript records and the sink they stream to.
//!
//! This crate sits between decoding and the output sinks in the data flow:
//! decoding emits [`Segment`]s one window at a time into a [`SegmentSink`]
//! (the writers, a server's response, a caller's closure); any sink can stop
//! the transcription by answering [`ControlFlow::Break`].
#![deny(missing_docs)]

mod sink;

pub use sink::{from_fn, FnSink, Progress, SegmentSink};
pub use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

/// One word with its timing (word-timestamp mode, spec §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// The word text, leading space kept.
    pub word: String,
    /// Mean probability of the word's tokens.
    pub probability: f64,
}

/// One transcribed segment, as faster-whisper's `Segment` (spec §6.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// 1-based segment number.
    pub id: usize,
    /// Start of the window the segment was decoded in, in mel frames (100/s).
    pub seek: usize,
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Decoded text with its leading space.
    pub text: String,
    /// Token ids including timestamp tokens (no SOT/EOT).
    pub tokens: Vec<u32>,
    /// Sampling temperature of the window's accepted result.
    pub temperature: f32,
    /// Average log-probability of the window's result.
    pub avg_logprob: f64,
    /// Compression ratio of the window's text.
    pub compression_ratio: f64,
    /// Probability of the no-speech token at the SOT position.
    pub no_speech_prob: f64,
    /// Word timings, when word timestamps were requested.
    pub words: Option<Vec<Word>>,
    /// Each token's text and log-probability when requested
    /// (`DecodeOptions::token_logprobs`, a vkwhisper extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_logprobs: Option<Vec<(String, f32)>>,
}

/// Facts about the whole transcription (faster-whisper's `TranscriptionInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionInfo {
    /// Language code (e.g. "en").
    pub language: String,
    /// Probability of that language (1 when given or for English-only models).
    pub language_probability: f64,
    /// Duration of the input in seconds (samples / 16000).
    pub duration: f64,
    /// Duration after voice-activity filtering, in seconds.
    pub duration_after_vad: f64,
    /// Probabilities of all languages of the detection window, best first.
    pub all_language_probs: Option<Vec<(String, f64)>>,
}
