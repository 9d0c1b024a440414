//! Audio in: decode, resample to 16 kHz mono, log-mel (spec §4.1–§4.3).
//!
//! * [`load_audio`] / [`decode_bytes`] turn a file into the samples faster-whisper's
//!   `decode_audio` produces (spec §4.1): 16 kHz mono, quantised to signed 16 bits and divided
//!   by 32768. Decoding uses symphonia (WAV/AIFF/CAF PCM and ADPCM, FLAC, MP3, Ogg Vorbis,
//!   MP4/MOV AAC and ALAC, MKV/WebM) and the bundled libopus (Opus in Ogg and Matroska);
//!   anything else goes to the `ffmpeg` command line when it is installed.
//! * The conversion to 16 kHz mono s16 is libswresample's, reimplemented (`swr.rs`): lossless
//!   inputs give FFmpeg's samples bit for bit; lossy codecs differ only where the decoders do
//!   (MP3, AAC: a few samples ±1 LSB; Opus: libopus is not FFmpeg's Opus decoder).
//! * [`mel`] computes the log-mel spectrogram of a whole input (spec §4.2) and slices the
//!   30 s encoder windows (spec §4.3).
#![deny(missing_docs)]

mod decode;
mod ffmpeg;
pub mod mel;
mod mp4;
mod opus;
mod pcm;
mod precheck;
mod samples;
mod swr;

pub use samples::{s16_to_f32, Pcm, Samples};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whisper's input sample rate in Hz (spec §4.1).
pub const SAMPLE_RATE: u32 = 16_000;

/// Lowest sample rate accepted in a file, in Hz. Lower rates do not occur in
/// real recordings, and a tiny rate turns a few bytes into hours of 16 kHz
/// audio.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest sample rate accepted in a file, in Hz (the highest rate audio
/// formats define; resampling from a huge rate would need a huge filter).
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Most seconds of decoded audio one input byte may turn into. Real codecs
/// need far more than one byte per second even for digital silence in FLAC's
/// largest blocks at the lowest rate; a file that claims more is a crafted
/// expansion, refused before its samples are stored.
pub const MAX_SECONDS_PER_BYTE: f64 = 1.0;
/// Decoded length every input may reach regardless of its size (so that a
/// short but real file is never refused by [`MAX_SECONDS_PER_BYTE`]).
pub const MIN_DURATION_CAP_S: f64 = 60.0;

/// What one input may cost. The defaults ([`Limits::default`]) suit the
/// command line; a server can tighten them per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest decoded audio in seconds (default 12 hours: 1.4 GB as 16-bit
    /// samples). The effective cap of an input of `n` bytes is
    /// `min(max_duration_s, max(MIN_DURATION_CAP_S, n · MAX_SECONDS_PER_BYTE))`;
    /// longer audio is [`AudioError::TooLong`], found while decoding, before
    /// the excess is stored.
    pub max_duration_s: f64,
    /// Most bytes read from stdin, a FIFO or another stream, which are read
    /// into memory whole (default 4 GiB); more is [`AudioError::TooLarge`].
    /// Regular files are not read into memory and have no size limit.
    pub max_stream_bytes: u64,
    /// The ffmpeg program for what the built-in decoders cannot read
    /// (default `ffmpeg`, looked up on PATH); `None` disables the fallback.
    pub ffmpeg: Option<PathBuf>,
    /// Wall-clock limit of one ffmpeg run (default 10 minutes); ffmpeg is
    /// killed when it is reached. Its error output is kept to the last 64 KB
    /// and its audio output to the duration cap.
    pub ffmpeg_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_duration_s: 12.0 * 3600.0,
            max_stream_bytes: 4 << 30,
            ffmpeg: Some(PathBuf::from("ffmpeg")),
            ffmpeg_timeout: Duration::from_secs(600),
        }
    }
}

impl Limits {
    /// The most 16 kHz samples an input of `input_bytes` bytes may decode to.
    pub fn max_samples(&self, input_bytes: u64) -> u64 {
        let by_size = (input_bytes as f64 * MAX_SECONDS_PER_BYTE).max(MIN_DURATION_CAP_S);
        let seconds = self.max_duration_s.min(by_size).max(0.0);
        (seconds * f64::from(SAMPLE_RATE)) as u64
    }
}

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
    /// The ffmpeg fallback ran and failed (or ran past its time limit).
    #[error("{name}: ffmpeg could not decode it ({detail}; check that the file is a valid audio or video file)")]
    Ffmpeg {
        /// The input as given.
        name: String,
        /// The last line of ffmpeg's error output.
        detail: String,
    },
    /// Conversion to 16 kHz failed.
    #[error("{name}: cannot convert to 16 kHz ({detail}; convert the file to a common sample rate first)")]
    Resample {
        /// The input as given.
        name: String,
        /// What went wrong.
        detail: String,
    },
    /// The stream declares a sample rate outside
    /// [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    #[error("{name}: sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz (the header is damaged, or convert the file to a common rate first)")]
    SampleRate {
        /// The input as given.
        name: String,
        /// The declared rate.
        rate: u64,
    },
    /// The input decodes to more audio than [`Limits`] allow.
    #[error("{name}: decodes to more than {limit_s:.0} s of audio, the limit for an input of this size (split the file, or the header is damaged)")]
    TooLong {
        /// The input as given.
        name: String,
        /// The cap that was reached, in seconds.
        limit_s: f64,
    },
    /// More bytes on stdin or a pipe than [`Limits::max_stream_bytes`].
    #[error("{name}: more than {limit} bytes of input (pass a regular file instead of a stream)")]
    TooLarge {
        /// The input as given.
        name: String,
        /// The limit in bytes.
        limit: u64,
    },
}

/// Converts a live mono signal of any sample rate to 16 kHz as it arrives
/// (the same filter file decoding uses).
pub struct StreamResampler(pcm::MonoResampler);

impl StreamResampler {
    /// From `rate` Hz; an error for rates the converter cannot take.
    pub fn new(rate: u32) -> Result<Self, String> {
        pcm::MonoResampler::new(rate).map(Self)
    }

    /// Feed samples at the input rate; returns the 16 kHz samples ready so far.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, String> {
        self.0.push(samples)?;
        Ok(self.0.drain().collect())
    }

    /// The end of the signal: the last 16 kHz samples.
    pub fn finish(self) -> Result<Vec<f32>, String> {
        self.0.finish()
    }
}

/// Decode a file (or "-" = read all of stdin) to 16 kHz mono f32 in [-1, 1).
///
/// Damaged and cut-off files are handled as [`decode_bytes`] describes; the
/// default [`Limits`] apply.
pub fn load_audio(path: &Path) -> Result<Vec<f32>, AudioError> {
    load(path, &Limits::default())
}

/// [`load_audio`] as the signed 16-bit values themselves (`sample · 32768`):
/// the same audio in half the memory, for long inputs (a 2-hour file is
/// 230 MB instead of 460 MB). [`mel::MelWindows::from_s16`] reads it.
pub fn load_audio_s16(path: &Path) -> Result<Vec<i16>, AudioError> {
    load(path, &Limits::default())
}

/// [`load_audio`] with explicit [`Limits`].
pub fn load_audio_with(path: &Path, limits: &Limits) -> Result<Vec<f32>, AudioError> {
    load(path, limits)
}

/// [`load_audio_s16`] with explicit [`Limits`].
pub fn load_audio_s16_with(path: &Path, limits: &Limits) -> Result<Vec<i16>, AudioError> {
    load(path, limits)
}

/// Read a stream (stdin, a FIFO, a character device) into memory, at most
/// `limits.max_stream_bytes`: symphonia needs to seek, which a pipe cannot.
fn read_stream(mut r: impl Read, name: &str, limits: &Limits) -> Result<Vec<u8>, AudioError> {
    let mut bytes = Vec::new();
    r.by_ref()
        .take(limits.max_stream_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| AudioError::Read {
            name: name.into(),
            error,
        })?;
    if bytes.len() as u64 > limits.max_stream_bytes {
        return Err(AudioError::TooLarge {
            name: name.into(),
            limit: limits.max_stream_bytes,
        });
    }
    Ok(bytes)
}

fn load<P: pcm::PcmStore>(path: &Path, limits: &Limits) -> Result<P, AudioError> {
    if path.as_os_str() == "-" {
        let bytes = read_stream(std::io::stdin().lock(), "stdin", limits)?;
        return decode_bytes_into(bytes, None, "stdin", limits);
    }

    let name = vkw_guard::path(path);
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
    // Opening a FIFO blocks until a writer opens it (POSIX); that is the
    // caller's business (a server should not hand FIFOs over).
    let file = std::fs::File::open(path).map_err(|error| AudioError::Read {
        name: name.clone(),
        error,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !meta.is_file() {
        // A FIFO or device cannot seek: read it like stdin.
        let bytes = read_stream(file, &name, limits)?;
        return decode_bytes_into(bytes, ext.as_deref(), &name, limits);
    }
    let budget = decode::Budget {
        max_samples: limits.max_samples(meta.len()),
    };
    let result = decode_guarded(Box::new(file), ext.as_deref(), &budget);
    finish(result, &name, &budget, || match &limits.ffmpeg {
        Some(program) => ffmpeg::decode(ffmpeg::Input::File(path), program, limits, &budget),
        None => ffmpeg::Outcome::NotInstalled,
    })
}

/// Decode an in-memory file; `name` is used in error messages; `ext_hint` like Some("mp3").
///
/// Damaged input: the container header must be readable; after that, undecodable packets are
/// skipped, as FFmpeg does. It is an error when not a single sample could be decoded
/// ([`AudioError::Corrupt`]), or when the data ends well before the length the header
/// declares ([`AudioError::Truncated`]): transcribing only the first part of a cut-off
/// download without saying so would silently lose the rest. The default [`Limits`] apply.
pub fn decode_bytes(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
) -> Result<Vec<f32>, AudioError> {
    decode_bytes_into(bytes, ext_hint, name, &Limits::default())
}

/// [`decode_bytes`] with explicit [`Limits`].
pub fn decode_bytes_with(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
    limits: &Limits,
) -> Result<Vec<f32>, AudioError> {
    decode_bytes_into(bytes, ext_hint, name, limits)
}

/// [`decode_bytes_with`] as signed 16-bit values (see [`load_audio_s16`]).
pub fn decode_bytes_s16(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
    limits: &Limits,
) -> Result<Vec<i16>, AudioError> {
    decode_bytes_into(bytes, ext_hint, name, limits)
}

fn decode_bytes_into<P: pcm::PcmStore>(
    bytes: Vec<u8>,
    ext_hint: Option<&str>,
    name: &str,
    limits: &Limits,
) -> Result<P, AudioError> {
    let name = vkw_guard::name(name);
    if bytes.is_empty() {
        return Err(AudioError::Empty { name });
    }
    let ext = ext_hint.map(|e| e.trim_start_matches('.').to_ascii_lowercase());
    let budget = decode::Budget {
        max_samples: limits.max_samples(bytes.len() as u64),
    };
    // Symphonia needs an owned `'static` source; share the buffer so the (rare) ffmpeg
    // fallback can still pipe the same bytes without a copy.
    let shared = SharedBytes(std::sync::Arc::new(bytes));
    let result = decode_guarded(
        Box::new(std::io::Cursor::new(shared.clone())),
        ext.as_deref(),
        &budget,
    );
    finish(result, &name, &budget, || match &limits.ffmpeg {
        Some(program) => ffmpeg::decode(
            ffmpeg::Input::Bytes(std::sync::Arc::clone(&shared.0)),
            program,
            limits,
            &budget,
        ),
        None => ffmpeg::Outcome::NotInstalled,
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

/// Symphonia on hostile input: what can be checked is checked before it
/// sees the data (`precheck/`); a panic that still happens inside it is
/// contained without printing anything (`vkw_guard::contain`) and becomes
/// [`AudioError::Corrupt`].
fn decode_guarded<P: pcm::PcmStore>(
    source: Box<dyn symphonia::core::io::MediaSource>,
    ext: Option<&str>,
    budget: &decode::Budget,
) -> Result<P, decode::Failure> {
    vkw_guard::contain(|| decode::decode(source, ext, budget)).unwrap_or_else(|msg| {
        Err(decode::Failure::Corrupt(format!(
            "the decoder failed on this data: {msg}"
        )))
    })
}

/// Map a symphonia result (already quantised to 16 bits, spec §4.1) to the public one,
/// trying ffmpeg where symphonia could not help.
fn finish<P: pcm::PcmStore>(
    result: Result<P, decode::Failure>,
    name: &str,
    budget: &decode::Budget,
    fallback: impl FnOnce() -> ffmpeg::Outcome,
) -> Result<P, AudioError> {
    let name = name.to_string();
    // Details come from symphonia or ffmpeg: keep them to one short line.
    let result = result.map_err(|f| match f {
        decode::Failure::Corrupt(d) => decode::Failure::Corrupt(vkw_guard::one_line(&d, 200)),
        decode::Failure::Unsupported(d) => {
            decode::Failure::Unsupported(vkw_guard::one_line(&d, 200))
        }
        decode::Failure::Resample(d) => decode::Failure::Resample(vkw_guard::one_line(&d, 200)),
        other => other,
    });
    let too_long = |name| AudioError::TooLong {
        name,
        limit_s: budget.max_samples as f64 / f64::from(SAMPLE_RATE),
    };
    match result {
        Ok(samples) => Ok(samples),
        Err(decode::Failure::Io(error)) => Err(AudioError::Read { name, error }),
        Err(decode::Failure::Resample(detail)) => Err(AudioError::Resample { name, detail }),
        Err(decode::Failure::SampleRate(rate)) => Err(AudioError::SampleRate { name, rate }),
        Err(decode::Failure::TooLong) => Err(too_long(name)),
        Err(decode::Failure::Truncated { declared, decoded }) => Err(AudioError::Truncated {
            name,
            declared,
            decoded,
        }),
        Err(decode::Failure::Unsupported(detail)) => match fallback() {
            ffmpeg::Outcome::Samples(s) => Ok(P::from_s16(s)),
            ffmpeg::Outcome::NotInstalled => Err(AudioError::Unsupported { name, detail }),
            ffmpeg::Outcome::Failed(detail) => Err(AudioError::Ffmpeg { name, detail }),
            ffmpeg::Outcome::TooLong => Err(too_long(name)),
        },
        // Symphonia knows the format but found it broken: ffmpeg is sometimes more lenient;
        // if it fails too, the symphonia diagnosis is the more useful one.
        Err(decode::Failure::Corrupt(detail)) => match fallback() {
            ffmpeg::Outcome::Samples(s) => Ok(P::from_s16(s)),
            ffmpeg::Outcome::TooLong => Err(too_long(name)),
            _ => Err(AudioError::Corrupt { name, detail }),
        },
    }
}
