//! `/v1/stream`: the simple live socket, for the web page and scripts; and
//! what both live sockets share (admission, subprotocols, options).
//!
//! Protocol: the client's first message is a JSON object of options
//! (`model`, `language`, `policy`, `min_chunk`, `sample_rate`, `format`
//! s16le|f32le, `vad_threshold`, `silence_ms`, `prefix_padding_ms`,
//! `beam_size`; all optional); the server answers `{"type":"ready",…}`.
//! Then binary frames of mono PCM. The server sends
//! `{"type":"update","committed":[{text,start,end}],"tentative","lag_s",
//! "behind_s","audio_s"}` after each decoding pass that changed something,
//! `{"type":"utterance","text","start","end"}` when the speaker pauses,
//! and, after the client's `{"type":"finish"}`, `{"type":"final","text",
//! "utterances":[…],"audio_s"}` before closing. `{"type":"commit"}` ends the
//! current utterance now. A malformed message gets an `error` message and
//! the session goes on; a client that closes the socket ends the session
//! at once.

use crate::error::{clip, ApiError};
use crate::live::{Command, Output, Session, SessionPermit};
use crate::models::ModelHandle;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;
use vkwhisper::live::{CommitPolicy, LiveEvent, StreamOptions};

/// The largest message a live socket accepts (a second of 48 kHz f32 is
/// 192 KB; base64 adds a third).
pub const MAX_MESSAGE: usize = 4 << 20;

/// Choose the subprotocol to answer with: a browser fails the handshake
/// when it asked for some and gets none back. The API key travels as
/// `openai-insecure-api-key.KEY` (OpenAI's convention for browsers) and is
/// never echoed.
pub fn select_protocol(ws: &mut WebSocketUpgrade, preferred: &[&str]) {
    let asked: Vec<String> = ws
        .requested_protocols()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty() && !p.starts_with("openai-insecure-api-key."))
        .collect();
    let pick = preferred
        .iter()
        .find(|p| asked.iter().any(|a| a == *p))
        .map(|p| p.to_string())
        .or_else(|| asked.first().cloned());
    if let Some(v) = pick.and_then(|p| HeaderValue::from_str(&p).ok()) {
        ws.set_selected_protocol(v);
    }
}

/// The model for a live session: the default when none (or one of
/// OpenAI's hosted names, `gpt-…`, which clients hard-code) is asked for.
pub async fn live_model(
    state: &AppState,
    requested: Option<&str>,
) -> Result<ModelHandle, ApiError> {
    let requested = requested.map(str::trim).unwrap_or_default();
    let name = if requested.is_empty() || requested.starts_with("gpt-") {
        state
            .0
            .registry
            .default_id()
            .ok_or_else(|| ApiError::unavailable("no default model"))?
            .to_string()
    } else {
        requested.to_string()
    };
    state.0.registry.get(&name).await
}

/// A language code, checked.
pub fn language(v: Option<&str>) -> Result<Option<String>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(l) if vkwhisper::LANGUAGES.contains(&l) => Ok(Some(l.to_string())),
        Some(l) => Err(ApiError::invalid(
            "language",
            format!("{:?} is not a Whisper language code", clip(l, 20)),
        )),
    }
}

/// An error as a live socket sends it: OpenAI's error object under `error`.
pub fn error_message(e: &ApiError) -> Value {
    let mut v = e.body();
    v["type"] = json!("error");
    v
}

async fn send_json(ws: &mut WebSocket, v: &Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

/// The options of a `/v1/stream` session.
struct StreamParams {
    opts: StreamOptions,
    model: Option<String>,
    rate: u32,
    f32le: bool,
}

fn num(v: &Value, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(n) if n >= lo && n <= hi => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                key,
                format!("{key} must be a number from {lo} to {hi}"),
            )),
        },
    }
}

fn stream_params(v: &Value) -> Result<StreamParams, ApiError> {
    let obj = v.as_object().ok_or_else(|| {
        ApiError::bad_request("the first message must be a JSON object of options")
    })?;
    const KNOWN: &[&str] = &[
        "type",
        "model",
        "language",
        "policy",
        "min_chunk",
        "sample_rate",
        "format",
        "vad_threshold",
        "silence_ms",
        "prefix_padding_ms",
        "beam_size",
    ];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k,
            format!("unknown option {:?}", clip(k, 40)),
        ));
    }
    let mut opts = StreamOptions::default();
    opts.decoding.language = language(v.get("language").and_then(Value::as_str))?;
    if let Some(p) = v.get("policy").and_then(Value::as_str) {
        opts.policy = p
            .parse::<CommitPolicy>()
            .map_err(|e| ApiError::invalid("policy", e))?;
    }
    if let Some(c) = num(v, "min_chunk", 0.1, 10.0)? {
        opts.min_chunk_s = c;
    }
    if let Some(t) = num(v, "vad_threshold", 0.01, 0.99)? {
        opts.vad.threshold = t as f32;
    }
    if let Some(ms) = num(v, "silence_ms", 0.0, 10_000.0)? {
        opts.vad.min_silence_duration_ms = ms as u32;
    }
    if let Some(ms) = num(v, "prefix_padding_ms", 0.0, 5_000.0)? {
        opts.vad.speech_pad_ms = ms as u32;
    }
    if let Some(b) = num(v, "beam_size", 1.0, 16.0)? {
        opts.decoding.beam_size = b as usize;
    }
    let rate = num(v, "sample_rate", 8_000.0, 192_000.0)?.map_or(16_000, |r| r as u32);
    let f32le = match v.get("format").and_then(Value::as_str) {
        None | Some("s16le") => false,
        Some("f32le") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("{:?}: use s16le or f32le", clip(other, 20)),
            ))
        }
    };
    Ok(StreamParams {
        opts,
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
        rate,
        f32le,
    })
}

/// `GET /v1/stream` (a WebSocket upgrade).
pub async fn stream_route(State(state): State<AppState>, mut ws: WebSocketUpgrade) -> Response {
    let permit = match state.0.sessions.admit() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    select_protocol(&mut ws, &["vkwhisper.stream"]);
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| stream_socket(socket, state, permit))
}

/// Raw PCM bytes to samples, keeping a partial sample for the next frame.
pub struct PcmDecoder {
    f32le: bool,
    carry: Vec<u8>,
}

impl PcmDecoder {
    /// s16le, or f32le.
    pub fn new(f32le: bool) -> Self {
        Self {
            f32le,
            carry: Vec::new(),
        }
    }

    /// The whole samples in `carry` + `bytes`.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<f32> {
        self.carry.extend_from_slice(bytes);
        let width = if self.f32le { 4 } else { 2 };
        let whole = self.carry.len() / width * width;
        let out = self.carry[..whole]
            .chunks_exact(width)
            .map(|b| {
                if self.f32le {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    // NaN or out-of-range samples must not reach the model.
                    if x.is_finite() {
                        x.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                } else {
                    f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0
                }
            })
            .collect();
        self.carry.drain(..whole);
        out
    }
}

/// What the socket has said so far.
#[derive(Default)]
struct Transcript {
    utterances: Vec<Value>,
    text: String,
}

async fn stream_socket(mut ws: WebSocket, state: AppState, permit: SessionPermit) {
    let limit = state.0.config.max_session;
    let deadline = Instant::now() + limit;
    // The options: the first text message, within 30 s.
    let params = loop {
        let msg = match tokio::time::timeout(Duration::from_secs(30), ws.recv()).await {
            Ok(Some(Ok(m))) => m,
            Ok(_) => return,
            Err(_) => {
                let e = ApiError::bad_request("no options message within 30 s");
                send_json(&mut ws, &error_message(&e)).await;
                return;
            }
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                let e = ApiError::bad_request("send the JSON options message before any audio");
                send_json(&mut ws, &error_message(&e)).await;
                return;
            }
            Message::Close(_) => return,
            _ => continue,
        };
        let parsed = serde_json::from_str::<Value>(text.as_str())
            .map_err(|e| ApiError::bad_request(format!("the options message is not JSON: {e}")))
            .and_then(|v| stream_params(&v));
        match parsed {
            Ok(p) => break p,
            Err(e) => {
                send_json(&mut ws, &error_message(&e)).await;
                return;
            }
        }
    };
    let model = match live_model(&state, params.model.as_deref()).await {
        Ok(m) => m,
        Err(e) => {
            send_json(&mut ws, &error_message(&e)).await;
            return;
        }
    };
    let model_id = model.id.clone();
    let policy = format!("{:?}", params.opts.policy);
    let mut session = match Session::start(permit, params.opts, model, params.rate) {
        Ok(s) => s,
        Err(e) => {
            send_json(&mut ws, &error_message(&e)).await;
            return;
        }
    };
    let ready = json!({"type": "ready", "model": model_id, "sample_rate": params.rate,
        "format": if params.f32le { "f32le" } else { "s16le" }, "policy": policy,
        "max_session_s": limit.as_secs_f64()});
    if !send_json(&mut ws, &ready).await {
        return;
    }
    let mut pcm = PcmDecoder::new(params.f32le);
    let mut said = Transcript::default();
    let mut finishing = false;
    loop {
        tokio::select! {
            // Read on while finishing too: pings are answered only as
            // messages are read, and a client waiting for the final text
            // must not see its keepalive time out.
            msg = ws.recv() => {
                let Some(Ok(msg)) = msg else { return };
                match msg {
                    _ if finishing && !matches!(msg, Message::Close(_)) => {}
                    Message::Binary(b) => session.send(Command::Audio(pcm.decode(&b), std::time::Instant::now())),
                    Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
                        Ok(v) if v["type"] == "finish" => {
                            finishing = true;
                            session.send(Command::Finish);
                        }
                        Ok(v) if v["type"] == "commit" => session.send(Command::Commit),
                        _ => {
                            let e = ApiError::invalid("type", format!(
                                "unknown message {:?}: send binary PCM frames, {{\"type\":\"commit\"}} or {{\"type\":\"finish\"}}",
                                clip(t.as_str(), 60)));
                            if !send_json(&mut ws, &error_message(&e)).await { return; }
                        }
                    },
                    Message::Close(_) => return,
                    _ => {}
                }
            }
            out = session.rx.recv() => {
                let Some(out) = out else { return };
                match out {
                    Output::Batch(b) => {
                        for m in batch_messages(&b, &mut said) {
                            if !send_json(&mut ws, &m).await { return; }
                        }
                    }
                    Output::Failed(e) => {
                        let e = ApiError::internal(format!("live transcription failed: {e}"));
                        send_json(&mut ws, &error_message(&e)).await;
                        return;
                    }
                    Output::Finished => {
                        let fin = json!({"type": "final", "text": said.text.trim(),
                            "utterances": said.utterances});
                        send_json(&mut ws, &fin).await;
                        let _ = ws.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline), if !finishing => {
                let mut e = ApiError::bad_request(format!(
                    "the session reached the server's limit of {} s (--max-session-seconds); finishing",
                    limit.as_secs()));
                e.code = Some("session_expired");
                if !send_json(&mut ws, &error_message(&e)).await { return; }
                finishing = true;
                session.send(Command::Finish);
            }
        }
    }
}

/// The messages one poll gives: an update when words were committed or
/// the tentative text changed, and each finished utterance.
fn batch_messages(b: &crate::live::Batch, said: &mut Transcript) -> Vec<Value> {
    let mut out = Vec::new();
    let mut committed = Vec::new();
    let mut tentative: Option<String> = None;
    let mut lag: Option<f64> = None;
    for (e, l) in &b.events {
        match e {
            LiveEvent::Committed { words, text, .. } => {
                committed.extend(
                    words
                        .iter()
                        .map(|w| json!({"text": w.text, "start": w.start, "end": w.end})),
                );
                said.text.push_str(text);
                lag = l.or(lag);
                // The tentative text after a commit in a final pass is gone.
                tentative = Some(String::new());
            }
            LiveEvent::Tentative { text, .. } => tentative = Some(text.clone()),
            LiveEvent::UtteranceEnd {
                text, start, end, ..
            } if !text.trim().is_empty() => {
                if !committed.is_empty() || tentative.is_some() {
                    out.push(update(&mut committed, tentative.take(), lag.take(), b));
                }
                let u =
                    json!({"type": "utterance", "text": text.trim(), "start": start, "end": end});
                said.utterances.push(u.clone());
                out.push(u);
            }
            _ => {}
        }
    }
    if !committed.is_empty() || tentative.is_some() {
        out.push(update(&mut committed, tentative, lag, b));
    }
    out
}

fn update(
    committed: &mut Vec<Value>,
    tentative: Option<String>,
    lag: Option<f64>,
    b: &crate::live::Batch,
) -> Value {
    json!({"type": "update", "committed": std::mem::take(committed),
        "tentative": tentative.unwrap_or_default(), "lag_s": lag,
        "behind_s": b.behind_s, "audio_s": b.audio_s})
}
