//! `/v1/realtime?intent=transcription`: OpenAI's Realtime API for
//! transcription sessions, on the live core.
//!
//! Both dialects of the protocol: the beta one (`OpenAI-Beta: realtime=v1`,
//! `transcription_session.update` → `transcription_session.updated`, flat
//! session fields) and the GA one (`session.update` with `session.type =
//! "transcription"` → `session.updated`, fields under `audio.input`). The
//! first event (`…created`) follows the header; each update is answered in
//! its own dialect.
//!
//! Audio is base64 pcm16 in `input_audio_buffer.append` (24 kHz, or 16 kHz
//! with `audio.input.format.rate`). With server VAD (the default: threshold
//! 0.5, prefix padding 300 ms, silence 500 ms) each utterance is an item:
//! `input_audio_buffer.speech_started`, then
//! `conversation.item.input_audio_transcription.delta` with the text as it
//! is committed (before the turn ends — OpenAI's own models send theirs
//! after), `speech_stopped`, `committed`, and `.completed` with the turn's
//! whole text. With `turn_detection: null` the client commits: everything
//! appended since the last commit is one item. Malformed events get an
//! `error` event; the session goes on.

use crate::error::{clip, ApiError};
use crate::live::{Batch, Command, Output, Session, SessionPermit};
use crate::ws::{error_message, language, live_model, select_protocol, PcmDecoder, MAX_MESSAGE};
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use tokio::time::Instant;
use vkwhisper::live::{LiveEvent, StreamOptions};

/// Server VAD settings (OpenAI's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Vad {
    threshold: f64,
    prefix_padding_ms: u32,
    silence_duration_ms: u32,
}

impl Default for Vad {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

/// The session's configuration.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    model: Option<String>,
    language: Option<String>,
    prompt: Option<String>,
    /// `None`: manual commits.
    vad: Option<Vad>,
    rate: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model: None,
            language: None,
            prompt: None,
            vad: Some(Vad::default()),
            rate: 24_000,
        }
    }
}

impl Config {
    fn stream_options(&self) -> StreamOptions {
        let mut o = StreamOptions::default();
        o.decoding.language = self.language.clone();
        o.decoding.initial_prompt = self.prompt.clone().filter(|p| !p.is_empty());
        // Manual commits still skip silence inside the item (the VAD gates
        // decoding); only turn ends are the client's.
        let v = self.vad.unwrap_or_default();
        o.vad.threshold = v.threshold as f32;
        o.vad.speech_pad_ms = v.prefix_padding_ms;
        o.vad.min_silence_duration_ms = v.silence_duration_ms;
        o
    }

    fn turn_detection(&self) -> Value {
        match self.vad {
            Some(v) => json!({"type": "server_vad", "threshold": v.threshold,
                "prefix_padding_ms": v.prefix_padding_ms, "silence_duration_ms": v.silence_duration_ms}),
            None => Value::Null,
        }
    }

    fn transcription(&self, model_id: &str) -> Value {
        json!({"model": self.model.clone().unwrap_or_else(|| model_id.to_string()),
            "language": self.language, "prompt": self.prompt.clone().unwrap_or_default()})
    }
}

/// Which dialect an event is in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    Beta,
    Ga,
}

/// `GET /v1/realtime` (a WebSocket upgrade).
pub async fn realtime_route(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    mut ws: WebSocketUpgrade,
) -> Response {
    if let Some(i) = q.get("intent").filter(|i| *i != "transcription") {
        return ApiError::invalid(
            "intent",
            format!(
                "this server offers transcription sessions only (intent=transcription), not {:?}",
                clip(i, 40)
            ),
        )
        .into_response();
    }
    let permit = match state.0.sessions.admit() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let beta = headers
        .get("openai-beta")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("realtime=v1"));
    let dialect = if beta { Dialect::Beta } else { Dialect::Ga };
    select_protocol(&mut ws, &["realtime"]);
    ws.max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let mut rt = Realtime::new(state, dialect);
            rt.run(socket, permit).await;
        })
}

/// One item (a user turn) being transcribed.
struct Item {
    id: String,
    text: String,
    /// The committed event was sent.
    committed: bool,
}

struct Realtime {
    state: AppState,
    dialect: Dialect,
    config: Config,
    session_id: String,
    next_event: u64,
    next_item: u64,
    model_id: String,
    session: Option<Session>,
    pcm: PcmDecoder,
    /// Live utterance number → item (server VAD).
    items: HashMap<u64, Item>,
    /// The item of manual mode, until the client commits it.
    manual: Option<Item>,
    /// Items committed by the client, waiting for their final pass.
    pending_commits: std::collections::VecDeque<Item>,
    previous_item: Option<String>,
    /// Utterances open (speech started, not stopped), server VAD.
    in_speech: usize,
    /// Audio appended since the last commit or clear, seconds.
    appended_s: f64,
}

fn rand_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{prefix}_{:016x}", h.finish())
}

impl Realtime {
    fn new(state: AppState, dialect: Dialect) -> Self {
        Self {
            state,
            dialect,
            config: Config::default(),
            session_id: rand_id("sess"),
            next_event: 0,
            next_item: 0,
            model_id: String::new(),
            session: None,
            pcm: PcmDecoder::new(false),
            items: HashMap::new(),
            manual: None,
            pending_commits: Default::default(),
            previous_item: None,
            in_speech: 0,
            appended_s: 0.0,
        }
    }

    fn event(&mut self, kind: &str, mut body: Value) -> Value {
        self.next_event += 1;
        body["type"] = json!(kind);
        body["event_id"] = json!(format!("event_{}", self.next_event));
        body
    }

    fn new_item(&mut self) -> Item {
        self.next_item += 1;
        Item {
            id: format!("item_{:04}{}", self.next_item, &self.session_id[5..13]),
            text: String::new(),
            committed: false,
        }
    }

    /// The session object in `d`'s shape.
    fn session_object(&self, d: Dialect) -> Value {
        let c = &self.config;
        let t = c.transcription(&self.model_id);
        match d {
            Dialect::Beta => {
                json!({"id": self.session_id, "object": "realtime.transcription_session",
                "expires_at": 0, "modalities": ["text"], "input_audio_format": "pcm16",
                "input_audio_transcription": t, "turn_detection": c.turn_detection(),
                "input_audio_noise_reduction": null, "include": null, "client_secret": null})
            }
            Dialect::Ga => json!({"type": "transcription", "id": self.session_id,
                "object": "realtime.transcription_session", "expires_at": 0,
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": c.rate},
                    "transcription": t, "turn_detection": c.turn_detection(), "noise_reduction": null}},
                "include": null}),
        }
    }

    fn session_event(&mut self, d: Dialect, created: bool) -> Value {
        let kind = match (d, created) {
            (Dialect::Beta, true) => "transcription_session.created",
            (Dialect::Beta, false) => "transcription_session.updated",
            (Dialect::Ga, true) => "session.created",
            (Dialect::Ga, false) => "session.updated",
        };
        let session = self.session_object(d);
        self.event(kind, json!({"session": session}))
    }

    fn error(&mut self, e: &ApiError, client_event: Option<&Value>) -> Value {
        let mut v = error_message(e);
        v["error"]["event_id"] = client_event
            .and_then(|c| c.get("event_id"))
            .cloned()
            .unwrap_or(Value::Null);
        self.next_event += 1;
        v["event_id"] = json!(format!("event_{}", self.next_event));
        v
    }

    async fn run(&mut self, mut ws: WebSocket, permit: SessionPermit) {
        let limit = self.state.0.config.max_session;
        let deadline = Instant::now() + limit;
        let mut permit = Some(permit);
        // The default model now, so `…created` names it.
        match live_model(&self.state, None).await {
            Ok(m) => {
                self.model_id = m.id.clone();
                let Some(p) = permit.take() else { return };
                match Session::start(p, self.config.stream_options(), m, self.config.rate) {
                    Ok(s) => self.session = Some(s),
                    Err(e) => {
                        let err = self.error(&e, None);
                        send(&mut ws, &err).await;
                        return;
                    }
                }
            }
            Err(e) => {
                let err = self.error(&e, None);
                send(&mut ws, &err).await;
                return;
            }
        }
        let first = self.session_event(self.dialect, true);
        if !send(&mut ws, &first).await {
            return;
        }
        let mut audio_started = false;
        loop {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            tokio::select! {
                msg = ws.recv() => {
                    let Some(Ok(msg)) = msg else { return };
                    let out = match msg {
                        Message::Text(t) => self.client_event(t.as_str(), &mut audio_started).await,
                        Message::Binary(_) => {
                            let e = ApiError::bad_request("binary frames are not part of this protocol: send input_audio_buffer.append events with base64 audio");
                            vec![self.error(&e, None)]
                        }
                        Message::Close(_) => return,
                        _ => Vec::new(),
                    };
                    for v in out {
                        if !send(&mut ws, &v).await { return; }
                    }
                }
                out = session.rx.recv() => {
                    let msgs = match out {
                        Some(Output::Batch(b)) => self.batch(&b),
                        Some(Output::Failed(e)) => {
                            let e = ApiError::internal(format!("live transcription failed: {e}"));
                            let v = self.error(&e, None);
                            send(&mut ws, &v).await;
                            return;
                        }
                        Some(Output::Finished) | None => return,
                    };
                    for v in msgs {
                        if !send(&mut ws, &v).await { return; }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let mut e = ApiError::bad_request(format!(
                        "Your session hit the maximum duration of {} seconds (--max-session-seconds).",
                        limit.as_secs()));
                    e.code = Some("session_expired");
                    let v = self.error(&e, None);
                    send(&mut ws, &v).await;
                    let _ = ws.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }

    /// One client event: the answers to send now.
    async fn client_event(&mut self, text: &str, audio_started: &mut bool) -> Vec<Value> {
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                let mut e = ApiError::bad_request(format!(
                    "the event is not a JSON object: {:?}",
                    clip(text, 60)
                ));
                e.code = Some("invalid_json");
                return vec![self.error(&e, None)];
            }
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let r = match kind.as_str() {
            "input_audio_buffer.append" => self.append(&v, audio_started),
            "input_audio_buffer.commit" => self.commit(),
            "input_audio_buffer.clear" => {
                if let Some(s) = &self.session {
                    s.send(Command::Clear);
                }
                self.appended_s = 0.0;
                self.manual = None;
                // The open utterance is dropped without an end.
                self.items.retain(|_, i| i.committed);
                self.in_speech = 0;
                Ok(vec![self.event("input_audio_buffer.cleared", json!({}))])
            }
            "transcription_session.update" => self.update(&v, Dialect::Beta).await,
            "session.update" => self.update(&v, Dialect::Ga).await,
            "" => Err(ApiError::invalid("type", "the event has no `type`")),
            other => {
                let mut e = ApiError::invalid(
                    "type",
                    format!(
                        "{:?} is not supported in a transcription session (supported: session.update, transcription_session.update, input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear)",
                        clip(other, 60)
                    ),
                );
                e.code = Some("invalid_event");
                Err(e)
            }
        };
        r.unwrap_or_else(|e| vec![self.error(&e, Some(&v))])
    }

    fn append(&mut self, v: &Value, audio_started: &mut bool) -> Result<Vec<Value>, ApiError> {
        let b64 = v
            .get("audio")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("audio", "`audio` must be a base64 string"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| ApiError::invalid("audio", format!("`audio` is not base64: {e}")))?;
        let samples = self.pcm.decode(&bytes);
        self.appended_s += samples.len() as f64 / f64::from(self.config.rate);
        *audio_started = true;
        if let Some(s) = &self.session {
            s.send(Command::Audio(samples, std::time::Instant::now()));
        }
        Ok(Vec::new())
    }

    fn commit(&mut self) -> Result<Vec<Value>, ApiError> {
        let empty = match self.config.vad {
            Some(_) => self.in_speech == 0,
            None => self.appended_s < 0.1,
        };
        if empty {
            let mut e = ApiError::bad_request(
                "Error committing input audio buffer: the buffer has no speech (or less than 100 ms of audio) to commit.",
            );
            e.code = Some("input_audio_buffer_commit_empty");
            return Err(e);
        }
        self.appended_s = 0.0;
        if let Some(s) = &self.session {
            s.send(Command::Commit);
        }
        if self.config.vad.is_some() {
            // speech_stopped, committed and completed follow from the stream.
            return Ok(Vec::new());
        }
        let mut item = self.manual.take().unwrap_or_else(|| self.new_item());
        item.committed = true;
        let ev = self.committed_events(&item.id);
        self.pending_commits.push_back(item);
        Ok(ev)
    }

    /// `input_audio_buffer.committed` and the item's creation.
    fn committed_events(&mut self, item_id: &str) -> Vec<Value> {
        let prev = self.previous_item.replace(item_id.to_string());
        let committed = self.event(
            "input_audio_buffer.committed",
            json!({"item_id": item_id, "previous_item_id": prev}),
        );
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message",
            "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": null}]});
        let created = match self.dialect {
            Dialect::Beta => self.event(
                "conversation.item.created",
                json!({"previous_item_id": prev, "item": item}),
            ),
            Dialect::Ga => self.event(
                "conversation.item.added",
                json!({"previous_item_id": prev, "item": item}),
            ),
        };
        vec![committed, created]
    }

    async fn update(&mut self, v: &Value, d: Dialect) -> Result<Vec<Value>, ApiError> {
        let s = v
            .get("session")
            .filter(|s| s.is_object())
            .ok_or_else(|| ApiError::invalid("session", "`session` must be an object"))?;
        let mut c = self.config.clone();
        // Beta fields at the top, GA ones under audio.input.
        let input = s.pointer("/audio/input");
        let field = |beta: &str, ga: &str| -> Option<&Value> {
            input.and_then(|i| i.get(ga)).or_else(|| s.get(beta))
        };
        if let Some(t) = field("input_audio_transcription", "transcription") {
            if !t.is_null() {
                if let Some(m) = t.get("model").and_then(Value::as_str) {
                    c.model = Some(m.to_string());
                }
                if let Some(l) = t.get("language") {
                    c.language = language(l.as_str())?;
                }
                if let Some(p) = t.get("prompt").and_then(Value::as_str) {
                    c.prompt = Some(p.to_string());
                }
            }
        }
        if let Some(td) = field("turn_detection", "turn_detection") {
            c.vad = match td {
                Value::Null => None,
                Value::Object(o) => {
                    let kind = o
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("server_vad");
                    if kind != "server_vad" && kind != "semantic_vad" {
                        return Err(ApiError::invalid(
                            "session.turn_detection.type",
                            format!(
                                "{:?}: use server_vad, or null for manual commits",
                                clip(kind, 30)
                            ),
                        ));
                    }
                    let mut vad = Vad::default();
                    if let Some(t) = o.get("threshold").and_then(Value::as_f64) {
                        if !(0.0..=1.0).contains(&t) {
                            return Err(ApiError::invalid(
                                "session.turn_detection.threshold",
                                "threshold must be between 0 and 1",
                            ));
                        }
                        vad.threshold = t.clamp(0.01, 0.99);
                    }
                    if let Some(ms) = o.get("prefix_padding_ms").and_then(Value::as_u64) {
                        vad.prefix_padding_ms = ms.min(5_000) as u32;
                    }
                    if let Some(ms) = o.get("silence_duration_ms").and_then(Value::as_u64) {
                        vad.silence_duration_ms = ms.min(10_000) as u32;
                    }
                    Some(vad)
                }
                _ => {
                    return Err(ApiError::invalid(
                        "session.turn_detection",
                        "an object or null",
                    ))
                }
            };
        }
        if let Some(fmt) = input.and_then(|i| i.get("format")) {
            match fmt.get("type").and_then(Value::as_str) {
                None | Some("audio/pcm") => {}
                Some(other) => return Err(unsupported_format(other)),
            }
            if let Some(r) = fmt.get("rate") {
                c.rate = match r.as_u64() {
                    Some(16_000) => 16_000,
                    Some(24_000) => 24_000,
                    _ => {
                        return Err(ApiError::invalid(
                            "session.audio.input.format.rate",
                            "pcm16 at 24000 Hz (or 16000 Hz)",
                        ))
                    }
                };
            }
        }
        if let Some(f) = s.get("input_audio_format").and_then(Value::as_str) {
            if f != "pcm16" {
                return Err(unsupported_format(f));
            }
        }
        let mut out = Vec::new();
        if c != self.config {
            let model_changed = c.model != self.config.model;
            let stream_changed = model_changed
                || c.language != self.config.language
                || c.prompt != self.config.prompt
                || c.vad.unwrap_or_default() != self.config.vad.unwrap_or_default();
            let model = if model_changed || stream_changed {
                Some(live_model(&self.state, c.model.as_deref()).await?)
            } else {
                None
            };
            if c.rate != self.config.rate {
                if let Some(s) = &self.session {
                    s.send(Command::Rate(c.rate));
                }
            }
            if let (Some(m), Some(s)) = (model, &self.session) {
                self.model_id = m.id.clone();
                // Before any audio this is just the stream made anew; later
                // the current one is finished first (its items complete).
                s.send(Command::Restart(Box::new(c.stream_options()), m));
            }
            self.config = c;
        }
        out.push(self.session_event(d, false));
        Ok(out)
    }

    /// The protocol's events for one poll of the stream.
    fn batch(&mut self, b: &Batch) -> Vec<Value> {
        let mut out = Vec::new();
        for (e, _) in &b.events {
            match e {
                LiveEvent::SpeechStarted { at, utterance } => {
                    if self.config.vad.is_none() {
                        continue;
                    }
                    self.in_speech += 1;
                    let item = self.new_item();
                    let ev = self.event(
                        "input_audio_buffer.speech_started",
                        json!({"audio_start_ms": (at * 1000.0).round() as u64, "item_id": item.id}),
                    );
                    self.items.insert(*utterance, item);
                    out.push(ev);
                }
                LiveEvent::SpeechStopped { at, utterance } => {
                    if self.config.vad.is_none() {
                        continue;
                    }
                    self.in_speech = self.in_speech.saturating_sub(1);
                    let Some(id) = self.items.get(utterance).map(|i| i.id.clone()) else {
                        continue;
                    };
                    let ev = self.event(
                        "input_audio_buffer.speech_stopped",
                        json!({"audio_end_ms": (at * 1000.0).round() as u64, "item_id": id}),
                    );
                    out.push(ev);
                    out.extend(self.committed_events(&id));
                    if let Some(i) = self.items.get_mut(utterance) {
                        i.committed = true;
                    }
                }
                LiveEvent::Committed {
                    text, utterance, ..
                } => {
                    let item = if self.config.vad.is_some() {
                        self.items.get_mut(utterance)
                    } else {
                        if self.manual.is_none() && self.pending_commits.is_empty() {
                            self.manual = Some(self.new_item());
                        }
                        // A commit's final pass belongs to the committed item.
                        self.pending_commits.front_mut().or(self.manual.as_mut())
                    };
                    let Some(item) = item else { continue };
                    let delta = if item.text.is_empty() {
                        text.trim_start().to_string()
                    } else {
                        text.clone()
                    };
                    item.text.push_str(&delta);
                    let id = item.id.clone();
                    if !delta.is_empty() {
                        let ev = self.event(
                            "conversation.item.input_audio_transcription.delta",
                            json!({"item_id": id, "content_index": 0, "delta": delta}),
                        );
                        out.push(ev);
                    }
                }
                LiveEvent::UtteranceEnd {
                    utterance,
                    start,
                    end,
                    ..
                } => {
                    if self.config.vad.is_none() {
                        continue;
                    }
                    if let Some(item) = self.items.remove(utterance) {
                        out.push(self.completed(item, end - start));
                    }
                }
                LiveEvent::Tentative { .. } => {}
            }
        }
        // Manual mode: a commit's batch ends with its final pass.
        if self.config.vad.is_none() && b.committed {
            if let Some(item) = self.pending_commits.pop_front() {
                out.push(self.completed(item, 0.0));
            }
        }
        out
    }

    fn completed(&mut self, item: Item, seconds: f64) -> Value {
        self.event("conversation.item.input_audio_transcription.completed",
            json!({"item_id": item.id, "content_index": 0, "transcript": item.text.trim_end(),
                "usage": {"type": "duration", "seconds": (seconds.max(0.0) * 1000.0).round() / 1000.0}}))
    }
}

fn unsupported_format(f: &str) -> ApiError {
    let mut e = ApiError::invalid(
        "session.input_audio_format",
        format!("{:?} is not supported: send pcm16 (audio/pcm)", clip(f, 30)),
    );
    e.code = Some("unsupported_format");
    e
}

async fn send(ws: &mut WebSocket, v: &Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}
