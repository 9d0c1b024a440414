//! The CPU backend: float32 compute on SIMD GEMM kernels, threaded with rayon.
//!
//! Weights stay in their stored dtype (see `weights.rs`); activations are f32.

mod attention;
mod decoder;
mod encoder;
mod gemv;
pub mod matmul;
pub mod ops;
pub mod vmath;
mod weights;

pub use decoder::CpuState;

use crate::{Backend, BackendError, LogitsAt};
use std::sync::Arc;
use vkw_model::{HParams, WhisperModel};
use weights::Weights;

/// Encoder output of a batch of windows: `[batch, frames, d]`.
pub struct CpuEncoded {
    data: Vec<f32>,
    batch: usize,
    frames: usize,
}

/// Whisper on the CPU.
pub struct CpuBackend {
    model: Arc<WhisperModel>,
    weights: Weights,
    pool: rayon::ThreadPool,
}

impl CpuBackend {
    /// Prepare a model for the CPU with `threads` worker threads (0 = all cores).
    pub fn new(model: Arc<WhisperModel>, threads: usize) -> Result<Self, BackendError> {
        let hp = model.hparams;
        let weights = Weights::load(&model.weights, hp.encoder_layers, hp.decoder_layers)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("vkwhisper-cpu-{i}"))
            .build()
            .map_err(|e| BackendError::Device(format!("cannot start CPU threads: {e}")))?;
        Ok(Self {
            model,
            weights,
            pool,
        })
    }

    /// The model this backend runs.
    pub fn model(&self) -> &Arc<WhisperModel> {
        &self.model
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn eps(&self) -> f32 {
        self.model.config.layer_norm_epsilon
    }
}

impl Backend for CpuBackend {
    type Encoded = CpuEncoded;
    type State = CpuState;

    fn hparams(&self) -> &HParams {
        &self.model.hparams
    }

    fn encode(&self, mel: &[f32], batch: usize) -> Result<CpuEncoded, BackendError> {
        let hp = self.model.hparams;
        let frames_in = 2 * hp.n_audio_ctx;
        let per = hp.n_mels * frames_in;
        if batch == 0 || mel.len() != batch * per {
            return Err(BackendError::Shape(format!(
                "encode: expected {batch} windows of {} mels x {frames_in} frames ({} values), got {}",
                hp.n_mels,
                batch * per,
                mel.len()
            )));
        }
        let mut data = Vec::with_capacity(batch * hp.n_audio_ctx * hp.d_model);
        for b in 0..batch {
            let out = self.pool.install(|| {
                encoder::encode(
                    &self.weights,
                    &hp,
                    self.eps(),
                    &mel[b * per..(b + 1) * per],
                    frames_in,
                )
            });
            data.extend_from_slice(&out);
        }
        Ok(CpuEncoded {
            data,
            batch,
            frames: hp.n_audio_ctx,
        })
    }

    fn encoded_to_host(&self, enc: &CpuEncoded) -> Result<Vec<f32>, BackendError> {
        Ok(enc.data.clone())
    }

    fn start(&self, enc: &CpuEncoded, index: usize) -> Result<CpuState, BackendError> {
        if index >= enc.batch {
            return Err(BackendError::Shape(format!(
                "start: window {index} of a batch of {}",
                enc.batch
            )));
        }
        let hp = self.model.hparams;
        let per = enc.frames * hp.d_model;
        let slice = &enc.data[index * per..(index + 1) * per];
        Ok(self
            .pool
            .install(|| decoder::start(&self.weights, &hp, slice, enc.frames)))
    }

    fn start_batch(&self, enc: &CpuEncoded, indices: &[usize]) -> Result<CpuState, BackendError> {
        if indices.is_empty() {
            return Err(BackendError::Shape("start_batch: no windows".into()));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= enc.batch) {
            return Err(BackendError::Shape(format!(
                "start_batch: window {bad} of a batch of {}",
                enc.batch
            )));
        }
        let hp = self.model.hparams;
        let per = enc.frames * hp.d_model;
        let windows: Vec<&[f32]> = indices
            .iter()
            .map(|&i| &enc.data[i * per..(i + 1) * per])
            .collect();
        Ok(self
            .pool
            .install(|| decoder::start_batch(&self.weights, &hp, &windows, enc.frames)))
    }

    fn align(
        &self,
        _enc: &CpuEncoded,
        _index: usize,
        _tokens: &[u32],
        _heads: &[(usize, usize)],
    ) -> Result<crate::Alignment, BackendError> {
        Err(BackendError::Unsupported("CPU alignment pass".into()))
    }

    fn num_seqs(&self, state: &CpuState) -> usize {
        state.num_seqs
    }

    fn cache_len(&self, state: &CpuState) -> usize {
        state.len
    }

    fn decode(
        &self,
        state: &mut CpuState,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        let hp = self.model.hparams;
        self.pool.install(|| {
            decoder::decode(&self.weights, &hp, self.eps(), state, tokens, t, at, logits)
        })
    }

    fn reorder(&self, state: &mut CpuState, origins: &[usize]) -> Result<(), BackendError> {
        state.reorder(self.model.hparams.d_model, origins)
    }
}
