//! `multipart/form-data` bodies of `POST /v1/audio/transcriptions` and
//! `/translations`, read as they stream in: fields in any order, arrays as
//! `name[]` or `name`, booleans as true/false/1/0; the file kept in memory up
//! to 1 MiB and spooled to a temporary file beyond.

use crate::error::{clip, ApiError};
use axum::extract::multipart::{Field, Multipart, MultipartError};
use std::io::Write;
use vkwhisper::{Task, VadOptions};

/// Uploads above this stay on disk, not in memory.
const SPOOL_ABOVE: usize = 1 << 20;
/// Any text field longer than this is refused (a prompt is at most a few KB).
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// The uploaded audio file.
pub enum Upload {
    /// Small files, in memory.
    Memory(Vec<u8>),
    /// Larger files, spooled (deleted when dropped).
    Spooled(tempfile::NamedTempFile),
}

impl Upload {
    /// Bytes received.
    pub fn len(&self) -> u64 {
        match self {
            Upload::Memory(b) => b.len() as u64,
            Upload::Spooled(f) => f.as_file().metadata().map(|m| m.len()).unwrap_or(0),
        }
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `response_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `{"text", "usage"}`.
    Json,
    /// Plain text.
    Text,
    /// SubRip.
    Srt,
    /// WebVTT.
    Vtt,
    /// Segments, words, language, duration.
    VerboseJson,
}

impl ResponseFormat {
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => {
                return Err(ApiError::invalid(
                    "response_format",
                    format!(
                        "response_format {:?} is not one of json, text, srt, verbose_json, vtt",
                        clip(other, 40)
                    ),
                ))
            }
        })
    }
}

/// One transcription or translation request.
pub struct AudioRequest {
    /// The audio.
    pub file: Upload,
    /// Its name as uploaded (extension hint, error messages).
    pub file_name: String,
    /// The model id.
    pub model: String,
    /// Transcribe or translate.
    pub task: Task,
    /// Language code.
    pub language: Option<String>,
    /// The initial prompt.
    pub prompt: Option<String>,
    /// What to answer.
    pub format: ResponseFormat,
    /// 0 (or absent) = faster-whisper's fallback ladder.
    pub temperature: Option<f64>,
    /// Words asked for (`timestamp_granularities[]=word`).
    pub words: bool,
    /// Segments asked for (the default).
    pub segments: bool,
    /// Server-sent events.
    pub stream: bool,
    /// `include[]=logprobs`.
    pub logprobs: bool,
    /// The VAD (`chunking_strategy`, or the `vad_filter` extension).
    pub vad: Option<VadOptions>,
    /// Extension: hotwords.
    pub hotwords: Option<String>,
    /// Extension: beam size.
    pub beam_size: Option<usize>,
    /// Extension: word timestamps without asking for the word granularity.
    pub word_timestamps: bool,
    /// Extension: faster-whisper's `condition_on_previous_text`.
    pub condition_on_previous_text: Option<bool>,
    /// Extension for the web page: progress events in the stream.
    pub progress: bool,
}

/// Read the multipart body. `limit` is the body limit in bytes (for the
/// 413 message).
pub async fn read(mut mp: Multipart, task: Task, limit: u64) -> Result<AudioRequest, ApiError> {
    let mut file: Option<(Upload, String)> = None;
    let mut text: Vec<(String, String)> = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        };
        let name = field.name().unwrap_or_default().to_string();
        let base = name.strip_suffix("[]").unwrap_or(&name).to_string();
        if base == "file" {
            if file.is_some() {
                return Err(ApiError::invalid("file", "file was given twice"));
            }
            let file_name = field
                .file_name()
                .map(|n| clip(n, 80))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "upload".into());
            let upload = receive_file(field, limit).await?;
            file = Some((upload, file_name));
        } else {
            let value = receive_text(field, &base, limit).await?;
            text.push((base, value));
        }
    }
    build(file, text, task)
}

fn multipart_error(e: &MultipartError, limit: u64) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(limit)
    } else {
        ApiError::bad_request(format!(
            "The request body is not valid multipart/form-data: {}",
            clip(&e.body_text(), 120)
        ))
    }
}

async fn receive_file(mut field: Field<'_>, limit: u64) -> Result<Upload, ApiError> {
    let mut upload = Upload::Memory(Vec::new());
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        };
        match &mut upload {
            Upload::Memory(buf) if buf.len() + chunk.len() <= SPOOL_ABOVE => {
                buf.extend_from_slice(&chunk)
            }
            Upload::Memory(buf) => {
                let mut f = tempfile::Builder::new()
                    .prefix("vkwhisper-upload-")
                    .tempfile()
                    .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
                f.write_all(buf)
                    .and_then(|_| f.write_all(&chunk))
                    .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
                upload = Upload::Spooled(f);
            }
            Upload::Spooled(f) => f
                .write_all(&chunk)
                .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?,
        }
    }
    if let Upload::Spooled(f) = &mut upload {
        f.flush()
            .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    }
    Ok(upload)
}

async fn receive_text(mut field: Field<'_>, name: &str, limit: u64) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(c)) => {
                if bytes.len() + c.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::invalid(
                        name,
                        format!("{} is longer than 64 KB", clip(name, 40)),
                    ));
                }
                bytes.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::invalid(name, format!("{} is not UTF-8 text", clip(name, 40))))
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(
            name,
            format!("{name} must be true or false, got {:?}", clip(v, 40)),
        )),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.trim().parse().map_err(|_| {
        ApiError::invalid(
            name,
            format!("{name} must be a number, got {:?}", clip(v, 40)),
        )
    })
}

/// `chunking_strategy`: `auto`, or `{"type": "server_vad", "threshold",
/// "prefix_padding_ms", "silence_duration_ms"}` as JSON.
fn chunking(v: &str) -> Result<VadOptions, ApiError> {
    let bad = |m: String| ApiError::invalid("chunking_strategy", m);
    let v = v.trim();
    if v == "auto" {
        return Ok(VadOptions::default());
    }
    let j: serde_json::Value = serde_json::from_str(v).map_err(|_| {
        bad(format!(
            "chunking_strategy must be \"auto\" or a JSON object, got {:?}",
            clip(v, 60)
        ))
    })?;
    let obj = j
        .as_object()
        .ok_or_else(|| bad("chunking_strategy must be \"auto\" or a JSON object".into()))?;
    match obj.get("type").and_then(|t| t.as_str()) {
        Some("server_vad") => {}
        _ => return Err(bad("chunking_strategy.type must be \"server_vad\"".into())),
    }
    let mut o = VadOptions::default();
    for (k, val) in obj {
        let num = || {
            val.as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    bad(format!(
                        "chunking_strategy.{k} must be a non-negative number"
                    ))
                })
        };
        match k.as_str() {
            "type" => {}
            "threshold" => {
                let t = num()?;
                if t > 1.0 {
                    return Err(bad(
                        "chunking_strategy.threshold must be between 0 and 1".into()
                    ));
                }
                o.threshold = t as f32;
            }
            "prefix_padding_ms" => o.speech_pad_ms = num()?.min(f64::from(u32::MAX)) as u32,
            "silence_duration_ms" => {
                o.min_silence_duration_ms = num()?.min(f64::from(u32::MAX)) as u32
            }
            other => {
                return Err(bad(format!(
                    "unknown chunking_strategy field {:?}",
                    clip(other, 40)
                )))
            }
        }
    }
    o.validate()
        .map_err(|e| bad(format!("chunking_strategy: {e}")))?;
    Ok(o)
}

/// The request from its fields.
fn build(
    file: Option<(Upload, String)>,
    text: Vec<(String, String)>,
    task: Task,
) -> Result<AudioRequest, ApiError> {
    let mut r = AudioRequest {
        file: Upload::Memory(Vec::new()),
        file_name: String::new(),
        model: String::new(),
        task,
        language: None,
        prompt: None,
        format: ResponseFormat::Json,
        temperature: None,
        words: false,
        segments: false,
        stream: false,
        logprobs: false,
        vad: None,
        hotwords: None,
        beam_size: None,
        word_timestamps: false,
        condition_on_previous_text: None,
        progress: false,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut granularities_given = false;
    let mut vad_filter: Option<bool> = None;
    let mut chunked: Option<VadOptions> = None;
    for (name, v) in &text {
        let array = matches!(name.as_str(), "timestamp_granularities" | "include");
        if !array {
            if seen.contains(name) {
                return Err(ApiError::invalid(
                    name,
                    format!("{} was given twice", clip(name, 40)),
                ));
            }
            seen.push(name.clone());
        }
        match name.as_str() {
            "model" => r.model = v.trim().to_string(),
            "language" => {
                let l = v.trim().to_ascii_lowercase();
                if !l.is_empty() {
                    if !vkwhisper::LANGUAGES.contains(&l.as_str()) {
                        return Err(ApiError::invalid(
                            "language",
                            format!(
                                "language {:?} is not a Whisper language code (ISO-639-1, e.g. en, de, fr)",
                                clip(v, 20)
                            ),
                        ));
                    }
                    r.language = Some(l);
                }
            }
            "prompt" => r.prompt = Some(v.clone()).filter(|p| !p.trim().is_empty()),
            "response_format" => r.format = ResponseFormat::parse(v.trim())?,
            "temperature" => {
                let t: f64 = parse_num("temperature", v)?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(ApiError::invalid(
                        "temperature",
                        "temperature must be between 0 and 1",
                    ));
                }
                r.temperature = Some(t);
            }
            "timestamp_granularities" => {
                granularities_given = true;
                for g in v.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    match g {
                        "word" => r.words = true,
                        "segment" => r.segments = true,
                        other => {
                            return Err(ApiError::invalid(
                                "timestamp_granularities",
                                format!(
                                    "timestamp_granularities {:?} is not one of word, segment",
                                    clip(other, 20)
                                ),
                            ))
                        }
                    }
                }
            }
            "stream" => r.stream = parse_bool("stream", v)?,
            "include" => match v.trim() {
                "logprobs" => r.logprobs = true,
                other => {
                    return Err(ApiError::invalid(
                        "include",
                        format!(
                            "include {:?} is not supported (only logprobs)",
                            clip(other, 30)
                        ),
                    ))
                }
            },
            "chunking_strategy" => chunked = Some(chunking(v)?),
            "hotwords" => r.hotwords = Some(v.clone()).filter(|h| !h.trim().is_empty()),
            "beam_size" => {
                let b: usize = parse_num("beam_size", v)?;
                if b == 0 || b > vkwhisper::MAX_BEAMS {
                    return Err(ApiError::invalid(
                        "beam_size",
                        format!("beam_size must be between 1 and {}", vkwhisper::MAX_BEAMS),
                    ));
                }
                r.beam_size = Some(b);
            }
            "vad_filter" => vad_filter = Some(parse_bool("vad_filter", v)?),
            "word_timestamps" => r.word_timestamps = parse_bool("word_timestamps", v)?,
            "condition_on_previous_text" => {
                r.condition_on_previous_text = Some(parse_bool("condition_on_previous_text", v)?)
            }
            "progress" => r.progress = parse_bool("progress", v)?,
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!(
                        "Unrecognized request argument supplied: {}",
                        clip(other, 40)
                    ),
                ))
            }
        }
    }
    let Some((upload, name)) = file else {
        return Err(ApiError::invalid(
            "file",
            "you must provide a file (multipart field `file`)",
        ));
    };
    if upload.is_empty() {
        return Err(ApiError::invalid(
            "file",
            format!("{name}: the file is empty"),
        ));
    }
    r.file = upload;
    r.file_name = name;
    if r.model.is_empty() {
        return Err(ApiError::invalid(
            "model",
            "you must provide a model (multipart field `model`)",
        ));
    }
    if granularities_given && r.format != ResponseFormat::VerboseJson {
        return Err(ApiError::invalid(
            "timestamp_granularities",
            "timestamp_granularities needs response_format verbose_json",
        ));
    }
    if !granularities_given {
        r.segments = true;
    }
    if r.logprobs && r.format != ResponseFormat::Json {
        return Err(ApiError::invalid(
            "include",
            "include[]=logprobs needs response_format json",
        ));
    }
    r.vad = match (chunked, vad_filter) {
        (_, Some(false)) => None,
        (Some(o), _) => Some(o),
        (None, Some(true)) => Some(VadOptions::default()),
        (None, None) => None,
    };
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file() -> Option<(Upload, String)> {
        Some((Upload::Memory(vec![1, 2, 3]), "a.wav".into()))
    }

    #[test]
    fn fields_map_and_defaults_hold() {
        let r = build(file(), fields(&[("model", "base")]), Task::Transcribe)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.model, "base");
        assert_eq!(r.format, ResponseFormat::Json);
        assert!(r.segments && !r.words && !r.stream);
        let r = build(
            file(),
            fields(&[
                ("stream", "1"),
                ("response_format", "verbose_json"),
                ("timestamp_granularities", "word"),
                ("model", "x"),
                ("timestamp_granularities", "segment"),
                ("chunking_strategy", r#"{"type":"server_vad","threshold":0.6,"prefix_padding_ms":300,"silence_duration_ms":500}"#),
            ]),
            Task::Transcribe,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.stream && r.words && r.segments);
        let v = r.vad.unwrap();
        assert_eq!(
            (v.threshold, v.speech_pad_ms, v.min_silence_duration_ms),
            (0.6, 300, 500)
        );
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "model"),
            (&[("model", "m"), ("stream", "yes")], "stream"),
            (&[("model", "m"), ("temperature", "hot")], "temperature"),
            (&[("model", "m"), ("temperature", "3")], "temperature"),
            (
                &[("model", "m"), ("response_format", "xml")],
                "response_format",
            ),
            (
                &[("model", "m"), ("timestamp_granularities", "word")],
                "timestamp_granularities",
            ),
            (&[("model", "m"), ("language", "klingon")], "language"),
            (&[("model", "m"), ("beam_size", "100000")], "beam_size"),
            (&[("model", "m"), ("model", "n")], "model"),
            (&[("model", "m"), ("frobnicate", "1")], "frobnicate"),
            (
                &[
                    ("model", "m"),
                    ("include", "logprobs"),
                    ("response_format", "text"),
                ],
                "include",
            ),
            (
                &[("model", "m"), ("chunking_strategy", "{\"type\":\"x\"}")],
                "chunking_strategy",
            ),
        ];
        for (f, param) in cases {
            let e = match build(file(), fields(f), Task::Transcribe) {
                Ok(_) => panic!("{f:?} accepted"),
                Err(e) => e,
            };
            assert_eq!(e.status, 400, "{f:?}");
            assert_eq!(e.param.as_deref(), Some(*param), "{f:?}: {}", e.message);
        }
        let e = match build(None, fields(&[("model", "m")]), Task::Transcribe) {
            Ok(_) => panic!("no file accepted"),
            Err(e) => e,
        };
        assert_eq!(e.param.as_deref(), Some("file"));
    }
}
