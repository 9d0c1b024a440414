/// Errors of a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Inputs of the wrong size or out of range.
    #[error("{0}")]
    Shape(String),
    /// The model is unusable for this backend.
    #[error(transparent)]
    Model(#[from] vkw_model::ModelError),
    /// The device ran out of memory.
    #[error("out of memory: {0} (try a smaller model or the CPU backend)")]
    OutOfMemory(String),
    /// The backend does not implement this operation (yet).
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    /// Any other device failure.
    #[error("{0}")]
    Device(String),
}
