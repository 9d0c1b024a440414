//! The Vulkan backend: WGSL compute kernels run through wgpu (pinned; every
//! version-sensitive call is in `gpu.rs`). Weights are uploaded once per
//! model load; the encoder output, the cross-attention K/V and the KV
//! caches stay on the GPU; a decoder step is one command buffer and only
//! its logits come back (spec §4.4–4.6, §7.1).

mod decoder;
mod encoder;
pub mod gpu;
pub mod ops;
mod weights;

pub use decoder::VulkanState;
pub use gpu::{AdapterDesc, DeviceKind};

use crate::{Alignment, Backend, BackendError, LogitsAt};
use gpu::{Buf, Gpu};
use std::sync::Arc;
use vkw_model::{HParams, WhisperModel};
use weights::GWeights;

/// Encoder output of a batch of windows, resident on the GPU:
/// `[batch, frames, d]`.
pub struct VulkanEncoded {
    buf: Buf,
    batch: usize,
    frames: usize,
}

/// Whisper on a Vulkan device.
pub struct VulkanBackend {
    model: Arc<WhisperModel>,
    gpu: Arc<Gpu>,
    weights: GWeights,
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
                or use --device cpu"
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
         vendor's driver (NVIDIA, AMD, Intel), or use --device cpu"
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
    /// Upload `model` to Vulkan adapter `index` (see [`gpu::enumerate`]).
    pub fn new(model: Arc<WhisperModel>, index: usize) -> Result<Self, BackendError> {
        let gpu = Arc::new(Gpu::open(index)?);
        let hp = model.hparams;
        let weights = GWeights::load(&gpu, &model.weights, hp.encoder_layers, hp.decoder_layers)?;
        Ok(Self {
            model,
            gpu,
            weights,
        })
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
        let mel_buf = self.gpu.upload_f32(mel, "mel")?;
        let buf = encoder::encode(&self.gpu, &self.weights, &hp, self.eps(), &mel_buf, batch)?;
        Ok(VulkanEncoded {
            buf,
            batch,
            frames: hp.n_audio_ctx,
        })
    }

    fn encoded_to_host(&self, enc: &VulkanEncoded) -> Result<Vec<f32>, BackendError> {
        self.gpu.read(
            &enc.buf,
            0,
            enc.batch * enc.frames * self.model.hparams.d_model,
        )
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
        decoder::start(&self.gpu, &self.weights, &hp, &enc.buf, enc.frames, indices)
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
            &mut st,
            tokens,
            n,
            LogitsAt::All,
            &mut logits,
            Some(capture),
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
        let hp = self.model.hparams;
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
        )
    }

    fn reorder(&self, state: &mut VulkanState, origins: &[usize]) -> Result<(), BackendError> {
        decoder::reorder(&self.gpu, state, origins)
    }
}
