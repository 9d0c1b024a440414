//! The routes: OpenAI's audio API, models, health, metrics and the page.

use crate::error::ApiError;
use crate::formats;
use crate::jobs::{CancelOnDrop, Event};
use crate::metrics::Gauges;
use crate::request::{self, AudioRequest};
use crate::AppState;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use vkwhisper::{CancelToken, DecodeOptions, Segment, Task, TranscribeOptions};

/// The page at `/`, embedded in the binary.
const INDEX: &str = include_str!("../assets/index.html");
/// The page's live dictation and its AudioWorklet.
const LIVE_JS: &str = include_str!("../assets/live.js");
const WORKLET_JS: &str = include_str!("../assets/pcm-worklet.js");

/// The whole HTTP surface over `state` (no socket: tests call it directly).
pub fn app(state: AppState) -> Router {
    let limit = state.0.config.max_upload;
    let audio = Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/v1/audio/translations", post(translations))
        // The limit is enforced while the body streams in (413).
        .layer(DefaultBodyLimit::max(
            limit.try_into().unwrap_or(usize::MAX),
        ));
    let v1 = Router::new()
        .route("/v1/realtime", get(crate::realtime::realtime_route))
        .route("/v1/stream", get(crate::ws::stream_route))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .merge(audio)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(index))
        .route("/live.js", get(|| async { script(LIVE_JS) }))
        .route("/pcm-worklet.js", get(|| async { script(WORKLET_JS) }))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(v1)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// A panic in a handler: a 500 in OpenAI's shape, and the server goes on.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".into());
    ApiError::internal(format!("internal error: {what}")).into_response()
}

async fn no_route(req: Request) -> ApiError {
    ApiError::no_route(req.uri().path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `--api-key`: `Authorization: Bearer KEY` on `/v1/*`.
async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.0.config.api_key {
        // Browsers cannot set headers on a WebSocket: there the key comes
        // as the subprotocol `openai-insecure-api-key.KEY`, OpenAI's way.
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .or_else(|| {
                req.headers()
                    .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .find_map(|p| p.trim().strip_prefix("openai-insecure-api-key."))
            });
        // Compare every byte whatever the mismatch (no early exit).
        let ok = given.is_some_and(|g| {
            g.len() == key.len()
                && g.bytes()
                    .zip(key.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0
        });
        if !ok {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// Count every response by route and status.
async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = match req.uri().path() {
        p @ ("/v1/audio/transcriptions"
        | "/v1/audio/translations"
        | "/v1/models"
        | "/v1/realtime"
        | "/v1/stream"
        | "/health"
        | "/metrics"
        | "/live.js"
        | "/pcm-worklet.js"
        | "/") => p.to_string(),
        p if p.starts_with("/v1/models/") => "/v1/models/{id}".into(),
        _ => "other".into(),
    };
    let r = next.run(req).await;
    state.0.metrics.request(&route, r.status().as_u16());
    r
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

fn script(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        return Json(json!({"status": "ok"})).into_response();
    }
    let why = state.load_error().map_or_else(
        || "loading the model".to_string(),
        |e| format!("the model failed to load: {e}"),
    );
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "loading", "message": why})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}

async fn metrics(State(state): State<AppState>) -> Response {
    let s = &state.0;
    let running = s.jobs.running(s.config.active_jobs());
    let gauges = Gauges {
        queued: s.jobs.in_system().saturating_sub(running),
        in_flight: running,
        windows: s.limit.load(),
        models_loaded: s.registry.loaded_count(),
        live_sessions: s.sessions.active(),
        ready: state.is_ready(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&gauges),
    )
        .into_response()
}

fn model_object(id: &str, created: u64) -> serde_json::Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "vkwhisper"})
}

async fn list_models(State(state): State<AppState>) -> Response {
    let created = state.0.registry.created();
    let data: Vec<_> = state
        .0
        .registry
        .list()
        .iter()
        .map(|m| model_object(&m.id, created))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    // A path axum cannot decode (e.g. a bad percent escape) is the client's
    // mistake, answered in OpenAI's JSON like every other (found by the
    // server_request fuzz target: axum's own rejection is text/plain).
    let Path(id) = match id {
        Ok(id) => id,
        Err(e) => {
            return ApiError::invalid("model", format!("Bad model id in the path: {e}"))
                .into_response()
        }
    };
    let created = state.0.registry.created();
    match state.0.registry.list().into_iter().find(|m| m.id == id) {
        Some(m) => Json(model_object(&m.id, created)).into_response(),
        None => ApiError::model_not_found(&id).into_response(),
    }
}

async fn transcriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> Response {
    audio(state, headers, mp, Task::Transcribe).await
}

async fn translations(
    State(state): State<AppState>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> Response {
    audio(state, headers, mp, Task::Translate).await
}

/// Transcribe or translate one upload.
async fn audio(
    state: AppState,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Response {
    match run_audio(state, headers, mp, task).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run_audio(
    state: AppState,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
    task: Task,
) -> Result<Response, ApiError> {
    let limit = state.0.config.max_upload;
    // A declared length over the limit is refused before reading anything.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mp = mp.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body with a `file` field ({})",
            e.body_text()
        ))
    })?;
    let mut req = request::read(mp, task, limit).await?;
    let admitted = state.0.jobs.admit()?;
    let model = state.0.registry.get(&req.model).await?;
    if task == Task::Translate && !model.engine().info().multilingual {
        return Err(ApiError::invalid(
            "model",
            format!(
                "the model {:?} is English-only and cannot translate: use a multilingual model",
                crate::error::clip(&req.model, 80)
            ),
        ));
    }
    let cancel = CancelToken::new();
    let opts = options(&req, task, cancel.clone());
    // Dropped with the handler (client gone) or the stream: cancels the job.
    let guard = CancelOnDrop(cancel.clone());
    let upload = std::mem::replace(&mut req.file, request::Upload::Memory(Vec::new()));
    let rx = state
        .0
        .jobs
        .run(admitted, model, upload, req.file_name.clone(), opts, cancel)
        .await?;
    if req.stream {
        // The headers wait for the audio to decode: a file that is not
        // audio is a 400 as without `stream`, not an error event after a 200.
        let mut rx = rx;
        let first = match rx.recv().await {
            Some(Event::Failed(e)) => return Err(e),
            Some(Event::Begin(_)) => None,
            other => other,
        };
        return Ok(stream(req, rx, first, guard).into_response());
    }
    collect(req, rx, guard).await
}

/// The library options a request asks for.
fn options(req: &AudioRequest, task: Task, cancel: CancelToken) -> TranscribeOptions {
    let mut d = DecodeOptions {
        language: req.language.clone(),
        task,
        initial_prompt: req.prompt.clone(),
        hotwords: req.hotwords.clone(),
        word_timestamps: req.words || req.word_timestamps,
        token_logprobs: req.logprobs,
        ..DecodeOptions::default()
    };
    // temperature 0 (OpenAI's default) = faster-whisper's fallback ladder;
    // another value samples at that temperature only.
    if let Some(t) = req.temperature.filter(|t| *t > 0.0) {
        d.temperatures = vec![t];
    }
    if let Some(b) = req.beam_size {
        d.beam_size = b;
    }
    if let Some(c) = req.condition_on_previous_text {
        d.condition_on_previous_text = c;
    }
    let mut o = TranscribeOptions::new(d).with_cancel(cancel);
    o.vad = req.vad.clone();
    o
}

/// Wait for the whole transcription, then answer in the requested format.
async fn collect(
    req: AudioRequest,
    mut rx: tokio::sync::mpsc::Receiver<Event>,
    _guard: CancelOnDrop,
) -> Result<Response, ApiError> {
    let mut segments: Vec<Segment> = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            Event::Begin(_) | Event::Progress(_) => {}
            Event::Window(w) => segments.extend(w),
            Event::End(info) => return Ok(formats::render(&req, &info, &segments)),
            Event::Failed(e) => return Err(e),
        }
    }
    Err(ApiError::internal(
        "the transcription ended without a result",
    ))
}

/// What the event stream has said so far.
struct Streamed {
    /// An event received before the stream started, sent first.
    first: Option<Event>,
    rx: tokio::sync::mpsc::Receiver<Event>,
    req: AudioRequest,
    text: String,
    segments: Vec<Segment>,
    _guard: CancelOnDrop,
    done: bool,
}

fn sse_json(v: serde_json::Value) -> SseEvent {
    SseEvent::default().data(v.to_string())
}

/// `stream=true`: `transcript.text.delta` events as windows finish, one
/// `transcript.text.done` whose text is the deltas joined, keep-alive
/// comments for proxies; an error after the headers is an `error` event.
fn stream(
    req: AudioRequest,
    rx: tokio::sync::mpsc::Receiver<Event>,
    first: Option<Event>,
    guard: CancelOnDrop,
) -> impl IntoResponse {
    let st = Streamed {
        first,
        rx,
        req,
        text: String::new(),
        segments: Vec::new(),
        _guard: guard,
        done: false,
    };
    let events = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let next = match st.first.take() {
                Some(e) => Some(e),
                None => st.rx.recv().await,
            };
            let Some(e) = next else {
                st.done = true;
                let err = ApiError::internal("the transcription ended without a result");
                return Some((Ok::<_, Infallible>(sse_json(err.body())), st));
            };
            match e {
                Event::Begin(_) => {}
                Event::Progress(p) if st.req.progress => {
                    let ev = json!({"type": "transcript.progress", "done_s": p.done_s, "total_s": p.total_s});
                    return Some((Ok(sse_json(ev)), st));
                }
                Event::Progress(_) => {}
                Event::Window(w) => {
                    let mut delta: String = w.iter().map(|s| s.text.as_str()).collect();
                    if st.text.is_empty() {
                        delta = delta.trim_start().to_string();
                    }
                    let logprobs = st.req.logprobs.then(|| formats::logprobs(&w));
                    st.segments.extend(w);
                    if delta.is_empty() {
                        continue;
                    }
                    st.text.push_str(&delta);
                    let mut ev = json!({"type": "transcript.text.delta", "delta": delta});
                    if let Some(lp) = logprobs {
                        ev["logprobs"] = lp;
                    }
                    return Some((Ok(sse_json(ev)), st));
                }
                Event::End(info) => {
                    st.done = true;
                    let mut ev = json!({
                        "type": "transcript.text.done",
                        "text": st.text,
                        "usage": formats::usage(&info),
                    });
                    if st.req.logprobs {
                        ev["logprobs"] = formats::logprobs(&st.segments);
                    }
                    return Some((Ok(sse_json(ev)), st));
                }
                Event::Failed(e) => {
                    st.done = true;
                    return Some((Ok(sse_json(e.body())), st));
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_in_openai_shape() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("kaboom");
                    }
                    "unreachable"
                }),
            )
            .layer(CatchPanicLayer::custom(panic_response));
        let r = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let b = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("kaboom"));
    }
}
