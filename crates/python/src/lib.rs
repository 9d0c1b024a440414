//! `vkwhisper._native`: the small native module under the Python package
//! `vkwhisper` (python/vkwhisper), which gives faster-whisper 1.2.1's API.
//!
//! It wraps the facade and nothing else: [`Engine`] (a loaded model, shared
//! by every Python thread), [`Transcription`] (the lazy window-by-window
//! iterator), language detection, audio decoding, the Silero VAD and the
//! model hub. faster-whisper's names, defaults, option checks and records
//! live in Python; this module takes already-checked plain values.
//!
//! * The GIL is released while anything heavy runs (loading, decoding audio,
//!   the VAD, language detection, each window).
//! * On Python's main thread the work runs on a helper thread while the
//!   caller polls for signals every 50 ms: Ctrl-C cancels the run's
//!   [`CancelToken`] (decoding stops before the next decoder step) and raises
//!   `KeyboardInterrupt`.
//! * Errors become Python exceptions by [`ErrorKind`]; each carries a `kind`
//!   attribute (`"InvalidOption"`, `"NotFound"`, …).

use pyo3::exceptions::{
    PyFileNotFoundError, PyMemoryError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, TryLockError};
use std::time::Duration;
use vkwhisper::{
    Audio, AudioError, CancelToken, ComputeType, DecodeOptions, Device, EngineConfig, Error,
    ErrorKind, Segment, Segments, SileroVad, Task, TranscribeOptions, VadOptions,
};

/// How often the main thread looks for signals while work runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// A facade error as the Python exception that fits its kind.
fn py_err(e: Error) -> PyErr {
    let kind = e.kind();
    let msg = e.to_string();
    let err = match kind {
        ErrorKind::InvalidInput => match &e {
            Error::Audio(AudioError::NotFound { .. }) => PyFileNotFoundError::new_err(msg),
            _ => PyValueError::new_err(msg),
        },
        ErrorKind::InvalidOption => PyValueError::new_err(msg),
        ErrorKind::NotFound => match &e {
            Error::Hub(vkwhisper::models::HubError::UnknownModel { .. }) => {
                PyValueError::new_err(msg)
            }
            _ => PyFileNotFoundError::new_err(msg),
        },
        ErrorKind::OutOfMemory => PyMemoryError::new_err(msg),
        ErrorKind::Unavailable => PyOSError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    };
    Python::attach(|py| {
        // Best effort: an exception instance always takes attributes.
        let _ = err.value(py).setattr("kind", format!("{kind:?}"));
    });
    err
}

/// Whether this is Python's main thread (the only one signals reach).
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?;
    let current = threading.call_method0("current_thread")?;
    Ok(main.is(&current))
}

/// Run `f` without the GIL. On the main thread it runs on a helper thread
/// while this one checks for signals; a signal handler that raises (Ctrl-C's
/// `KeyboardInterrupt`) cancels `cancel`, waits for `f` to return and
/// re-raises.
fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &CancelToken,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    if !on_main_thread(py)? {
        return Ok(py.detach(f));
    }
    std::thread::scope(|scope| {
        let (tx, mut rx) = mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("vkwhisper-py".into())
            .spawn_scoped(scope, move || {
                let r = f();
                let _ = tx.send(());
                r
            })
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread: {e}")))?;
        let mut interrupted = None;
        loop {
            // The receiver travels into the GIL-free closure and back
            // (it is `Send`, not `Sync`).
            let (waited, back) = py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx));
            rx = back;
            if !matches!(waited, Err(mpsc::RecvTimeoutError::Timeout)) {
                break;
            }
            if let Err(e) = py.check_signals() {
                cancel.cancel();
                interrupted = Some(e);
                break;
            }
        }
        let joined = py.detach(|| worker.join());
        if let Some(e) = interrupted {
            return Err(e);
        }
        joined.map_err(|_| PyRuntimeError::new_err("vkwhisper: internal error (a thread panicked)"))
    })
}

/// Audio handed over by the Python layer: a path, an encoded file's bytes,
/// or raw little-endian float32 samples (16 kHz mono).
enum Input {
    Path(PathBuf),
    Encoded(Vec<u8>, Option<String>, String),
    Samples(Vec<f32>),
}

impl Input {
    fn from_py(kind: &str, data: &Bound<'_, PyAny>, hint: Option<String>) -> PyResult<Input> {
        match kind {
            "path" => Ok(Input::Path(data.extract()?)),
            "encoded" => {
                let bytes = data.cast::<PyBytes>()?.as_bytes().to_vec();
                let name = hint.clone().map_or_else(
                    || "<file object>".to_string(),
                    |h| format!("<file object ({h})>"),
                );
                Ok(Input::Encoded(bytes, hint, name))
            }
            "f32" => {
                let bytes = data.cast::<PyBytes>()?.as_bytes();
                Ok(Input::Samples(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ))
            }
            other => Err(PyValueError::new_err(format!(
                "unknown audio kind {other:?}"
            ))),
        }
    }

    /// Decode (without the GIL: called inside `interruptible`).
    fn audio(self) -> Result<Audio<'static>, Error> {
        match self {
            Input::Path(p) => vkwhisper::decode_audio(p),
            Input::Encoded(bytes, hint, name) => {
                vkwhisper::decode_audio_bytes(bytes, hint.as_deref(), &name)
            }
            Input::Samples(s) => Ok(s.into()),
        }
    }
}

/// faster-whisper's `VadOptions` as plain values.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PyVad {
    threshold: f32,
    neg_threshold: Option<f32>,
    min_speech_duration_ms: u32,
    max_speech_duration_s: f64,
    min_silence_duration_ms: u32,
    speech_pad_ms: u32,
}

impl From<PyVad> for VadOptions {
    fn from(v: PyVad) -> Self {
        VadOptions {
            threshold: v.threshold,
            neg_threshold: v.neg_threshold,
            min_speech_duration_ms: v.min_speech_duration_ms,
            max_speech_duration_s: v.max_speech_duration_s,
            min_silence_duration_ms: v.min_silence_duration_ms,
            speech_pad_ms: v.speech_pad_ms,
        }
    }
}

/// One transcription's options as the Python layer resolved them: every
/// key of faster-whisper's `transcribe` that reaches decoding, plus the VAD
/// and the batch size.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PyOptions {
    language: Option<String>,
    task: String,
    beam_size: usize,
    best_of: usize,
    patience: f32,
    length_penalty: f32,
    repetition_penalty: f32,
    no_repeat_ngram_size: usize,
    temperatures: Vec<f64>,
    compression_ratio_threshold: Option<f64>,
    log_prob_threshold: Option<f64>,
    no_speech_threshold: Option<f64>,
    condition_on_previous_text: bool,
    prompt_reset_on_temperature: f64,
    initial_prompt: Option<String>,
    initial_prompt_tokens: Option<Vec<u32>>,
    prefix: Option<String>,
    hotwords: Option<String>,
    suppress_blank: bool,
    suppress_tokens: Option<Vec<i64>>,
    without_timestamps: bool,
    max_initial_timestamp: f64,
    max_new_tokens: Option<usize>,
    clip_timestamps: Vec<f64>,
    multilingual: bool,
    language_detection_threshold: f64,
    language_detection_segments: usize,
    word_timestamps: bool,
    prepend_punctuations: String,
    append_punctuations: String,
    hallucination_silence_threshold: Option<f64>,
    vad: Option<PyVad>,
    batch: Option<usize>,
}

impl PyOptions {
    fn into_options(self) -> PyResult<TranscribeOptions> {
        let task = match self.task.as_str() {
            "transcribe" => Task::Transcribe,
            "translate" => Task::Translate,
            t => {
                return Err(PyValueError::new_err(format!(
                    "'{t}' is not a valid task (accepted tasks: transcribe, translate)"
                )))
            }
        };
        let decoding = DecodeOptions {
            language: self.language,
            task,
            beam_size: self.beam_size,
            best_of: self.best_of,
            patience: self.patience,
            length_penalty: self.length_penalty,
            repetition_penalty: self.repetition_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            temperatures: self.temperatures,
            compression_ratio_threshold: self.compression_ratio_threshold,
            log_prob_threshold: self.log_prob_threshold,
            no_speech_threshold: self.no_speech_threshold,
            condition_on_previous_text: self.condition_on_previous_text,
            prompt_reset_on_temperature: self.prompt_reset_on_temperature,
            initial_prompt: self.initial_prompt,
            initial_prompt_tokens: self.initial_prompt_tokens,
            prefix: self.prefix,
            hotwords: self.hotwords,
            suppress_blank: self.suppress_blank,
            suppress_tokens: self.suppress_tokens,
            without_timestamps: self.without_timestamps,
            max_initial_timestamp: self.max_initial_timestamp,
            max_new_tokens: self.max_new_tokens,
            clip_timestamps: self.clip_timestamps,
            multilingual: self.multilingual,
            language_detection_threshold: self.language_detection_threshold,
            language_detection_segments: self.language_detection_segments,
            word_timestamps: self.word_timestamps,
            prepend_punctuations: self.prepend_punctuations,
            append_punctuations: self.append_punctuations,
            hallucination_silence_threshold: self.hallucination_silence_threshold,
            ..DecodeOptions::default()
        };
        decoding.validate().map_err(|e| py_err(e.into()))?;
        let mut opts = TranscribeOptions::new(decoding);
        if let Some(v) = self.vad {
            let v = VadOptions::from(v);
            v.validate().map_err(|e| py_err(e.into()))?;
            opts = opts.with_vad(v);
        }
        if let Some(n) = self.batch {
            opts = opts.with_batch(n);
        }
        Ok(opts)
    }
}

/// A segment as a tuple: `(id, seek, start, end, text, tokens, avg_logprob,
/// compression_ratio, no_speech_prob, words, temperature)`, `words` `None`
/// or a list of `(start, end, word, probability)`.
fn segment_tuple<'py>(py: Python<'py>, s: Segment) -> PyResult<Bound<'py, PyTuple>> {
    let words = s
        .words
        .map(|ws| {
            ws.into_iter()
                .map(|w| (w.start, w.end, w.word, w.probability))
                .collect::<Vec<_>>()
        })
        .into_pyobject(py)?;
    let items: [Bound<'py, PyAny>; 11] = [
        s.id.into_pyobject(py)?.into_any(),
        s.seek.into_pyobject(py)?.into_any(),
        s.start.into_pyobject(py)?.into_any(),
        s.end.into_pyobject(py)?.into_any(),
        s.text.into_pyobject(py)?.into_any(),
        s.tokens.into_pyobject(py)?.into_any(),
        s.avg_logprob.into_pyobject(py)?.into_any(),
        s.compression_ratio.into_pyobject(py)?.into_any(),
        s.no_speech_prob.into_pyobject(py)?.into_any(),
        words.into_any(),
        f64::from(s.temperature).into_pyobject(py)?.into_any(),
    ];
    PyTuple::new(py, items)
}

/// A loaded model on one device (`vkwhisper::Engine`), shared by every
/// thread that uses it.
#[pyclass(frozen, module = "vkwhisper._native")]
struct Engine {
    inner: vkwhisper::Engine,
}

#[pymethods]
impl Engine {
    /// Load `model` (a directory or a known name, pulled into `cache_dir`
    /// unless `offline`).
    #[new]
    #[pyo3(signature = (model, device="auto", compute_type="default", threads=0, max_concurrent=0, cache_dir=None, offline=false, vad_model=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: PathBuf,
        device: &str,
        compute_type: &str,
        threads: usize,
        max_concurrent: usize,
        cache_dir: Option<PathBuf>,
        offline: bool,
        vad_model: Option<PathBuf>,
    ) -> PyResult<Self> {
        let device: Device = device.parse().map_err(PyValueError::new_err)?;
        let compute_type: ComputeType = compute_type.parse().map_err(|_| {
            PyValueError::new_err(format!(
                "unsupported compute type '{compute_type}': use one of {}",
                ComputeType::NAMES.join(", ")
            ))
        })?;
        let mut config = EngineConfig::default()
            .with_device(device)
            .with_threads(threads)
            .with_compute_type(compute_type)
            .with_max_concurrent(max_concurrent);
        if let Some(dir) = cache_dir {
            config = config.with_cache_dir(dir);
        }
        if offline {
            config = config.offline();
        }
        config.vad_model = vad_model;
        let cancel = CancelToken::new();
        let inner = interruptible(py, &cancel, || vkwhisper::Engine::load(&model, &config))?
            .map_err(py_err)?;
        Ok(Self { inner })
    }

    /// What the engine runs: a dict with the model directory, device line,
    /// compute type, model facts and the tokenizer's special ids.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let i = self.inner.info();
        let tk = self.inner.tokenizer();
        let sp = tk.special;
        let d = pyo3::types::PyDict::new(py);
        d.set_item("model_dir", i.model_dir.to_string_lossy().to_string())?;
        d.set_item("device", &i.device)?;
        d.set_item("gpu", i.gpu)?;
        d.set_item("compute_type", i.compute_type.name())?;
        d.set_item("multilingual", i.multilingual)?;
        d.set_item("n_mels", i.hparams.n_mels)?;
        d.set_item("threads", i.threads)?;
        d.set_item("max_concurrent", i.max_concurrent)?;
        d.set_item("vocab_size", tk.vocab_size())?;
        d.set_item("num_languages", sp.num_languages)?;
        d.set_item("eot", sp.eot)?;
        d.set_item("sot", sp.sot)?;
        d.set_item("translate", sp.translate)?;
        d.set_item("transcribe", sp.transcribe)?;
        d.set_item("sot_lm", sp.sot_lm)?;
        d.set_item("sot_prev", sp.sot_prev)?;
        d.set_item("no_speech", sp.no_speech)?;
        d.set_item("no_timestamps", sp.no_timestamps)?;
        d.set_item("timestamp_begin", sp.timestamp_begin)?;
        d.set_item("non_speech_tokens", tk.non_speech_tokens())?;
        d.set_item("language_codes", tk.language_codes())?;
        Ok(d.into_any())
    }

    /// Token ids of `text` (no special tokens).
    fn encode(&self, text: &str) -> PyResult<Vec<u32>> {
        self.inner
            .tokenizer()
            .encode(text)
            .map_err(PyValueError::new_err)
    }

    /// The text of token ids (special and timestamp tokens dropped).
    fn decode(&self, tokens: Vec<u32>) -> String {
        self.inner.tokenizer().decode(&tokens)
    }

    /// Start a transcription: decode the audio, run the VAD and choose the
    /// language now; the windows are decoded by `Transcription.next_window`.
    #[pyo3(signature = (kind, data, hint, options))]
    fn transcribe(
        &self,
        py: Python<'_>,
        kind: &str,
        data: &Bound<'_, PyAny>,
        hint: Option<String>,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<Transcription> {
        let input = Input::from_py(kind, data, hint)?;
        let cancel = CancelToken::new();
        let opts = options
            .extract::<PyOptions>()?
            .into_options()?
            .with_cancel(cancel.clone());
        let engine = &self.inner;
        let segments = interruptible(py, &cancel, || -> Result<Segments<'static>, Error> {
            let audio = input.audio()?;
            engine.segments(audio, &opts)
        })?
        .map_err(py_err)?;
        let info = segments.info().clone();
        let speech = segments
            .speech_chunks()
            .map(|c| c.iter().map(|c| (c.start, c.end)).collect());
        Ok(Transcription {
            segments: Mutex::new(Some(segments)),
            cancel,
            info,
            speech,
        })
    }

    /// faster-whisper's `detect_language`: `(language, probability,
    /// all_language_probs)` of the first `language_detection_segments`
    /// windows (of the speech, with `vad`).
    #[pyo3(signature = (kind, data, hint, segments, threshold, vad=None))]
    #[allow(clippy::too_many_arguments)]
    fn detect_language(
        &self,
        py: Python<'_>,
        kind: &str,
        data: &Bound<'_, PyAny>,
        hint: Option<String>,
        segments: usize,
        threshold: f64,
        vad: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Detected> {
        let input = Input::from_py(kind, data, hint)?;
        let cancel = CancelToken::new();
        let mut opts = TranscribeOptions::new(DecodeOptions {
            language_detection_segments: segments,
            language_detection_threshold: threshold,
            ..DecodeOptions::default()
        })
        .with_cancel(cancel.clone());
        if let Some(v) = vad {
            let v = VadOptions::from(v.extract::<PyVad>()?);
            v.validate().map_err(|e| py_err(e.into()))?;
            opts = opts.with_vad(v);
        }
        let engine = &self.inner;
        let out = interruptible(py, &cancel, || {
            let audio = input.audio()?;
            engine.detect_language(audio, &opts)
        })?
        .map_err(py_err)?;
        Ok((out.language, out.probability, out.all))
    }
}

/// `detect_language`'s answer: `(language, probability, all_language_probs)`.
type Detected = (String, f64, Vec<(String, f64)>);

/// One transcription in progress: the facade's lazy `Segments`.
#[pyclass(frozen, module = "vkwhisper._native")]
struct Transcription {
    segments: Mutex<Option<Segments<'static>>>,
    cancel: CancelToken,
    info: vkwhisper::TranscriptionInfo,
    speech: Option<Vec<(usize, usize)>>,
}

#[pymethods]
impl Transcription {
    /// `(language, language_probability, duration, duration_after_vad,
    /// all_language_probs, speech_chunks)`.
    #[allow(clippy::type_complexity)]
    fn info(
        &self,
    ) -> (
        String,
        f64,
        f64,
        f64,
        Option<Vec<(String, f64)>>,
        Option<Vec<(usize, usize)>>,
    ) {
        let i = &self.info;
        (
            i.language.clone(),
            i.language_probability,
            i.duration,
            i.duration_after_vad,
            i.all_language_probs.clone(),
            self.speech.clone(),
        )
    }

    /// Decode the next window (or batch of windows): a list of segment
    /// tuples (possibly empty), or `None` when the input is done.
    fn next_window<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let mut guard = match self.segments.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyValueError::new_err("generator already executing"))
            }
        };
        let Some(segments) = guard.as_mut() else {
            return Ok(None);
        };
        let step = interruptible(py, &self.cancel, || segments.next_window());
        let window = match step {
            Ok(Ok(Some(w))) => w,
            Ok(Ok(None)) => {
                *guard = None;
                return Ok(None);
            }
            Ok(Err(e)) => {
                *guard = None;
                return Err(py_err(e));
            }
            Err(e) => {
                *guard = None;
                return Err(e);
            }
        };
        drop(guard);
        let tuples = window
            .into_iter()
            .map(|s| segment_tuple(py, s))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyList::new(py, tuples)?))
    }

    /// `(done_s, total_s)`: how far decoding has got.
    fn progress(&self) -> (f64, f64) {
        match self.segments.try_lock() {
            Ok(g) => match g.as_ref() {
                Some(s) => {
                    let p = s.progress();
                    (p.done_s, p.total_s)
                }
                None => (self.info.duration, self.info.duration),
            },
            Err(_) => (f64::NAN, self.info.duration),
        }
    }

    /// Stop decoding and free the transcription's state (a window decoding
    /// in another thread stops at its next decoder step).
    fn close(&self) {
        self.cancel.cancel();
        if let Ok(mut g) = self.segments.try_lock() {
            *g = None;
        }
    }
}

/// Decode an audio file (`kind` "path") or an encoded file's bytes
/// ("encoded") to 16 kHz mono: little-endian int16 bytes.
#[pyfunction]
#[pyo3(signature = (kind, data, hint=None))]
fn decode_audio<'py>(
    py: Python<'py>,
    kind: &str,
    data: &Bound<'py, PyAny>,
    hint: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let input = Input::from_py(kind, data, hint)?;
    let cancel = CancelToken::new();
    let audio = interruptible(py, &cancel, || input.audio())?.map_err(py_err)?;
    let bytes: Vec<u8> = match audio {
        Audio::S16(s) => s.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Audio::F32(s) => s
            .iter()
            .flat_map(|v| ((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
            .collect(),
    };
    Ok(PyBytes::new(py, &bytes))
}

/// The Silero VAD's speech chunks `[(start, end), …]` (samples) of raw
/// float32 samples, with the VAD model at `vad_path`.
#[pyfunction]
fn speech_timestamps(
    py: Python<'_>,
    vad_path: PathBuf,
    samples: &Bound<'_, PyAny>,
    options: &Bound<'_, PyAny>,
) -> PyResult<Vec<(usize, usize)>> {
    let input = Input::from_py("f32", samples, None)?;
    let opts = VadOptions::from(options.extract::<PyVad>()?);
    opts.validate().map_err(|e| py_err(e.into()))?;
    let cancel = CancelToken::new();
    interruptible(py, &cancel, || -> Result<_, Error> {
        let vad = SileroVad::load(&vad_path)?;
        let audio = input.audio()?;
        Ok(vad
            .speech_timestamps(&audio, &opts)?
            .into_iter()
            .map(|c| (c.start, c.end))
            .collect())
    })?
    .map_err(py_err)
}

/// The Silero VAD model file in `cache_dir` (default: the vkwhisper cache),
/// downloaded once unless `offline`.
#[pyfunction]
#[pyo3(signature = (cache_dir=None, offline=false))]
fn vad_model_path(py: Python<'_>, cache_dir: Option<PathBuf>, offline: bool) -> PyResult<String> {
    let cache = cache_dir.unwrap_or_else(vkwhisper::models::cache_dir);
    let path = vkwhisper::models::vad_path_in(&cache);
    if path.is_file() || offline {
        return Ok(path.to_string_lossy().into_owned());
    }
    let cancel = CancelToken::new();
    interruptible(py, &cancel, || {
        vkwhisper::models::pull_vad_into(&cache, &mut |_| {})
    })?
    .map(|p| p.to_string_lossy().into_owned())
    .map_err(|e| py_err(e.into()))
}

/// The directory of model `name` (a known name, alias or Hugging Face
/// repository id) in `cache_dir`, downloaded first unless installed or
/// `offline` (then a missing model is a `FileNotFoundError`).
#[pyfunction]
#[pyo3(signature = (name, cache_dir=None, offline=false))]
fn pull_model(
    py: Python<'_>,
    name: &str,
    cache_dir: Option<PathBuf>,
    offline: bool,
) -> PyResult<String> {
    let cache = cache_dir.unwrap_or_else(vkwhisper::models::cache_dir);
    let r = vkwhisper::models::resolve_in(&cache, name).map_err(|e| py_err(e.into()))?;
    if r.installed {
        return Ok(r.dir.to_string_lossy().into_owned());
    }
    if offline || r.spec.is_none() {
        return r
            .require_installed()
            .map(|d| d.to_string_lossy().into_owned())
            .map_err(|e| py_err(e.into()));
    }
    let cancel = CancelToken::new();
    interruptible(py, &cancel, || {
        vkwhisper::models::pull_into(&cache, name, &mut |_| {})
    })?
    .map(|p| p.to_string_lossy().into_owned())
    .map_err(|e| py_err(e.into()))
}

/// `[(name, aliases, hugging_face_repo), …]`: the models known by name.
#[pyfunction]
fn known_models() -> Vec<(String, Vec<String>, String)> {
    vkwhisper::models::known_models()
        .iter()
        .map(|m| {
            (
                m.name.to_string(),
                m.aliases.iter().map(|a| a.to_string()).collect(),
                m.hf_repo.to_string(),
            )
        })
        .collect()
}

/// The model cache root (`$VKWHISPER_CACHE`, else the platform cache).
#[pyfunction]
fn cache_dir() -> String {
    vkwhisper::models::cache_dir()
        .to_string_lossy()
        .into_owned()
}

/// The Whisper language codes, in the tokenizer's order.
#[pyfunction]
fn languages() -> Vec<&'static str> {
    vkwhisper::LANGUAGES.to_vec()
}

/// The native part of the vkwhisper Python package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Transcription>()?;
    m.add_function(wrap_pyfunction!(decode_audio, m)?)?;
    m.add_function(wrap_pyfunction!(speech_timestamps, m)?)?;
    m.add_function(wrap_pyfunction!(vad_model_path, m)?)?;
    m.add_function(wrap_pyfunction!(pull_model, m)?)?;
    m.add_function(wrap_pyfunction!(known_models, m)?)?;
    m.add_function(wrap_pyfunction!(cache_dir, m)?)?;
    m.add_function(wrap_pyfunction!(languages, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
