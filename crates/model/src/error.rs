use crate::text;
use std::path::PathBuf;

/// Everything that can go wrong while reading a model directory.
///
/// Each message names the file (and the variable where there is one) and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model path is not a directory.
    #[error("{}: not a model directory (expected a CTranslate2 model directory with model.bin, or a transformers Whisper directory with model.safetensors)", text::path(.0))]
    NotADirectory(PathBuf),
    /// A required file is missing.
    #[error("{}: file missing ({hint})", text::path(path))]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// What a model directory should contain.
        hint: &'static str,
    },
    /// An I/O error while reading a file.
    #[error("{}: {source}", text::path(path))]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `model.bin` is malformed.
    #[error(
        "{}: {msg} (the file is corrupt or truncated: download the model again)",
        text::path(path)
    )]
    Corrupt {
        /// The model.bin path.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// `model.bin` is valid but not a Whisper model this engine can run.
    #[error("{}: {msg}", text::path(path))]
    Unsupported {
        /// The model.bin path.
        path: PathBuf,
        /// What was unsupported.
        msg: String,
    },
    /// A variable the Whisper spec needs is absent.
    #[error(
        "{}: variable {} is missing (not a complete CTranslate2 Whisper model)",
        text::path(path),
        text::quote(name)
    )]
    MissingVariable {
        /// The model.bin path.
        path: PathBuf,
        /// The variable name.
        name: String,
    },
    /// A variable has a shape the model does not allow.
    #[error(
        "{}: variable {} has shape {found:?}, expected {expected}",
        text::path(path),
        text::quote(name)
    )]
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
    #[error(
        "{}: model_type is {}, not \"whisper\" (vkwhisper runs Whisper checkpoints only)",
        text::path(path),
        text::quote(model_type)
    )]
    NotWhisper {
        /// The checkpoint's config.json.
        path: PathBuf,
        /// The `model_type` found.
        model_type: String,
    },
    /// A tensor a Whisper checkpoint needs is absent from its safetensors files.
    #[error("{}: tensor {} is missing (not a complete transformers Whisper checkpoint; re-save it with save_pretrained)", text::path(path), text::quote(name))]
    MissingTensor {
        /// The safetensors file (or the index) searched.
        path: PathBuf,
        /// The transformers tensor name.
        name: String,
    },
    /// config.json, tokenizer.json or the vocabulary is malformed.
    #[error("{}: {msg}", text::path(path))]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        msg: String,
    },
    /// A weight holds NaN or infinite values: the network's output would be
    /// NaN (and decoding could not end sensibly), so the model is refused at
    /// load.
    #[error("{}: variable {} holds {what} values (the weights are damaged: download or convert the model again)", text::path(path), text::quote(name))]
    NonFinite {
        /// The model file.
        path: PathBuf,
        /// The variable name.
        name: String,
        /// "NaN" or "infinite".
        what: &'static str,
    },
}
