//! CTranslate2-format Whisper models (spec §1–§3, §5).
//!
//! [`WhisperModel::load`] reads a model directory: `model.bin` (every binary
//! version 1–6, every dtype, aliases), `config.json`, `tokenizer.json` and the
//! vocabulary file — or a Hugging Face transformers Whisper directory
//! (safetensors), mapped onto the same CTranslate2 variables. The result is
//! immutable and can be shared between streams (wrap it in an `Arc`);
//! per-stream state lives in the backend. [`convert`] writes a model back out
//! as a CTranslate2 directory.
#![deny(missing_docs)]

mod config;
pub mod convert;
mod error;
mod hf;
mod hparams;
mod modelbin;
mod tensor;
mod tokenizer;
pub mod writer;

pub use config::ModelConfig;
pub use error::ModelError;
pub use hparams::HParams;
pub use modelbin::ModelBin;
pub use tensor::{DType, Tensor, TensorData, WeightView};
pub use tokenizer::{SpecialTokens, Task, Tokenizer, LANGUAGES};

use std::path::{Path, PathBuf};

/// Which kind of directory a model was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// A CTranslate2 directory (`model.bin`).
    Ct2,
    /// A Hugging Face transformers directory (safetensors), mapped on load.
    HuggingFace,
}

/// A loaded CTranslate2 Whisper model: weights, hyper-parameters, config and tokenizer.
#[derive(Debug)]
pub struct WhisperModel {
    /// The model directory.
    pub dir: PathBuf,
    /// What the directory held.
    pub format: ModelFormat,
    /// Every variable of `model.bin`, aliases resolved.
    pub weights: ModelBin,
    /// Hyper-parameters inferred from shapes (spec §3.4).
    pub hparams: HParams,
    /// `config.json` contents.
    pub config: ModelConfig,
    /// Text tokenizer and special-token ids.
    pub tokenizer: Tokenizer,
}

impl WhisperModel {
    /// Load a model directory.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(ModelError::NotADirectory(dir.to_path_buf()));
        }
        let bin_path = dir.join("model.bin");
        if !bin_path.is_file() && hf::is_hf_dir(dir) {
            let m = hf::load(dir)?;
            let hparams = HParams::infer(&m.weights)?;
            return Ok(Self {
                dir: dir.to_path_buf(),
                format: ModelFormat::HuggingFace,
                weights: m.weights,
                hparams,
                config: m.config,
                tokenizer: m.tokenizer,
            });
        }
        let torch = dir.join("pytorch_model.bin");
        if !bin_path.is_file() && torch.is_file() {
            return Err(ModelError::Unsupported {
                path: torch,
                msg: "PyTorch pickles are not read; re-save the checkpoint with safetensors (model.save_pretrained(dir, safe_serialization=True))".into(),
            });
        }
        if !bin_path.is_file() {
            return Err(ModelError::MissingFile {
                path: bin_path,
                hint: "a CTranslate2 model directory holds model.bin, config.json, tokenizer.json and vocabulary.*; a transformers one holds model.safetensors (or model.safetensors.index.json), config.json and tokenizer.json",
            });
        }
        let weights = ModelBin::open(&bin_path)?;
        let config = ModelConfig::load(dir)?;
        let hparams = HParams::infer(&weights)?;
        let tokenizer = Tokenizer::load(dir, hparams.n_vocab)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            format: ModelFormat::Ct2,
            weights,
            hparams,
            config,
            tokenizer,
        })
    }

    /// Alignment heads for word timestamps, with the spec's fallback (§3.5):
    /// all heads of the last half of the decoder layers.
    pub fn alignment_heads(&self) -> Vec<(usize, usize)> {
        if !self.config.alignment_heads.is_empty() {
            return self.config.alignment_heads.clone();
        }
        let l = self.hparams.decoder_layers;
        (l / 2..l)
            .flat_map(|layer| (0..self.hparams.decoder_heads).map(move |h| (layer, h)))
            .collect()
    }
}
