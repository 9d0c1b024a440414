//! [`Engine`]: a loaded model on one device, shared by every caller.

use crate::limiter::Limiter;
use crate::segments::Segments;
use crate::{Audio, Error, Result, TranscribeOptions};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use vkw_backend::any::{AnyBackend, DeviceRequest};
use vkw_backend::ComputeType;
use vkw_decode::{CancelToken, LanguageOutcome, Pipeline, Request, VadFilter};
use vkw_model::{HParams, WhisperModel};
use vkw_segments::{SegmentSink, TranscriptionInfo};
use vkw_vad::SileroVad;

/// Which device to run on: `auto` (a hardware Vulkan GPU, else the CPU),
/// `cpu`, `vulkan` (the best adapter) or `vulkan:N`. Parses from those
/// strings.
pub type Device = DeviceRequest;

/// A model or VAD download's progress, as reported to
/// [`EngineConfig::on_download`].
pub use vkw_hub::Progress as DownloadProgress;

/// Called with each download progress event.
pub type DownloadCallback = Arc<dyn Fn(&DownloadProgress) + Send + Sync>;

/// How to load an [`Engine`]. `Default` is what the CLI does without flags:
/// the best device, all cores, the model's stored type computed in float32
/// (faster-whisper's `compute_type="default"` on a CPU), no concurrency
/// limit, downloads allowed into the default cache.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The device.
    pub device: Device,
    /// CPU threads for compute and host-side work; 0 = all cores.
    pub threads: usize,
    /// CTranslate2's compute type names (`default`, `auto`, `int8`, …).
    pub compute_type: ComputeType,
    /// How many windows decode at once across all calls; the others wait
    /// their turn, first come first served, at window boundaries. 0 = no
    /// limit.
    pub max_concurrent: usize,
    /// The model cache (`None`: `$VKWHISPER_CACHE`, else the platform's
    /// cache directory + `vkwhisper`).
    pub cache_dir: Option<PathBuf>,
    /// Refuse to download a missing model or VAD (`local_files_only`).
    pub offline: bool,
    /// The Silero VAD model file (`None`: the cache's, downloaded on first use).
    pub vad_model: Option<PathBuf>,
    /// Download progress, e.g. to draw a bar; `None` = silent.
    pub on_download: Option<DownloadCallback>,
    /// A limit shared with other engines (overrides `max_concurrent`).
    pub limit: Option<Arc<Limiter>>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("device", &self.device)
            .field("threads", &self.threads)
            .field("compute_type", &self.compute_type)
            .field("max_concurrent", &self.max_concurrent)
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("vad_model", &self.vad_model)
            .field("on_download", &self.on_download.as_ref().map(|_| "…"))
            .field("limit", &self.limit.as_ref().map(|l| l.max()))
            .finish()
    }
}

impl EngineConfig {
    /// On this device.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// With this many CPU threads (0 = all cores).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// With this compute type.
    pub fn with_compute_type(mut self, compute_type: ComputeType) -> Self {
        self.compute_type = compute_type;
        self
    }

    /// At most `n` windows decoding at once (0 = no limit).
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Models (and the VAD) in and downloaded into `dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Share `limit` with other engines: at most its `max` windows decode at
    /// once across all of them.
    pub fn with_limit(mut self, limit: Arc<Limiter>) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Never download.
    pub fn offline(mut self) -> Self {
        self.offline = true;
        self
    }

    /// Report download progress to `f`.
    pub fn with_download_progress(
        mut self,
        f: impl Fn(&DownloadProgress) + Send + Sync + 'static,
    ) -> Self {
        self.on_download = Some(Arc::new(f));
        self
    }
}

/// What an engine runs: the device, the effective compute type, the model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineInfo {
    /// The model directory.
    pub model_dir: PathBuf,
    /// The device, e.g. "Vulkan device 0: AMD Radeon RX 7600 (discrete, radv)"
    /// or "CPU backend (8 threads)", with why `auto` fell back if it did.
    pub device: String,
    /// Whether the engine runs on a GPU.
    pub gpu: bool,
    /// The compute type in effect (`auto` and `default` resolved).
    pub compute_type: ComputeType,
    /// The model's hyper-parameters (layers, widths, mel bins, vocabulary).
    pub hparams: HParams,
    /// Whether the model knows several languages (else English only).
    pub multilingual: bool,
    /// CPU threads for compute and host-side work.
    pub threads: usize,
    /// The concurrency limit (0 = none).
    pub max_concurrent: usize,
}

struct Inner {
    backend: Arc<AnyBackend>,
    model: Arc<WhisperModel>,
    info: EngineInfo,
    limiter: Arc<Limiter>,
    /// Host-side work of a GPU engine (the CPU backend has its own pool).
    pool: Option<rayon::ThreadPool>,
    cache: PathBuf,
    offline: bool,
    vad_path: Option<PathBuf>,
    on_download: Option<DownloadCallback>,
    vad: Mutex<Option<Arc<SileroVad>>>,
}

/// A loaded Whisper model on one device: immutable and shared. Cloning is
/// cheap (an `Arc`); every clone and every thread may transcribe at once,
/// each call with its own state, getting the tokens it would get alone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("info", &self.inner.info)
            .finish()
    }
}

impl Engine {
    /// Load `model`: a known name (`tiny.en`, `base`, `large-v3`, …; pulled
    /// into the cache on first use unless the config is offline) or a
    /// directory holding a CTranslate2 model or a transformers Whisper
    /// checkpoint.
    pub fn load(model: impl AsRef<Path>, config: &EngineConfig) -> Result<Engine> {
        // An explicit Vulkan request fails before any download.
        vkw_backend::any::check_request(config.device)
            .map_err(|e| Error::Backend(vkw_backend::BackendError::Unsupported(e)))?;
        let cache = config.cache_dir.clone().unwrap_or_else(vkw_hub::cache_dir);
        let dir = resolve_model(model.as_ref(), &cache, config)?;
        let model = Arc::new(WhisperModel::load(&dir)?);
        // The backend gets the only reference, so int8 compute can free the
        // float weights it no longer needs; the model is read back from it.
        // Vulkan keeps its compiled kernels (wgpu's pipeline cache) next to
        // the models, so the second run starts without the shader compiler.
        let opened = AnyBackend::open_cached(
            model,
            config.device,
            config.threads,
            config.compute_type,
            Some(&cache.join("pipelines")),
        )?;
        let backend = opened.backend;
        let model = backend.model().clone();
        let (pool, threads) = match backend.cpu_threads() {
            Some(n) => (None, n),
            None => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(config.threads)
                    .thread_name(|i| format!("vkwhisper-host-{i}"))
                    .build()
                    .map_err(|e| Error::InvalidOption(format!("cannot start threads: {e}")))?;
                let n = pool.current_num_threads();
                (Some(pool), n)
            }
        };
        let info = EngineInfo {
            model_dir: dir,
            device: opened.picked,
            gpu: backend.is_gpu(),
            compute_type: backend.compute_type(),
            hparams: model.hparams,
            multilingual: model.tokenizer.special.multilingual,
            threads,
            max_concurrent: config
                .limit
                .as_ref()
                .map_or(config.max_concurrent, |l| l.max()),
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                backend: Arc::new(backend),
                model,
                info,
                limiter: config
                    .limit
                    .clone()
                    .unwrap_or_else(|| Arc::new(Limiter::new(config.max_concurrent))),
                pool,
                cache,
                offline: config.offline,
                vad_path: config.vad_model.clone(),
                on_download: config.on_download.clone(),
                vad: Mutex::new(None),
            }),
        })
    }

    /// What this engine runs.
    pub fn info(&self) -> &EngineInfo {
        &self.inner.info
    }

    /// The model's tokenizer: special token ids, the non-speech symbols
    /// `suppress_tokens=[-1]` stands for, encode and decode.
    pub fn tokenizer(&self) -> &vkw_model::Tokenizer {
        &self.inner.model.tokenizer
    }

    /// The GPU backend's per-decoder-step counters (dispatches, submits,
    /// buffers and bind groups created, bytes read back, host and wait time)
    /// as one `key=value` line; `None` on the CPU.
    pub fn step_stats(&self) -> Option<String> {
        self.inner.backend.step_stats().map(|s| s.to_string())
    }

    /// Calls decoding a window now, and calls waiting for their turn
    /// (always 0 waiting without a `max_concurrent` limit).
    pub fn load_now(&self) -> (usize, usize) {
        self.inner.limiter.load()
    }

    /// Transcribe `audio` (16 kHz mono: a decoded file, a slice, 16-bit
    /// PCM), streaming into `sink`: [`SegmentSink::begin`] with the
    /// language and duration before the first window is decoded, then each
    /// segment as its window finishes and the progress after each window.
    /// Every mode goes through here: sequential or batched
    /// ([`TranscribeOptions::batch`]), with or without the VAD.
    ///
    /// Returns the transcription's info once every window is decoded; a
    /// sink answering `Break` ends the call with [`Error::Stopped`], a
    /// cancelled token with a [`crate::ErrorKind::Cancelled`] error.
    pub fn transcribe<'a>(
        &self,
        audio: impl Into<Audio<'a>>,
        opts: &TranscribeOptions,
        sink: &mut dyn SegmentSink,
    ) -> Result<TranscriptionInfo> {
        let mut segments = self.segments(audio, opts)?;
        if sink.begin(segments.info()).is_break() {
            return Err(Error::Stopped);
        }
        let mut reported = -1.0;
        while let Some(window) = segments.next_window()? {
            for s in &window {
                if sink.segment(s).is_break() {
                    return Err(Error::Stopped);
                }
            }
            let p = segments.progress();
            reported = p.done_s;
            if sink.progress(p).is_break() {
                return Err(Error::Stopped);
            }
        }
        let p = segments.progress();
        if p.done_s > reported && sink.progress(p).is_break() {
            return Err(Error::Stopped);
        }
        Ok(segments.info().clone())
    }

    /// faster-whisper's shape: the info (language and its probability,
    /// durations) now, before any transcript window is decoded, and the
    /// segments lazily — each `next` decodes windows only as needed, and
    /// dropping the iterator stops decoding.
    pub fn segments<'a>(
        &self,
        audio: impl Into<Audio<'a>>,
        opts: &TranscribeOptions,
    ) -> Result<Segments<'a>> {
        let audio = audio.into();
        let cancel = opts.cancel.clone().unwrap_or_default();
        let vad = if opts.needs_vad() {
            Some(VadFilter {
                model: self.vad_model()?,
                options: opts.effective_vad().unwrap_or_default(),
            })
        } else {
            None
        };
        let request = Request {
            options: opts.decoding.clone(),
            vad,
            batch_size: opts.batch,
            cancel: cancel.clone(),
        };
        let backend = self.inner.backend.clone();
        let model = self.inner.model.clone();
        let pipeline = self.run(&cancel, opts.urgent, move || {
            Pipeline::new(backend, model, audio, request)
        })?;
        Ok(Segments::new(self.clone(), pipeline, cancel, opts.urgent))
    }

    /// faster-whisper's `WhisperModel.detect_language`: the language of the
    /// first `decoding.language_detection_segments` windows of `audio` (of
    /// its speech when `opts.vad` is set), stopping at the first window whose
    /// top probability exceeds `decoding.language_detection_threshold`.
    /// Needs a multilingual model.
    pub fn detect_language<'a>(
        &self,
        audio: impl Into<Audio<'a>>,
        opts: &TranscribeOptions,
    ) -> Result<DetectedLanguage> {
        let audio = audio.into();
        let cancel = opts.cancel.clone().unwrap_or_default();
        let vad = match &opts.vad {
            Some(o) => Some(VadFilter {
                model: self.vad_model()?,
                options: o.clone(),
            }),
            None => None,
        };
        let d = &opts.decoding;
        let (segs, thr) = (
            d.language_detection_segments,
            d.language_detection_threshold,
        );
        let backend = self.inner.backend.clone();
        let model = self.inner.model.clone();
        let c = cancel.clone();
        self.run(&cancel, opts.urgent, move || {
            vkw_decode::detect_language(&*backend, &model, audio, vad.as_ref(), segs, thr, &c)
        })
    }

    /// The Silero VAD model, loaded once (downloaded into the cache on first
    /// use unless offline).
    pub(crate) fn vad_model(&self) -> Result<Arc<SileroVad>> {
        let mut slot = self
            .inner
            .vad
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let path = match &self.inner.vad_path {
            Some(p) => p.clone(),
            None => {
                let p = vkw_hub::vad_path_in(&self.inner.cache);
                if p.is_file() || self.inner.offline {
                    p
                } else {
                    let cb = self.inner.on_download.clone();
                    vkw_hub::pull_vad_into(&self.inner.cache, &mut |e| {
                        if let Some(cb) = &cb {
                            cb(&e)
                        }
                    })?
                }
            }
        };
        let m = Arc::new(SileroVad::load(&path)?);
        *slot = Some(m.clone());
        Ok(m)
    }

    /// Run one decoding step: wait for a turn (`max_concurrent`; `urgent`
    /// goes ahead of ordinary waiters), then run `f` in the engine's thread
    /// pool, turning a panic into an error.
    pub(crate) fn run<T: Send>(
        &self,
        cancel: &CancelToken,
        urgent: bool,
        f: impl FnOnce() -> std::result::Result<T, vkw_decode::DecodeError> + Send,
    ) -> Result<T> {
        let _permit = self
            .inner
            .limiter
            .acquire_with(cancel, urgent)
            .ok_or(Error::Decode(vkw_decode::DecodeError::Cancelled))?;
        let inner = &self.inner;
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| match &inner.pool {
            Some(pool) => pool.install(f),
            None => inner.backend.install(f),
        }));
        match caught {
            Ok(r) => r.map_err(Error::from),
            Err(payload) => Err(Error::Panic(panic_message(payload.as_ref()))),
        }
    }
}

/// The detected language: faster-whisper's `(language, probability,
/// all_language_probs)`.
pub type DetectedLanguage = LanguageOutcome;

/// The directory of `model`: an existing directory as is, else a known name
/// in the cache, downloaded when missing (unless offline).
fn resolve_model(model: &Path, cache: &Path, config: &EngineConfig) -> Result<PathBuf> {
    if model.is_dir() {
        let r = vkw_hub::ResolvedModel {
            dir: model.to_path_buf(),
            spec: None,
            installed: vkw_hub::is_installed(model),
        };
        return Ok(r.require_installed()?.to_path_buf());
    }
    let name = model.to_string_lossy();
    let r = vkw_hub::resolve_in(cache, &name)?;
    if r.installed {
        return Ok(r.dir);
    }
    match r.spec {
        Some(spec) if !config.offline => {
            let cb = config.on_download.clone();
            Ok(vkw_hub::pull_into(cache, spec.name, &mut |e| {
                if let Some(cb) = &cb {
                    cb(&e)
                }
            })?)
        }
        _ => Ok(r.require_installed()?.to_path_buf()),
    }
}

/// The text of a panic payload, one line.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    text.lines().next().unwrap_or_default().to_string()
}
