//! Whisper speech-to-text for CTranslate2 (faster-whisper) models, with
//! faster-whisper's transcripts token for token, on any GPU through Vulkan
//! or on the CPU.
//!
//! [`Engine`] is the one front door: load a model once, share it (it is
//! `Clone + Send + Sync`), and transcribe from as many threads as you like.
//!
//! ```no_run
//! use vkwhisper::{Engine, EngineConfig, TranscribeOptions};
//!
//! fn main() -> Result<(), vkwhisper::Error> {
//!     // A model name (downloaded into the cache once) or a model directory.
//!     let engine = Engine::load("tiny.en", &EngineConfig::default())?;
//!     let audio = vkwhisper::decode_audio("samples/jfk.wav")?;
//!     // faster-whisper's defaults: beam size 5, the temperature fallback, ...
//!     let opts = TranscribeOptions::default();
//!     // The language is known before the first window is decoded; segments
//!     // are decoded as the iterator is consumed.
//!     let segments = engine.segments(audio, &opts)?;
//!     println!("language: {}", segments.info().language);
//!     for segment in segments {
//!         let s = segment?;
//!         println!("[{:.2} -> {:.2}] {}", s.start, s.end, s.text);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! * Every mode is one call: [`Engine::transcribe`] streams into a
//!   [`SegmentSink`] (the output writers in [`output`] are sinks; a sink can
//!   stop decoding), [`Engine::segments`] is faster-whisper's lazy
//!   `(segments, info)`, [`Engine::detect_language`] its language detection.
//!   [`TranscribeOptions`] holds faster-whisper's keyword arguments
//!   ([`DecodeOptions`]), the VAD ([`VadOptions`]), batched mode and a
//!   [`CancelToken`].
//! * Sharing: each call has its own decoding state; concurrent calls get the
//!   tokens each would get alone. [`EngineConfig::max_concurrent`] bounds how
//!   many windows decode at once (first come, first served, at window
//!   granularity); [`EngineConfig::threads`] bounds the CPU threads of all
//!   host-side work too.
//! * Errors are one line each, with an [`ErrorKind`] to map to outcomes.
#![deny(missing_docs)]

mod engine;
mod error;
mod limiter;
pub mod live;
mod options;
mod segments;

pub use engine::{
    DetectedLanguage, Device, DownloadCallback, DownloadProgress, Engine, EngineConfig, EngineInfo,
};
pub use error::{Error, ErrorKind, Result};
pub use limiter::{Limiter, Permit};
pub use options::TranscribeOptions;
pub use segments::Segments;

pub use vkw_audio::AudioError;
pub use vkw_audio::Pcm as Audio;
pub use vkw_audio::StreamResampler;
pub use vkw_backend::ComputeType;
pub use vkw_decode::{
    parse_clip_timestamps, CancelToken, DecodeOptions, Task, MAX_BATCH, MAX_BEAMS,
};
pub use vkw_model::{HParams, SpecialTokens, Tokenizer, LANGUAGES};
pub use vkw_segments::{
    from_fn, ControlFlow, FnSink, Progress, Segment, SegmentSink, TranscriptionInfo, Word,
};
pub use vkw_vad::{SileroVad, SpeechChunk, VadOptions};

/// Transcript writers (txt, srt, vtt, tsv, json), each a [`SegmentSink`].
pub use vkw_writers as output;

/// Model names, the local model cache and downloads.
pub use vkw_hub as models;

/// The Vulkan adapters `Device` can choose, and which one `auto` takes.
pub mod devices {
    pub use vkw_backend::any::{
        auto_adapter, quiet_device_select_layer, vulkan_adapters, AdapterDesc, DeviceKind,
    };
}

/// Whisper's input sample rate, Hz.
pub const SAMPLE_RATE: u32 = vkw_audio::SAMPLE_RATE;

/// Decode an audio file (WAV, FLAC, MP3, Ogg Vorbis, M4A, …; `-` reads
/// stdin) to 16 kHz mono 16-bit samples, as faster-whisper's `decode_audio`
/// does with FFmpeg.
pub fn decode_audio(path: impl AsRef<std::path::Path>) -> Result<Audio<'static>> {
    Ok(vkw_audio::load_audio_s16(path.as_ref())?.into())
}

/// Decode an audio file held in memory; `name` appears in error messages and
/// `ext_hint` (e.g. `Some("mp3")`) helps find the format.
pub fn decode_audio_bytes(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
) -> Result<Audio<'static>> {
    Ok(vkw_audio::decode_bytes_s16(bytes, ext_hint, name, &vkw_audio::Limits::default())?.into())
}
