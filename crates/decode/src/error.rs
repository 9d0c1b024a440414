//! Errors of the decoding crate.

use vkw_backend::BackendError;

/// Everything that can go wrong while decoding.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The backend failed a forward pass.
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    /// The tokenizer could not encode a prompt, prefix or hotwords text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An option value is out of range or malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The input features do not have the expected shape.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The voice activity detector failed.
    #[error("voice activity detection: {0}")]
    Vad(String),
    /// The backend returned logits of an unexpected size.
    #[error("backend returned {got} logits, expected {expected}")]
    LogitsShape {
        /// Number of values received.
        got: usize,
        /// Number of values expected.
        expected: usize,
    },
    /// The weights or activations produced values that are not numbers.
    #[error(
        "the model produced non-finite scores (NaN or infinity); its weights are probably corrupt"
    )]
    NonFinite,
    /// The request's [`crate::CancelToken`] was cancelled.
    #[error("cancelled")]
    Cancelled,
}
