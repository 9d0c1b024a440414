use std::path::PathBuf;

/// Everything that can go wrong while reading a model directory.
///
/// Each message names the file (and the variable where there is one) and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model path is not a directory.
    #[error("{0}: not a model directory (expected a CTranslate2 model directory with model.bin, or a transformers Whisper directory with model.safetensors)")]
    NotADirectory(PathBuf),
    /// A required file is missing.
    #[error("{}: file missing ({hint})", path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// What a model directory should contain.
        hint: &'static str,
    },
    /// An I/O error while reading a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `model.bin` is malformed.
    #[error("{}: {msg} (the file is corrupt or truncated: download the model again)", path.display())]
    Corrupt {
        /// The model.bin path.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// `model.bin` is valid but not a Whisper model this engine can run.
    #[error("{}: {msg}", path.display())]
    Unsupported {
        /// The model.bin path.
        path: PathBuf,
        /// What was unsupported.
        msg: String,
    },
    /// A variable the Whisper spec needs is absent.
    #[error("{}: variable '{name}' is missing (not a complete CTranslate2 Whisper model)", path.display())]
    MissingVariable {
        /// The model.bin path.
        path: PathBuf,
        /// The variable name.
        name: String,
    },
    /// A variable has a shape the model does not allow.
    #[error("{}: variable '{name}' has shape {found:?}, expected {expected}", path.display())]
    ShapeMismatch {
        /// The model.bin path.
        path: PathBuf,
        /// The variable name.
        name: String,
        /// The shape found.
        found: Vec<usize>,
        /// A description of the expected shape.
        expected: String,
    },
    /// A Hugging Face checkpoint of another architecture.
    #[error("{}: model_type is {model_type:?}, not \"whisper\" (vkwhisper runs Whisper checkpoints only)", path.display())]
    NotWhisper {
        /// The checkpoint's config.json.
        path: PathBuf,
        /// The `model_type` found.
        model_type: String,
    },
    /// A tensor a Whisper checkpoint needs is absent from its safetensors files.
    #[error("{}: tensor '{name}' is missing (not a complete transformers Whisper checkpoint; re-save it with save_pretrained)", path.display())]
    MissingTensor {
        /// The safetensors file (or the index) searched.
        path: PathBuf,
        /// The transformers tensor name.
        name: String,
    },
    /// config.json, tokenizer.json or the vocabulary is malformed.
    #[error("{}: {msg}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
}
