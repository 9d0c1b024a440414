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
pub mod ggml;
mod hf;
mod hparams;
mod json;
mod modelbin;
mod tensor;
mod text;
mod tokenizer;
pub mod writer;

pub use config::ModelConfig;
pub use error::ModelError;
pub use hparams::{HParams, MAX_MELS, MIN_TEXT_CTX, N_AUDIO_CTX};
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
    ///
    /// Everything decoding relies on is checked here, so a bad model fails
    /// at load with a one-line error naming the model's file, never later
    /// with an error naming the audio (or a panic):
    ///
    /// * every tensor the forward pass reads exists with its shape
    ///   ([`HParams::infer`]), and the sizes can run ([`HParams::check_runnable`]);
    /// * no float weight or quantisation scale is NaN or infinite, no scale
    ///   is zero ([`ModelBin::check_values`]);
    /// * the special tokens are in Whisper's layout, as [`SpecialTokens`]
    ///   documents;
    /// * every id of `config.json` (`lang_ids`, `suppress_ids`,
    ///   `suppress_ids_begin`) is below the vocabulary size, and every
    ///   alignment head is a (layer, head) of the decoder.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        let model = Self::load_unchecked(dir.as_ref())?;
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let file = &self.weights.path;
        self.hparams.check_runnable(file)?;
        self.weights.check_values()?;
        let cfg_path = self.dir.join(match self.format {
            ModelFormat::Ct2 => "config.json",
            ModelFormat::HuggingFace => "generation_config.json",
        });
        let bad = |msg: String| ModelError::BadFile {
            path: cfg_path.clone(),
            msg,
        };
        let v = self.hparams.n_vocab;
        for (key, ids) in [
            ("lang_ids", &self.config.lang_ids),
            ("suppress_ids", &self.config.suppress_ids),
            ("suppress_ids_begin", &self.config.suppress_ids_begin),
        ] {
            if let Some(id) = ids.iter().find(|&&id| id as usize >= v) {
                return Err(bad(format!(
                    "{key} holds id {id}, beyond the model's {v} tokens"
                )));
            }
        }
        let (layers, heads) = (self.hparams.decoder_layers, self.hparams.decoder_heads);
        if let Some((l, h)) = self
            .config
            .alignment_heads
            .iter()
            .find(|&&(l, h)| l >= layers || h >= heads)
        {
            return Err(bad(format!(
                "alignment head [{l}, {h}] is outside the decoder's {layers} layers x {heads} heads"
            )));
        }
        Ok(())
    }

    fn load_unchecked(dir: &Path) -> Result<Self, ModelError> {
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
