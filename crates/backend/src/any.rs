//! Device selection and dispatch (candle-style): [`AnyBackend`] is one enum
//! over the compiled backends that implements [`Backend`] itself, so the
//! decoder and the CLI are written once. The public API is the same with or
//! without the `vulkan` cargo feature; without it a Vulkan request is an
//! error saying so.

use crate::cpu::{CpuBackend, CpuEncoded, CpuState};
#[cfg(feature = "vulkan")]
use crate::vulkan::{VulkanBackend, VulkanEncoded, VulkanState};
use crate::{Alignment, Backend, BackendError, LogitsAt, TopK, TopRequest};
use std::sync::Arc;
use vkw_model::{HParams, WhisperModel};

/// One Vulkan adapter as `vkwhisper devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterDesc {
    /// Index among the Vulkan adapters (`vulkan:N`).
    pub index: usize,
    /// Device name.
    pub name: String,
    /// PCI vendor id.
    pub vendor_id: u32,
    /// Discrete, integrated, virtual, cpu (software) or other.
    pub kind: DeviceKind,
    /// Graphics API.
    pub backend: String,
    /// Driver name.
    pub driver: String,
    /// Driver version / info string.
    pub driver_info: String,
    /// The adapter reads float16 in shaders (`SHADER_F16`).
    pub f16: bool,
    /// The adapter supports subgroup operations.
    pub subgroups: bool,
    /// The many-row matmul this adapter gets in the float16 modes:
    /// `coopmat` (f16 cooperative matrices: matrix cores) or `simt`.
    pub matmul: &'static str,
}

impl AdapterDesc {
    /// The vendor's name from the PCI id.
    pub fn vendor(&self) -> &'static str {
        match self.vendor_id {
            0x1002 | 0x1022 => "AMD",
            0x10de => "NVIDIA",
            0x8086 => "Intel",
            0x13b5 => "ARM",
            0x5143 => "Qualcomm",
            0x106b => "Apple",
            0x10005 => "Mesa",
            _ => "other",
        }
    }
}

/// The kind of a Vulkan device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A software implementation (Mesa lavapipe, SwiftShader): runs on the CPU.
    Cpu,
    /// Unknown.
    Other,
    /// A virtual GPU (VM passthrough).
    Virtual,
    /// A GPU sharing memory with the CPU.
    Integrated,
    /// A GPU with its own memory.
    Discrete,
}

impl DeviceKind {
    /// Lower-case name, as listed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Other => "other",
            Self::Virtual => "virtual",
            Self::Integrated => "integrated",
            Self::Discrete => "discrete",
        }
    }
}

/// Which device to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// The best device: a hardware Vulkan GPU, else the CPU backend.
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// A Vulkan adapter: the best one, or index `N`.
    Vulkan(Option<usize>),
}

impl std::str::FromStr for DeviceRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "vulkan" | "gpu" => Ok(Self::Vulkan(None)),
            _ => s
                .strip_prefix("vulkan:")
                .and_then(|n| n.parse().ok())
                .map(|n| Self::Vulkan(Some(n)))
                .ok_or_else(|| {
                    format!("'{s}' is not a device: use auto, cpu, vulkan or vulkan:N (see `vkwhisper devices`)")
                }),
        }
    }
}

/// The Vulkan adapters, or why there are none (no loader, no driver, or a
/// build without the `vulkan` feature).
pub fn vulkan_adapters() -> Result<Vec<AdapterDesc>, String> {
    #[cfg(feature = "vulkan")]
    {
        let list = crate::vulkan::gpu::enumerate();
        if list.is_empty() {
            Err(crate::vulkan::no_device_message())
        } else {
            Ok(list)
        }
    }
    #[cfg(not(feature = "vulkan"))]
    {
        Err(NO_VULKAN_BUILD.to_string())
    }
}

/// **For a program's `main()` only, before it starts any thread**: disable
/// Mesa's implicit Vulkan device-select layer for this process by setting
/// `NODEVICE_SELECT=1` (unless the user set it). The layer only reorders
/// adapters (vkwhisper picks its own, see [`auto_adapter`]), and without a
/// display it prints "error: XDG_RUNTIME_DIR is invalid" at every adapter
/// enumeration. It changes the process environment, which is unsound while
/// other threads may read it, so the library itself never calls this.
pub fn quiet_device_select_layer() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// Check, before any model is loaded, that the Vulkan adapter `req` names
/// exists (no-op for `auto` and `cpu`): the error says what is missing.
pub fn check_request(req: DeviceRequest) -> Result<(), String> {
    let DeviceRequest::Vulkan(n) = req else {
        return Ok(());
    };
    let list = vulkan_adapters()?;
    match n {
        Some(i) if i >= list.len() => Err(format!(
            "there is no Vulkan device {i}: {} found (see `vkwhisper devices`)",
            list.len()
        )),
        _ => Ok(()),
    }
}

#[cfg(not(feature = "vulkan"))]
const NO_VULKAN_BUILD: &str =
    "this vkwhisper was built without Vulkan support (cargo feature `vulkan`): rebuild with default features, or use the CPU backend";

/// The adapter `auto` uses, if any: a discrete GPU, else an integrated one,
/// else a virtual/other GPU. A software Vulkan device (type cpu, e.g.
/// lavapipe) is never picked: the CPU backend is far faster on the same
/// cores, so `auto` prefers it (a deliberate change to "software Vulkan
/// before the CPU backend"; `--device vulkan` still selects lavapipe).
pub fn auto_adapter(list: &[AdapterDesc]) -> Option<&AdapterDesc> {
    let rank = |k: DeviceKind| match k {
        DeviceKind::Discrete => Some(0),
        DeviceKind::Integrated => Some(1),
        DeviceKind::Virtual => Some(2),
        DeviceKind::Other => Some(3),
        DeviceKind::Cpu => None,
    };
    list.iter()
        .filter_map(|a| rank(a.kind).map(|r| (r, a)))
        .min_by_key(|&(r, a)| (r, a.index))
        .map(|(_, a)| a)
}

/// Any compiled backend.
// One value per process (and one state per stream): the size difference
// between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum AnyBackend {
    /// The CPU backend.
    Cpu(CpuBackend),
    /// The Vulkan backend.
    #[cfg(feature = "vulkan")]
    Vulkan(VulkanBackend),
}

/// Encoder output of an [`AnyBackend`].
pub enum AnyEncoded {
    /// CPU.
    Cpu(CpuEncoded),
    /// Vulkan.
    #[cfg(feature = "vulkan")]
    Vulkan(VulkanEncoded),
}

/// Decoder state of an [`AnyBackend`].
#[allow(clippy::large_enum_variant)]
pub enum AnyState {
    /// CPU.
    Cpu(CpuState),
    /// Vulkan.
    #[cfg(feature = "vulkan")]
    Vulkan(VulkanState),
}

/// An opened backend and the one line saying what was picked (and, for a
/// fallback, why).
pub struct Opened {
    /// The backend.
    pub backend: AnyBackend,
    /// E.g. "Vulkan device 0: NVIDIA GeForce RTX 3060 (discrete)".
    pub picked: String,
}

impl AnyBackend {
    /// Whether this is a GPU (Vulkan) backend.
    pub fn is_gpu(&self) -> bool {
        !matches!(self, AnyBackend::Cpu(_))
    }

    /// The compute type the backend computes with (`auto`/`default` resolved).
    pub fn compute_type(&self) -> crate::ComputeType {
        match self {
            AnyBackend::Cpu(b) => b.compute_type(),
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan(b) => match b.precision() {
                crate::vulkan::Precision::Float32 => crate::ComputeType::Float32,
                crate::vulkan::Precision::Float16 => crate::ComputeType::Float16,
                crate::vulkan::Precision::Int8 { rest_f16: true } => {
                    crate::ComputeType::Int8Float16
                }
                crate::vulkan::Precision::Int8 { rest_f16: false } => {
                    crate::ComputeType::Int8Float32
                }
            },
        }
    }

    /// The CPU backend's thread pool size; `None` for a GPU backend.
    pub fn cpu_threads(&self) -> Option<usize> {
        match self {
            AnyBackend::Cpu(b) => Some(b.threads()),
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan(_) => None,
        }
    }

    /// Run `f` in the CPU backend's thread pool (see
    /// [`CpuBackend::install`]); a GPU backend runs it on the caller's thread.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            AnyBackend::Cpu(b) => b.install(f),
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan(_) => f(),
        }
    }

    /// The Vulkan backend's per-decoder-step counters so far (`None` for
    /// the CPU backend); `Display` gives one `key=value` line body.
    #[cfg(feature = "vulkan")]
    pub fn step_stats(&self) -> Option<crate::vulkan::StepStats> {
        match self {
            AnyBackend::Cpu(_) => None,
            AnyBackend::Vulkan(b) => Some(b.step_stats()),
        }
    }

    /// The Vulkan backend's per-decoder-step counters (none in a build
    /// without the `vulkan` feature).
    #[cfg(not(feature = "vulkan"))]
    pub fn step_stats(&self) -> Option<std::convert::Infallible> {
        None
    }

    /// The model this backend runs. With int8 compute the CPU backend frees
    /// the model's float tensors when it holds the only reference, so callers
    /// should hand their `Arc` to [`AnyBackend::open`] and read it back here.
    pub fn model(&self) -> &Arc<WhisperModel> {
        match self {
            AnyBackend::Cpu(b) => b.model(),
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan(b) => b.model(),
        }
    }

    /// Open the device `req` asks for. `auto` falls back to the CPU backend
    /// (saying why in [`Opened::picked`]); an explicit Vulkan request never
    /// falls back: no loader, driver or device is an error naming the fix.
    /// `compute_type` is resolved per backend: on Vulkan `default`/`auto`
    /// mean float16, `float32` is token-identical with the CPU backend, the
    /// int8 types keep int8 weights on the GPU ([`crate::vulkan::Precision`]);
    /// [`Opened::picked`] says what runs.
    pub fn open(
        model: Arc<WhisperModel>,
        req: DeviceRequest,
        threads: usize,
        compute_type: crate::ComputeType,
    ) -> Result<Opened, BackendError> {
        Self::open_cached(model, req, threads, compute_type, None)
    }

    /// [`Self::open`], a Vulkan backend keeping its compiled pipelines in
    /// `pipeline_cache` (a directory) across runs where the driver allows.
    pub fn open_cached(
        model: Arc<WhisperModel>,
        req: DeviceRequest,
        threads: usize,
        compute_type: crate::ComputeType,
        pipeline_cache: Option<&std::path::Path>,
    ) -> Result<Opened, BackendError> {
        let cpu = |model, why: String| -> Result<Opened, BackendError> {
            let b = CpuBackend::with_compute_type(model, threads, compute_type)?;
            let picked = format!("CPU backend ({} threads){why}", b.threads());
            Ok(Opened {
                backend: AnyBackend::Cpu(b),
                picked,
            })
        };
        match req {
            DeviceRequest::Cpu => cpu(model, String::new()),
            DeviceRequest::Auto => match vulkan_adapters() {
                Ok(list) => match auto_adapter(&list) {
                    Some(a) => {
                        let (index, desc) = (a.index, describe(a));
                        match open_vulkan(model.clone(), index, compute_type, pipeline_cache) {
                            Ok((b, how)) => Ok(Opened {
                                backend: b,
                                picked: format!("{desc}{how}"),
                            }),
                            Err(e @ BackendError::OutOfMemory(_)) => Err(e),
                            Err(e) => cpu(model, format!("; Vulkan device {index} failed: {e}")),
                        }
                    }
                    None => cpu(
                        model,
                        "; only software Vulkan devices found, and the CPU backend is faster"
                            .into(),
                    ),
                },
                // One short line: the driver advice is for `vkwhisper
                // devices` and an explicit `--device vulkan`'s error.
                Err(_) => cpu(
                    model,
                    "; no Vulkan GPU found (`vkwhisper devices` says why)".into(),
                ),
            },
            DeviceRequest::Vulkan(n) => {
                let list = vulkan_adapters().map_err(BackendError::Device)?;
                let a = match n {
                    Some(i) => list.get(i).ok_or_else(|| {
                        BackendError::Device(format!(
                            "there is no Vulkan device {i}: {} found (see `vkwhisper devices`)",
                            list.len()
                        ))
                    })?,
                    // Explicit `vulkan` takes the best adapter, software included.
                    None => auto_adapter(&list).unwrap_or(&list[0]),
                };
                let desc = describe(a);
                let (backend, how) = open_vulkan(model, a.index, compute_type, pipeline_cache)?;
                Ok(Opened {
                    backend,
                    picked: format!("{desc}{how}"),
                })
            }
        }
    }
}

fn describe(a: &AdapterDesc) -> String {
    format!(
        "Vulkan device {}: {} ({}, {})",
        a.index,
        a.name,
        a.kind.name(),
        a.driver
    )
}

/// The Vulkan backend on adapter `index`, and ", compute type X" (with a
/// note when X is not what `ct` names) for [`Opened::picked`].
#[cfg(feature = "vulkan")]
fn open_vulkan(
    model: Arc<WhisperModel>,
    index: usize,
    ct: crate::ComputeType,
    cache: Option<&std::path::Path>,
) -> Result<(AnyBackend, String), BackendError> {
    let b = VulkanBackend::with_options(model, index, ct, cache)?;
    let mut how = format!(", compute type {}", b.precision().name());
    if let Some(note) = b.precision_note() {
        how.push_str(&format!(" ({note})"));
    }
    Ok((AnyBackend::Vulkan(b), how))
}

#[cfg(not(feature = "vulkan"))]
fn open_vulkan(
    _model: Arc<WhisperModel>,
    _index: usize,
    _ct: crate::ComputeType,
    _cache: Option<&std::path::Path>,
) -> Result<(AnyBackend, String), BackendError> {
    Err(BackendError::Device(NO_VULKAN_BUILD.into()))
}

#[cfg(feature = "vulkan")]
fn mismatch() -> BackendError {
    BackendError::Shape("encoder output or state of another backend".into())
}

/// Forward a call to whichever backend `self` is, matching the argument's
/// variant.
macro_rules! each {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Cpu($b) => $e,
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan($b) => $e,
        }
    };
}

impl Backend for AnyBackend {
    type Encoded = AnyEncoded;
    type State = AnyState;

    fn hparams(&self) -> &HParams {
        each!(self, b => b.hparams())
    }

    fn encode(&self, mel: &[f32], batch: usize) -> Result<AnyEncoded, BackendError> {
        Ok(match self {
            AnyBackend::Cpu(b) => AnyEncoded::Cpu(b.encode(mel, batch)?),
            #[cfg(feature = "vulkan")]
            AnyBackend::Vulkan(b) => AnyEncoded::Vulkan(b.encode(mel, batch)?),
        })
    }

    fn encoded_to_host(&self, enc: &AnyEncoded) -> Result<Vec<f32>, BackendError> {
        match (self, enc) {
            (AnyBackend::Cpu(b), AnyEncoded::Cpu(e)) => b.encoded_to_host(e),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyEncoded::Vulkan(e)) => b.encoded_to_host(e),
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn start(&self, enc: &AnyEncoded, index: usize) -> Result<AnyState, BackendError> {
        match (self, enc) {
            (AnyBackend::Cpu(b), AnyEncoded::Cpu(e)) => Ok(AnyState::Cpu(b.start(e, index)?)),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyEncoded::Vulkan(e)) => {
                Ok(AnyState::Vulkan(b.start(e, index)?))
            }
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn start_batch(&self, enc: &AnyEncoded, indices: &[usize]) -> Result<AnyState, BackendError> {
        match (self, enc) {
            (AnyBackend::Cpu(b), AnyEncoded::Cpu(e)) => {
                Ok(AnyState::Cpu(b.start_batch(e, indices)?))
            }
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyEncoded::Vulkan(e)) => {
                Ok(AnyState::Vulkan(b.start_batch(e, indices)?))
            }
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn align(
        &self,
        enc: &AnyEncoded,
        index: usize,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Alignment, BackendError> {
        match (self, enc) {
            (AnyBackend::Cpu(b), AnyEncoded::Cpu(e)) => b.align(e, index, tokens, heads),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyEncoded::Vulkan(e)) => b.align(e, index, tokens, heads),
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn num_seqs(&self, state: &AnyState) -> usize {
        match (self, state) {
            (AnyBackend::Cpu(b), AnyState::Cpu(s)) => b.num_seqs(s),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyState::Vulkan(s)) => b.num_seqs(s),
            #[cfg(feature = "vulkan")]
            _ => 0,
        }
    }

    fn cache_len(&self, state: &AnyState) -> usize {
        match (self, state) {
            (AnyBackend::Cpu(b), AnyState::Cpu(s)) => b.cache_len(s),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyState::Vulkan(s)) => b.cache_len(s),
            #[cfg(feature = "vulkan")]
            _ => 0,
        }
    }

    fn decode(
        &self,
        state: &mut AnyState,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        match (self, state) {
            (AnyBackend::Cpu(b), AnyState::Cpu(s)) => b.decode(s, tokens, t, at, logits),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyState::Vulkan(s)) => b.decode(s, tokens, t, at, logits),
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn reorder(&self, state: &mut AnyState, origins: &[usize]) -> Result<(), BackendError> {
        match (self, state) {
            (AnyBackend::Cpu(b), AnyState::Cpu(s)) => b.reorder(s, origins),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyState::Vulkan(s)) => b.reorder(s, origins),
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }

    fn decode_top(
        &self,
        state: &mut AnyState,
        tokens: &[u32],
        req: &TopRequest<'_>,
        out: &mut TopK,
    ) -> Result<(), BackendError> {
        match (self, state) {
            (AnyBackend::Cpu(b), AnyState::Cpu(s)) => b.decode_top(s, tokens, req, out),
            #[cfg(feature = "vulkan")]
            (AnyBackend::Vulkan(b), AnyState::Vulkan(s)) => b.decode_top(s, tokens, req, out),
            #[cfg(feature = "vulkan")]
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, kind: DeviceKind) -> AdapterDesc {
        AdapterDesc {
            index,
            name: format!("dev{index}"),
            vendor_id: 0x10de,
            kind,
            backend: "vulkan".into(),
            driver: String::new(),
            driver_info: String::new(),
            f16: true,
            subgroups: true,
            matmul: "simt",
        }
    }

    #[test]
    fn parses_device_requests() {
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceRequest::Cpu));
        assert_eq!("vulkan".parse(), Ok(DeviceRequest::Vulkan(None)));
        assert_eq!("vulkan:2".parse(), Ok(DeviceRequest::Vulkan(Some(2))));
        let e = "vulkan:x".parse::<DeviceRequest>().unwrap_err();
        assert!(e.contains("auto, cpu, vulkan or vulkan:N"), "{e}");
        assert!("cuda".parse::<DeviceRequest>().is_err());
    }

    #[test]
    fn auto_prefers_discrete_then_integrated_and_never_software() {
        let list = [
            adapter(0, DeviceKind::Cpu),
            adapter(1, DeviceKind::Integrated),
            adapter(2, DeviceKind::Discrete),
        ];
        assert_eq!(auto_adapter(&list).map(|a| a.index), Some(2));
        assert_eq!(auto_adapter(&list[..2]).map(|a| a.index), Some(1));
        assert_eq!(auto_adapter(&list[..1]), None);
    }
}
