//! Audio in: decode, resample to 16 kHz mono, log-mel (spec §4.1–§4.3).
//!
//! * [`load_audio`] / [`decode_bytes`] turn a file into the samples faster-whisper's
//!   `decode_audio` produces (spec §4.1): 16 kHz mono, quantised to signed 16 bits and divided
//!   by 32768. Decoding uses symphonia (WAV/AIFF/CAF PCM and ADPCM, FLAC, MP3, Ogg Vorbis,
//!   MP4/M4A AAC and ALAC, MKV/WebM with those codecs); anything else goes to the `ffmpeg`
//!   command line when it is installed.
//! * [`mel`] computes the log-mel spectrogram of a whole input (spec §4.2) and slices the
//!   30 s encoder windows (spec §4.3).
//!
//! How close to faster-whisper (which decodes with FFmpeg): 16-bit 16 kHz mono WAV is
//! bit-exact; other 16 kHz inputs match to the decoders' rounding (jfk.mp3: 1 LSB). Resampled
//! inputs agree with FFmpeg's swresample below ~7 kHz (log-mel mean |Δ| ~5e-4) but not at the
//! very top of the band, where FFmpeg's short default filter rolls off and rubato's does not
//! (the tests in `tests/decode_golden.rs` measure it).
//!
//! Known limitation: symphonia 0.5 ignores MP4 edit lists, so AAC in MP4/M4A keeps the
//! encoder's priming samples (1024 for FFmpeg/fdk encoders, 2112 for Apple's) at the start:
//! such audio starts 64–132 ms late compared with FFmpeg.
#![deny(missing_docs)]

mod decode;
mod ffmpeg;
pub mod mel;
mod mp4;
mod pcm;
mod samples;

pub use samples::{s16_to_f32, Samples};

use std::io::Read;
use std::path::Path;

/// Whisper's input sample rate in Hz (spec §4.1).
pub const SAMPLE_RATE: u32 = 16_000;

/// Why an input could not be turned into samples. Messages are one line, start with the
/// input's name and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The path does not exist.
    #[error("{name}: no such file (check the path)")]
    NotFound {
        /// The input as given.
        name: String,
    },
    /// The path is a directory (or another non-file).
    #[error("{name}: is a directory, not an audio file (pass an audio file)")]
    NotAFile {
        /// The input as given.
        name: String,
    },
    /// Reading the input failed.
    #[error("{name}: cannot read it ({error}; check permissions and the device)")]
    Read {
        /// The input as given.
        name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Zero bytes.
    #[error("{name}: file is empty (expected audio data)")]
    Empty {
        /// The input as given.
        name: String,
    },
    /// Not a format the built-in decoders know (or not audio at all), and no ffmpeg.
    #[error("{name}: unsupported audio format ({detail}); install ffmpeg to decode it")]
    Unsupported {
        /// The input as given.
        name: String,
        /// What the built-in decoders found: an unknown container, codec or no audio track.
        detail: String,
    },
    /// A known format, but damaged or truncated so that nothing could be decoded.
    #[error("{name}: damaged or truncated audio, nothing could be decoded ({detail}; re-export or re-download the file)")]
    Corrupt {
        /// The input as given.
        name: String,
        /// What the decoder reported.
        detail: String,
    },
    /// The data ends well before the length the file's header declares.
    #[error("{name}: truncated audio: the header declares {declared:.2} s but the data ends at {decoded:.2} s (re-download or re-export the file)")]
    Truncated {
        /// The input as given.
        name: String,
        /// Declared seconds.
        declared: f64,
        /// Decodable seconds.
        decoded: f64,
    },
    /// The ffmpeg fallback ran and failed.
    #[error("{name}: ffmpeg could not decode it ({detail}; check that the file is a valid audio or video file)")]
    Ffmpeg {
        /// The input as given.
        name: String,
        /// The last line of ffmpeg's error output.
        detail: String,
    },
    /// Conversion to 16 kHz failed (e.g. an absurd sample rate in the header).
    #[error("{name}: cannot convert to 16 kHz ({detail}; convert the file to a common sample rate first)")]
    Resample {
        /// The input as given.
        name: String,
        /// What went wrong.
        detail: String,
    },
}

/// Decode a file (or "-" = read all of stdin) to 16 kHz mono f32 in [-1, 1).
///
/// Damaged and cut-off files are handled as [`decode_bytes`] describes.
pub fn load_audio(path: &Path) -> Result<Vec<f32>, AudioError> {
    load(path)
}

/// [`load_audio`] as the signed 16-bit values themselves (`sample · 32768`):
/// the same audio in half the memory, for long inputs (a 2-hour file is
/// 230 MB instead of 460 MB). [`mel::MelWindows::from_s16`] reads it.
pub fn load_audio_s16(path: &Path) -> Result<Vec<i16>, AudioError> {
    load(path)
}

fn load<P: pcm::PcmStore>(path: &Path) -> Result<P, AudioError> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|error| AudioError::Read {
                name: "stdin".into(),
                error,
            })?;
        return decode_bytes_into(bytes, None, "stdin");
    }

    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => AudioError::NotFound { name: name.clone() },
        _ => AudioError::Read {
            name: name.clone(),
            error,
        },
    })?;
    if meta.is_dir() {
        return Err(AudioError::NotAFile { name });
    }
    if meta.is_file() && meta.len() == 0 {
        return Err(AudioError::Empty { name });
    }
    let file = std::fs::File::open(path).map_err(|error| AudioError::Read {
        name: name.clone(),
        error,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let result = decode_guarded(Box::new(file), ext.as_deref());
    finish(result, &name, || ffmpeg::decode(ffmpeg::Input::File(path)))
}

/// Decode an in-memory file; `name` is used in error messages; `ext_hint` like Some("mp3").
///
/// Damaged input: the container header must be readable; after that, undecodable packets are
/// skipped, as FFmpeg does. It is an error when not a single sample could be decoded
/// ([`AudioError::Corrupt`]), or when the data ends well before the length the header
/// declares ([`AudioError::Truncated`]): transcribing only the first part of a cut-off
/// download without saying so would silently lose the rest.
pub fn decode_bytes(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
) -> Result<Vec<f32>, AudioError> {
    decode_bytes_into(bytes, ext_hint, name)
}

fn decode_bytes_into<P: pcm::PcmStore>(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
) -> Result<P, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty { name: name.into() });
    }
    let ext = ext_hint.map(|e| e.trim_start_matches('.').to_ascii_lowercase());
    // Symphonia needs an owned `'static` source; share the buffer so the (rare) ffmpeg
    // fallback can still pipe the same bytes without a copy.
    let shared = SharedBytes(std::sync::Arc::new(bytes));
    let result = decode_guarded(
        Box::new(std::io::Cursor::new(shared.clone())),
        ext.as_deref(),
    );
    finish(result, name, || {
        ffmpeg::decode(ffmpeg::Input::Bytes(shared.as_ref()))
    })
}

/// Reference-counted bytes, readable through `std::io::Cursor`.
#[derive(Clone)]
struct SharedBytes(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Symphonia on hostile input: its decoders have had panics on malformed streams. A bad file
/// must be an error, never a crash of the caller, so a panic becomes [`AudioError::Corrupt`].
fn decode_guarded<P: pcm::PcmStore>(
    source: Box<dyn symphonia::core::io::MediaSource>,
    ext: Option<&str>,
) -> Result<P, decode::Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode::decode(source, ext)))
        .unwrap_or_else(|_| {
            Err(decode::Failure::Corrupt(
                "decoder crashed on this data".into(),
            ))
        })
}

/// Map a symphonia result (already quantised to 16 bits, spec §4.1) to the public one,
/// trying ffmpeg where symphonia could not help.
fn finish<P: pcm::PcmStore>(
    result: Result<P, decode::Failure>,
    name: &str,
    fallback: impl FnOnce() -> ffmpeg::Outcome,
) -> Result<P, AudioError> {
    let name = name.to_string();
    match result {
        Ok(samples) => Ok(samples),
        Err(decode::Failure::Io(error)) => Err(AudioError::Read { name, error }),
        Err(decode::Failure::Resample(detail)) => Err(AudioError::Resample { name, detail }),
        Err(decode::Failure::Truncated { declared, decoded }) => Err(AudioError::Truncated {
            name,
            declared,
            decoded,
        }),
        Err(decode::Failure::Unsupported(detail)) => match fallback() {
            ffmpeg::Outcome::Samples(s) => Ok(P::from_s16(s)),
            ffmpeg::Outcome::NotInstalled => Err(AudioError::Unsupported { name, detail }),
            ffmpeg::Outcome::Failed(detail) => Err(AudioError::Ffmpeg { name, detail }),
        },
        // Symphonia knows the format but found it broken: ffmpeg is sometimes more lenient;
        // if it fails too, the symphonia diagnosis is the more useful one.
        Err(decode::Failure::Corrupt(detail)) => match fallback() {
            ffmpeg::Outcome::Samples(s) => Ok(P::from_s16(s)),
            _ => Err(AudioError::Corrupt { name, detail }),
        },
    }
}
