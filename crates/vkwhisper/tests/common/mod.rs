//! What the parity tests share: the engine they run through (the CPU
//! backend, 2 threads, models from the fetch script's cache, never a
//! download), and faster-whisper's `transcribe` keyword arguments (as
//! `scripts/make_option_golden.py` records them in
//! `tests/fixtures/extra/golden_options.json`) mapped to [`DecodeOptions`].
#![allow(dead_code)]

use vkwhisper::{parse_clip_timestamps, DecodeOptions, Device, Engine, EngineConfig};

/// The installed model `name` on the CPU backend with 2 threads, or `None`
/// (with a message; a failure under `CI=true`) when it is not installed.
pub fn engine(name: &str) -> Option<Engine> {
    engine_on(name, Device::Cpu)
}

/// [`engine`] on another device, computing in float32 (token-exact with
/// the CPU backend on every device).
pub fn engine_on(name: &str, device: Device) -> Option<Engine> {
    let dir = vkw_testkit::model_dir(name)?;
    let config = EngineConfig::default()
        .with_device(device)
        .with_threads(2)
        .with_compute_type(vkwhisper::ComputeType::Float32)
        .offline();
    Some(Engine::load(dir, &config).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// The installed Silero VAD model, or `None` (as [`engine`]); the engines
/// above find it in the same cache.
pub fn vad_installed() -> bool {
    vkw_testkit::vad_model().is_some()
}

/// The options a recorded case ran with; panics on a keyword no test maps,
/// so a new recorded option cannot be silently ignored.
pub fn fw_options(kwargs: &serde_json::Value) -> DecodeOptions {
    let mut o = DecodeOptions::default();
    let kw = kwargs.as_object().unwrap();
    for (k, v) in kw {
        match k.as_str() {
            "hotwords" => o.hotwords = v.as_str().map(String::from),
            "prefix" => o.prefix = v.as_str().map(String::from),
            "initial_prompt" => o.initial_prompt = v.as_str().map(String::from),
            "clip_timestamps" => {
                o.clip_timestamps = parse_clip_timestamps(v.as_str().unwrap()).unwrap()
            }
            "max_new_tokens" => o.max_new_tokens = v.as_u64().map(|n| n as usize),
            "suppress_blank" => o.suppress_blank = v.as_bool().unwrap(),
            "suppress_tokens" => {
                o.suppress_tokens = Some(
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_i64().unwrap())
                        .collect(),
                )
            }
            "max_initial_timestamp" => o.max_initial_timestamp = v.as_f64().unwrap(),
            "repetition_penalty" => o.repetition_penalty = v.as_f64().unwrap() as f32,
            "no_repeat_ngram_size" => o.no_repeat_ngram_size = v.as_u64().unwrap() as usize,
            "length_penalty" => o.length_penalty = v.as_f64().unwrap() as f32,
            "patience" => o.patience = v.as_f64().unwrap() as f32,
            "beam_size" => o.beam_size = v.as_u64().unwrap() as usize,
            "without_timestamps" => o.without_timestamps = v.as_bool().unwrap(),
            "condition_on_previous_text" => o.condition_on_previous_text = v.as_bool().unwrap(),
            "temperature" => {
                o.temperatures = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_f64().unwrap())
                    .collect()
            }
            "language" => o.language = v.as_str().map(String::from),
            "task" => {
                o.task = match v.as_str().unwrap() {
                    "translate" => vkwhisper::Task::Translate,
                    _ => vkwhisper::Task::Transcribe,
                }
            }
            "multilingual" => o.multilingual = v.as_bool().unwrap(),
            "language_detection_segments" => {
                o.language_detection_segments = v.as_u64().unwrap() as usize
            }
            "language_detection_threshold" => o.language_detection_threshold = v.as_f64().unwrap(),
            "word_timestamps" => o.word_timestamps = v.as_bool().unwrap(),
            "hallucination_silence_threshold" => o.hallucination_silence_threshold = v.as_f64(),
            "prepend_punctuations" => o.prepend_punctuations = v.as_str().unwrap().into(),
            "append_punctuations" => o.append_punctuations = v.as_str().unwrap().into(),
            other => panic!("golden_options.json uses an option the tests do not map: {other}"),
        }
    }
    o
}
