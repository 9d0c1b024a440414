//! The Vulkan backend: WGSL compute kernels run through wgpu (pinned; every
//! version-sensitive call is in `gpu.rs`). Weights are uploaded once per
//! model load; the encoder output, the cross-attention K/V and the KV
//! caches stay on the GPU; a decoder step is one command buffer and only
//! its logits come back (spec §4.4–4.6, §7.1).

pub mod candidates;
mod decoder;
mod encoder;
pub mod gpu;
pub mod ops;
pub mod stats;
mod weights;

pub use decoder::VulkanState;
pub use gpu::{AdapterDesc, DeviceKind};
pub use stats::StepStats;
pub use weights::Precision;

use crate::logits::{TopK, TopRequest};
use crate::{Alignment, Backend, BackendError, ComputeType, LogitsAt};
use gpu::{Buf, Gpu};
use std::sync::Arc;
use vkw_model::{HParams, WhisperModel};
use weights::GWeights;

/// An element type's name (`f32`, `f16`, `i8`).
pub type WTypeName = &'static str;

/// Encoder output of a batch of windows, resident on the GPU:
/// `[batch, frames, d]`.
pub struct VulkanEncoded {
    buf: Buf,
    /// The same in f16 with float16 activations (the cross-K/V input).
    buf16: Option<Buf>,
    batch: usize,
    frames: usize,
}

impl VulkanEncoded {
    /// What the cross-attention K/V products read: the f16 copy where
    /// there is one.
    fn kv_input(&self) -> (&Buf, ops::WType) {
        match &self.buf16 {
            Some(b) => (b, ops::WType::F16),
            None => (&self.buf, ops::WType::F32),
        }
    }
}

/// Whisper on a Vulkan device.
pub struct VulkanBackend {
    model: Arc<WhisperModel>,
    gpu: Arc<Gpu>,
    weights: GWeights,
    precision: Precision,
    note: Option<String>,
    steps: stats::StepLog,
    enc_plan: encoder::EncoderPlan,
    enc_pool: encoder::Pool,
}

/// The best adapter of `list` for an explicit `--device vulkan` (and the
/// tests): discrete, then integrated, then virtual/other GPUs, then
/// software (lavapipe) last; `None` when empty. Ties keep the loader's order.
pub fn best_adapter(list: &[AdapterDesc]) -> Option<&AdapterDesc> {
    let rank = |k: DeviceKind| match k {
        DeviceKind::Discrete => 0,
        DeviceKind::Integrated => 1,
        DeviceKind::Virtual => 2,
        DeviceKind::Other => 3,
        DeviceKind::Cpu => 4,
    };
    list.iter().min_by_key(|a| (rank(a.kind), a.index))
}

/// What is missing when no Vulkan device is found, and how to install it.
pub fn no_device_message() -> String {
    let icd_env = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|val| (*v, val)));
    if !loader_present() {
        return "no Vulkan loader found (libvulkan.so.1 / vulkan-1.dll): install it \
                (Debian/Ubuntu: `apt install libvulkan1 mesa-vulkan-drivers`; Fedora: \
                `dnf install vulkan-loader mesa-vulkan-drivers`) or your GPU vendor's driver, \
                or use the CPU backend"
            .into();
    }
    let env_note = icd_env
        .map(|(k, v)| {
            format!(" ({k}={v} selects the drivers; check that it points at installed ICD files)")
        })
        .unwrap_or_default();
    format!(
        "the Vulkan loader found no Vulkan driver (ICD){env_note}: install Mesa's \
         `mesa-vulkan-drivers` (AMD, Intel, and the lavapipe CPU driver) or your GPU \
         vendor's driver (NVIDIA, AMD, Intel), or use the CPU backend"
    )
}

/// Whether the Vulkan loader library is installed in a standard place.
fn loader_present() -> bool {
    if cfg!(windows) {
        return std::env::var_os("SystemRoot")
            .map(|r| {
                std::path::Path::new(&r)
                    .join("System32/vulkan-1.dll")
                    .is_file()
            })
            .unwrap_or(true);
    }
    if cfg!(target_os = "macos") {
        return true;
    }
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/lib64",
        "/lib",
        "/usr/local/lib",
    ];
    let extra = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    dirs.iter()
        .map(|d| d.to_string())
        .chain(extra.split(':').filter(|s| !s.is_empty()).map(String::from))
        .any(|d| std::path::Path::new(&d).join("libvulkan.so.1").exists())
}

impl VulkanBackend {
    /// Upload `model` to Vulkan adapter `index` (see [`gpu::enumerate`])
    /// for float32 compute: token-identical with the CPU backend.
    pub fn new(model: Arc<WhisperModel>, index: usize) -> Result<Self, BackendError> {
        Self::with_compute_type(model, index, ComputeType::Float32)
    }

    /// Upload `model` to adapter `index` for compute type `ct` (see
    /// [`Precision::resolve`]: `default`/`auto` mean float16 here, as
    /// CTranslate2's default on CUDA).
    pub fn with_compute_type(
        model: Arc<WhisperModel>,
        index: usize,
        ct: ComputeType,
    ) -> Result<Self, BackendError> {
        Self::with_options(model, index, ct, None)
    }

    /// [`Self::with_compute_type`], keeping the compiled pipelines in
    /// `pipeline_cache` (a directory; wgpu's pipeline cache, where the
    /// adapter supports it) so the next load skips the driver's compiler.
    /// Every kernel of the encoder and of sequential decoding is compiled
    /// here, at load, not on the first window.
    pub fn with_options(
        model: Arc<WhisperModel>,
        index: usize,
        ct: ComputeType,
        pipeline_cache: Option<&std::path::Path>,
    ) -> Result<Self, BackendError> {
        let gpu = Arc::new(Gpu::open_cached(index, pipeline_cache)?);
        let (precision, note) = Precision::resolve(ct, gpu.f16)?;
        let hp = model.hparams;
        let weights = GWeights::load(
            &gpu,
            &model.weights,
            hp.encoder_layers,
            hp.decoder_layers,
            precision,
        )?;
        // VKW_ENCODER_ATTN=scores (read, never set, here): the score-matrix
        // attention, for measuring what flash attention saves.
        let scores = std::env::var("VKW_ENCODER_ATTN").is_ok_and(|v| v == "scores");
        let f16_acts = matches!(
            precision,
            Precision::Float16 | Precision::Int8 { rest_f16: true }
        );
        let enc_plan = encoder::EncoderPlan::new(&hp, f16_acts, scores);
        let b = Self {
            model,
            gpu,
            weights,
            precision,
            note,
            steps: stats::StepLog::default(),
            enc_plan,
            enc_pool: encoder::Pool::default(),
        };
        b.gpu
            .scoped(|| b.gpu.compile_only(|| b.compile_kernels()))?;
        // A cache that cannot be written only costs the next start time.
        let _ = b.gpu.save_pipeline_cache();
        Ok(b)
    }

    /// Build the kernels of one window's encoder and of a sequential
    /// decode (prompt, one row, beam rows) without running them, leaving
    /// the encoder scratch in the pool. Batched decoding's row counts and
    /// the logit-rule kernels are built on first use.
    fn compile_kernels(&self) -> Result<(), BackendError> {
        let hp = self.model.hparams;
        let mel = self
            .gpu
            .alloc((hp.n_mels * 2 * hp.n_audio_ctx * 4) as u64, "mel")?;
        let (buf, buf16) = encoder::encode(
            &self.gpu,
            &self.weights,
            &hp,
            self.eps(),
            &mel,
            1,
            self.enc_plan,
            &self.enc_pool,
        )?;
        let enc = VulkanEncoded {
            buf,
            buf16,
            batch: 1,
            frames: hp.n_audio_ctx,
        };
        let mut st = decoder::start(
            &self.gpu,
            &self.weights,
            &hp,
            enc.kv_input(),
            hp.n_audio_ctx,
            &[0],
        )?;
        let sp = self.model.tokenizer.special;
        let mut out = Vec::new();
        let mut step = |st: &mut VulkanState, toks: &[u32], t: usize| {
            decoder::decode(
                &self.gpu,
                &self.weights,
                &hp,
                self.eps(),
                st,
                toks,
                t,
                LogitsAt::Last,
                &mut out,
                None,
                None,
            )
        };
        step(&mut st, &[sp.sot, sp.no_timestamps], 2)?;
        step(&mut st, &[sp.sot], 1)?;
        decoder::reorder(&mut st, &[0; 5])?;
        step(&mut st, &[sp.sot; 5], 1)?;
        Ok(())
    }

    /// The encoder's counters for one window, recorded but not run
    /// (dispatches, submits, compulsory memory traffic in bytes): what
    /// `--timings` reports per window, without the GPU time.
    pub fn encoder_counts(&self) -> Result<stats::Tally, BackendError> {
        let hp = self.model.hparams;
        let mel = self
            .gpu
            .alloc((hp.n_mels * 2 * hp.n_audio_ctx * 4) as u64, "mel")?;
        let before = stats::tally();
        self.gpu.scoped(|| {
            self.gpu.compile_only(|| {
                encoder::encode(
                    &self.gpu,
                    &self.weights,
                    &hp,
                    self.eps(),
                    &mel,
                    1,
                    self.enc_plan,
                    &self.enc_pool,
                )
            })
        })?;
        Ok(stats::tally().since(&before))
    }

    /// How the encoder runs: its activations' type and whether attention
    /// is flash attention.
    pub fn encoder_plan(&self) -> (WTypeName, bool) {
        (self.enc_plan.act.name(), self.enc_plan.flash)
    }

    /// What this backend computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Why the precision differs from the compute type asked for, if it does.
    pub fn precision_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The per-step counters of every decoder step so far (`--timings`).
    pub fn step_stats(&self) -> StepStats {
        let mut s = self.steps.stats();
        s.profile = self.gpu.profile();
        s
    }

    /// Block until the GPU has finished everything submitted (benchmarks:
    /// `encode` and `start` submit without waiting).
    pub fn wait_idle(&self) -> Result<(), BackendError> {
        self.gpu.wait_idle()
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterDesc {
        &self.gpu.desc
    }

    /// The model this backend runs.
    pub fn model(&self) -> &Arc<WhisperModel> {
        &self.model
    }

    fn eps(&self) -> f32 {
        self.model.config.layer_norm_epsilon
    }
}

impl Backend for VulkanBackend {
    type Encoded = VulkanEncoded;
    type State = VulkanState;

    fn hparams(&self) -> &HParams {
        &self.model.hparams
    }

    fn encode(&self, mel: &[f32], batch: usize) -> Result<VulkanEncoded, BackendError> {
        let hp = self.model.hparams;
        let per = hp.n_mels * 2 * hp.n_audio_ctx;
        if batch == 0 || mel.len() != batch * per {
            return Err(BackendError::Shape(format!(
                "encode: expected {batch} windows of {} mels x {} frames ({} values), got {}",
                hp.n_mels,
                2 * hp.n_audio_ctx,
                batch * per,
                mel.len()
            )));
        }
        let before = stats::tally();
        let (buf, buf16) = self.gpu.scoped(|| {
            let mel_buf = self.gpu.upload_f32(mel, "mel")?;
            encoder::encode(
                &self.gpu,
                &self.weights,
                &hp,
                self.eps(),
                &mel_buf,
                batch,
                self.enc_plan,
                &self.enc_pool,
            )
        })?;
        self.steps.push_encode(stats::EncodeSample {
            tally: stats::tally().since(&before),
            windows: batch,
        });
        Ok(VulkanEncoded {
            buf,
            buf16,
            batch,
            frames: hp.n_audio_ctx,
        })
    }

    fn encoded_to_host(&self, enc: &VulkanEncoded) -> Result<Vec<f32>, BackendError> {
        self.gpu.scoped(|| {
            self.gpu.read(
                &enc.buf,
                0,
                enc.batch * enc.frames * self.model.hparams.d_model,
            )
        })
    }

    fn start(&self, enc: &VulkanEncoded, index: usize) -> Result<VulkanState, BackendError> {
        if index >= enc.batch {
            return Err(BackendError::Shape(format!(
                "start: window {index} of a batch of {}",
                enc.batch
            )));
        }
        self.start_batch(enc, &[index])
    }

    fn start_batch(
        &self,
        enc: &VulkanEncoded,
        indices: &[usize],
    ) -> Result<VulkanState, BackendError> {
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
        self.gpu.scoped(|| {
            decoder::start(
                &self.gpu,
                &self.weights,
                &hp,
                enc.kv_input(),
                enc.frames,
                indices,
            )
        })
    }

    fn align(
        &self,
        enc: &VulkanEncoded,
        index: usize,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Alignment, BackendError> {
        let hp = self.model.hparams;
        if tokens.is_empty() {
            return Err(BackendError::Shape("align: no tokens".into()));
        }
        if let Some(&(l, h)) = heads
            .iter()
            .find(|&&(l, h)| l >= hp.decoder_layers || h >= hp.decoder_heads)
        {
            return Err(BackendError::Shape(format!(
                "align: head ({l}, {h}) outside the decoder's {} layers x {} heads",
                hp.decoder_layers, hp.decoder_heads
            )));
        }
        let mut st = self.start(enc, index)?;
        self.gpu
            .scoped(|| self.align_in(enc, &mut st, tokens, heads))
    }

    fn num_seqs(&self, state: &VulkanState) -> usize {
        state.num_seqs
    }

    fn cache_len(&self, state: &VulkanState) -> usize {
        state.len
    }

    fn decode(
        &self,
        state: &mut VulkanState,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        self.decode_in(state, tokens, t, at, logits, None)
    }

    fn decode_top(
        &self,
        state: &mut VulkanState,
        tokens: &[u32],
        req: &TopRequest<'_>,
        out: &mut TopK,
    ) -> Result<(), BackendError> {
        // More candidates than the kernel keeps (beams above 8): the CPU
        // reference on the full logits.
        if req.k > ops::logits::MAX_K || req.k > self.model.hparams.n_vocab {
            return crate::logits::reference_top(self, state, tokens, req, out);
        }
        let mut words = std::mem::take(&mut out.scratch);
        let r = self.decode_in(state, tokens, 1, LogitsAt::Last, &mut words, Some(req));
        if r.is_ok() {
            let nch = state.rules_chunks();
            ops::logits::parse(
                &words,
                tokens.len(),
                nch,
                req.k,
                req.no_speech.is_some(),
                out,
            );
        }
        out.scratch = words;
        r
    }

    fn reorder(&self, state: &mut VulkanState, origins: &[usize]) -> Result<(), BackendError> {
        let before = stats::tally();
        let r = self.gpu.scoped(|| decoder::reorder(state, origins));
        // A beam reorder is part of the next step's work.
        state.pending.add(&stats::tally().since(&before));
        r
    }
}

impl VulkanBackend {
    /// A decoder call, with the step's logit rules on the GPU when `top`
    /// is given; a one-token call is logged as a step for the counters.
    fn decode_in(
        &self,
        state: &mut VulkanState,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
        top: Option<&TopRequest<'_>>,
    ) -> Result<(), BackendError> {
        let hp = self.model.hparams;
        let before = stats::tally();
        self.gpu.scoped(|| {
            decoder::decode(
                &self.gpu,
                &self.weights,
                &hp,
                self.eps(),
                state,
                tokens,
                t,
                at,
                logits,
                None,
                top,
            )
        })?;
        // A step: one new token per sequence (the prompt pre-pass is not).
        if t == 1 {
            let mut tally = stats::tally().since(&before);
            tally.add(&std::mem::take(&mut state.pending));
            self.steps.push(stats::StepSample {
                tally,
                seqs: state.num_seqs,
                first: state.steps == 0,
            });
            state.steps += 1;
        }
        Ok(())
    }

    /// The alignment pass of [`Backend::align`] on a started state.
    fn align_in(
        &self,
        enc: &VulkanEncoded,
        st: &mut VulkanState,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Alignment, BackendError> {
        let hp = self.model.hparams;
        let mut layers: Vec<usize> = heads.iter().map(|&(l, _)| l).collect();
        layers.sort_unstable();
        layers.dedup();
        let n = tokens.len();
        let per_layer = hp.decoder_heads * n * enc.frames;
        let scores = self.gpu.alloc(
            (layers.len().max(1) * per_layer * 4) as u64,
            "alignment scores",
        )?;
        let mut logits = Vec::new();
        let capture = decoder::Capture {
            layers: &layers,
            scores: &scores,
        };
        decoder::decode(
            &self.gpu,
            &self.weights,
            &hp,
            self.eps(),
            st,
            tokens,
            n,
            LogitsAt::All,
            &mut logits,
            Some(capture),
            None,
        )?;
        let all = self.gpu.read(&scores, 0, layers.len() * per_layer)?;
        let mut out = Vec::with_capacity(heads.len() * n * enc.frames);
        for &(l, h) in heads {
            let li = layers.iter().position(|&x| x == l).unwrap_or(0);
            let start = li * per_layer + h * n * enc.frames;
            out.extend_from_slice(&all[start..start + n * enc.frames]);
        }
        Ok(Alignment {
            scores: out,
            logits,
        })
    }
}
