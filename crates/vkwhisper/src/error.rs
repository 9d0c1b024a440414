//! The facade's one error type, with a kind a caller can act on.

use vkw_audio::AudioError;
use vkw_backend::BackendError;
use vkw_decode::DecodeError;
use vkw_hub::HubError;
use vkw_model::ModelError;
use vkw_vad::VadError;

/// What kind of failure an [`Error`] is, for callers that map errors to
/// outcomes (a server to HTTP statuses, Python to exception types). Client
/// mistakes are `InvalidInput` and `InvalidOption`; `Internal` is a bug or a
/// broken device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The audio cannot be used: missing, empty, undecodable, truncated.
    InvalidInput,
    /// An option is out of range or malformed.
    InvalidOption,
    /// No such model (an unknown name, a directory that does not exist or
    /// lacks files).
    NotFound,
    /// The model files are damaged or not a Whisper model.
    InvalidModel,
    /// The request needs something this build, model or device lacks.
    Unsupported,
    /// The device ran out of memory.
    OutOfMemory,
    /// A download failed (network, server, checksum).
    Unavailable,
    /// Stopped: the request's [`crate::CancelToken`] was cancelled, or a
    /// [`crate::SegmentSink`] answered `Break`.
    Cancelled,
    /// Anything else: a device failure, an I/O error, a bug.
    Internal,
}

/// Everything that can go wrong in the facade. Every message is one line
/// that names the thing concerned; none tells the user to pass a
/// command-line flag (front ends add their own hints).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Decoding the audio failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Loading the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Resolving or downloading the model failed.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Opening the device failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Loading the VAD model failed.
    #[error(transparent)]
    Vad(#[from] VadError),
    /// An option the facade checks itself.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A [`crate::SegmentSink`] answered `Break`.
    #[error("stopped by the segment sink")]
    Stopped,
    /// Decoding panicked: a bug, reported instead of unwinding into the caller.
    #[error("internal error: {0}")]
    Panic(String),
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::Audio(e) => match e {
                AudioError::Read { .. } => K::Internal,
                _ => K::InvalidInput,
            },
            Error::Model(_) => K::InvalidModel,
            Error::Hub(e) => match e {
                HubError::UnknownModel { .. }
                | HubError::NoSuchDir(_)
                | HubError::Incomplete { .. } => K::NotFound,
                HubError::Io { .. } => K::Internal,
                _ => K::Unavailable,
            },
            Error::Backend(e) => backend_kind(e),
            Error::Decode(e) => match e {
                DecodeError::Backend(b) => backend_kind(b),
                DecodeError::Tokenizer(_) | DecodeError::InvalidOption(_) => K::InvalidOption,
                DecodeError::InvalidInput(_) => K::InvalidInput,
                DecodeError::NonFinite => K::InvalidModel,
                DecodeError::Cancelled => K::Cancelled,
                _ => K::Internal,
            },
            Error::Vad(VadError::InvalidOption(_)) => K::InvalidOption,
            Error::Vad(_) => K::InvalidModel,
            Error::InvalidOption(_) => K::InvalidOption,
            Error::Stopped => K::Cancelled,
            Error::Panic(_) => K::Internal,
        }
    }
}

fn backend_kind(e: &BackendError) -> ErrorKind {
    match e {
        BackendError::OutOfMemory(_) => ErrorKind::OutOfMemory,
        BackendError::Unsupported(_) => ErrorKind::Unsupported,
        BackendError::Model(_) => ErrorKind::InvalidModel,
        _ => ErrorKind::Internal,
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
