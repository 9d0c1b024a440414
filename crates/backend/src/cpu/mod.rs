//! The CPU backend: float32 compute on SIMD GEMM kernels, or int8 matmuls
//! (`int8/`), threaded with rayon.
//!
//! Weights stay in their stored dtype (see `weights.rs`) unless the compute
//! type asks for int8, float16 or bfloat16; activations are f32.

mod align;
mod attend;
mod attention;
mod decoder;
mod encoder;
mod gemv;
pub mod int8;
pub mod matmul;
pub mod ops;
mod prefetch;
mod weights;

pub use decoder::CpuState;

use crate::{Backend, BackendError, ComputeType, LogitsAt};
use std::sync::Arc;
use vkw_model::{HParams, WhisperModel};
use weights::{Storage, Weights};

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
    compute_type: ComputeType,
}

impl CpuBackend {
    /// Prepare a model for the CPU with `threads` worker threads (0 = all
    /// cores), computing in float32 on the stored weights
    /// ([`ComputeType::Default`]; token-exact with faster-whisper's float32).
    pub fn new(model: Arc<WhisperModel>, threads: usize) -> Result<Self, BackendError> {
        Self::with_compute_type(model, threads, ComputeType::Default)
    }

    /// Prepare a model with a compute type (CTranslate2's names):
    ///
    /// * `default`, `float32`: weights in their stored dtype, float32 compute.
    /// * `float16`, `bfloat16`: weights narrowed to that type at load (if
    ///   they are not already), float32 accumulation.
    /// * `int8`, `int8_float32`, `int8_float16`, `int8_bfloat16`: the Linear
    ///   layers and the tied embedding / output projection quantised per row
    ///   at load (spec §2.6; an int8 model's weights are used as stored), int8
    ///   activations, int32 accumulation; float32 elsewhere (the CPU has no
    ///   faster float16 arithmetic, and CTranslate2 also converts
    ///   `int8_float16` to `int8_float32` on the CPU).
    /// * `auto`: int8 where this CPU has SIMD int8 kernels, else `default`.
    /// * `int16`: an error (no int16 kernels).
    ///
    /// Quantised weights replace the float weights this backend reads. When
    /// `model` is the only reference (the caller keeps none and reads it back
    /// through [`CpuBackend::model`]), its tensor table is emptied after
    /// quantising, so the float copy is freed instead of sitting next to the
    /// int8 one; otherwise the float tensors live as long as the caller's
    /// reference.
    pub fn with_compute_type(
        mut model: Arc<WhisperModel>,
        threads: usize,
        compute_type: ComputeType,
    ) -> Result<Self, BackendError> {
        let compute_type = Self::resolve(compute_type)?;
        let storage = match compute_type {
            c if c.is_int8() => Storage::Int8,
            ComputeType::Float16 => Storage::F16,
            ComputeType::Bfloat16 => Storage::BF16,
            _ => Storage::Stored,
        };
        let hp = model.hparams;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("vkwhisper-cpu-{i}"))
            .build()
            .map_err(|e| BackendError::Device(format!("cannot start CPU threads: {e}")))?;
        // Quantising is parallel: do it on this backend's threads.
        let weights = pool.install(|| {
            Weights::load(
                &model.weights,
                hp.encoder_layers,
                hp.decoder_layers,
                storage,
            )
        })?;
        if storage == Storage::Int8 {
            if let Some(m) = Arc::get_mut(&mut model) {
                // Every tensor the forward pass still needs is held by
                // `weights` (its own Arc); the rest is the float copy.
                let w = &m.weights;
                let (path, spec, rev) = (w.path.clone(), w.spec_name.clone(), w.spec_revision);
                m.weights = vkw_model::ModelBin::from_variables(&path, &spec, rev, vec![], vec![])?;
            }
        }
        Ok(Self {
            model,
            weights,
            pool,
            compute_type,
        })
    }

    /// What a requested compute type means on this CPU (`auto` resolved).
    pub fn resolve(requested: ComputeType) -> Result<ComputeType, BackendError> {
        match requested {
            ComputeType::Int16 => Err(BackendError::Unsupported(
                "compute type int16 on the CPU: use int8 or float32".into(),
            )),
            ComputeType::Auto if int8::Isa::best() != int8::Isa::Portable => Ok(ComputeType::Int8),
            ComputeType::Auto => Ok(ComputeType::Default),
            other => Ok(other),
        }
    }

    /// Run `f` in this backend's thread pool: rayon work inside it (the
    /// backend's own kernels, and a caller's host-side work such as the
    /// log-mel, the VAD and logit rows) uses at most [`CpuBackend::threads`]
    /// threads.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// The compute type in use (`auto` already resolved).
    pub fn compute_type(&self) -> ComputeType {
        self.compute_type
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
        enc: &CpuEncoded,
        index: usize,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<crate::Alignment, BackendError> {
        let hp = self.model.hparams;
        align::validate(&hp, tokens, heads)?;
        let st = self.start(enc, index)?;
        self.pool
            .install(|| align::align(&self.weights, &hp, self.eps(), &st, tokens, heads))
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
