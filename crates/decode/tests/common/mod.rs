//! What the golden-options tests share: faster-whisper's `transcribe` keyword
//! arguments (as `scripts/make_option_golden.py` records them in
//! `tests/fixtures/extra/golden_options.json`) mapped to [`TranscribeOptions`].

use vkw_decode::{parse_clip_timestamps, TranscribeOptions};

/// The options a recorded case ran with; panics on a keyword no test maps,
/// so a new recorded option cannot be silently ignored.
pub fn fw_options(kwargs: &serde_json::Value) -> TranscribeOptions {
    let mut o = TranscribeOptions::default();
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
                    "translate" => vkw_decode::Task::Translate,
                    _ => vkw_decode::Task::Transcribe,
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
