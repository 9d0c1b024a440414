//! Every route, format, granularity rule and error of `vkwhisper serve`,
//! driven through `app()` with no socket (tower's `oneshot`), on the real
//! tiny.en and base models.

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tower::ServiceExt;
use vkw_server::{app, AppState, ServerConfig};
use vkw_testkit::{fixtures, model_dir};
use vkwhisper::{Device, EngineConfig};

const BOUNDARY: &str = "vkwtestboundary7MA4YWxk";

fn config(models: &[&str]) -> Option<ServerConfig> {
    let mut pinned = Vec::new();
    for m in models {
        pinned.push((m.to_string(), model_dir(m)?));
    }
    let cache = model_dir("tiny.en")?
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)?;
    Some(ServerConfig {
        models: pinned,
        models_dir: None,
        cache,
        aliases: vec![("my-alias".into(), "tiny.en".into())],
        workers: 2,
        queue: 8,
        max_upload: 25 << 20,
        api_key: None,
        model_ttl: Duration::from_secs(300),
        shutdown_grace: Duration::from_secs(30),
        max_sessions: 4,
        max_session: Duration::from_secs(600),
        engine: EngineConfig::default()
            .with_device(Device::Cpu)
            .with_threads(2),
    })
}

async fn ready(config: ServerConfig) -> Router {
    let state = AppState::new(config);
    state.preload().await.expect("models load");
    app(state)
}

/// A multipart body: text fields, then (optionally) a file part.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, data)) = file {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn jfk() -> Vec<u8> {
    std::fs::read(fixtures().join("data/jfk/jfk.wav")).expect("jfk.wav")
}

fn post(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String, String) {
    let r = app.clone().oneshot(req).await.expect("infallible");
    let status = r.status();
    let ctype = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = to_bytes(r.into_body(), usize::MAX).await.expect("body");
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

async fn transcribe(app: &Router, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
    call(
        app,
        post(
            "/v1/audio/transcriptions",
            multipart(fields, Some(("jfk.wav", &jfk()))),
        ),
    )
    .await
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The error object of an OpenAI-shaped error body.
fn error_of(body: &str) -> Value {
    let v = json(body);
    let e = v["error"].clone();
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{body}"
    );
    e
}

const JFK_TEXT: &str = "ask not what your country can do for you";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_and_granularities() {
    let Some(cfg) = config(&["tiny.en"]) else {
        return;
    };
    let app = ready(cfg).await;
    // json: text + usage.
    let (s, ct, b) = transcribe(&app, &[("model", "tiny.en")]).await;
    assert_eq!(s, 200, "{b}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let v = json(&b);
    let text = v["text"].as_str().unwrap().to_string();
    assert!(text.contains(JFK_TEXT) && !text.starts_with(' '), "{text}");
    assert_eq!(v["usage"]["type"], "duration");
    assert_eq!(v["usage"]["seconds"], 11.0);
    // text, srt, vtt.
    let (s, ct, b) = transcribe(&app, &[("model", "whisper-1"), ("response_format", "text")]).await;
    assert_eq!(
        (s.as_u16(), ct.starts_with("text/plain")),
        (200, true),
        "{b}"
    );
    assert_eq!(b, format!("{text}\n"));
    let (s, _, b) = transcribe(&app, &[("response_format", "srt"), ("model", "my-alias")]).await;
    assert_eq!(s, 200);
    assert!(b.starts_with("1\n00:00:00,000 --> 00:00:08,000\n"), "{b}");
    let (s, ct, b) = transcribe(&app, &[("model", "tiny.en"), ("response_format", "vtt")]).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/vtt"), "{ct}");
    assert!(b.starts_with("WEBVTT\n"), "{b}");
    // verbose_json: segments by default, words on request, both together.
    let (s, _, b) = transcribe(
        &app,
        &[("model", "tiny.en"), ("response_format", "verbose_json")],
    )
    .await;
    assert_eq!(s, 200);
    let v = json(&b);
    assert_eq!(
        (v["task"].as_str(), v["language"].as_str()),
        (Some("transcribe"), Some("english"))
    );
    assert_eq!(v["duration"], 11.0);
    let segs = v["segments"].as_array().expect("segments");
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0]["id"], 0);
    for k in [
        "seek",
        "start",
        "end",
        "text",
        "tokens",
        "temperature",
        "avg_logprob",
        "compression_ratio",
        "no_speech_prob",
    ] {
        assert!(segs[0].get(k).is_some(), "segment field {k}: {b}");
    }
    assert!(v.get("words").is_none(), "{b}");
    let (_, _, b) = transcribe(
        &app,
        &[
            ("model", "tiny.en"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
        ],
    )
    .await;
    let v = json(&b);
    assert!(v.get("segments").is_none(), "{b}");
    let words = v["words"].as_array().expect("words");
    assert_eq!(words[0]["word"], "And");
    assert!(words
        .iter()
        .all(|w| w["start"].is_number() && w["end"].is_number()));
    let (_, _, b) = transcribe(
        &app,
        &[
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
            ("response_format", "verbose_json"),
            ("model", "tiny.en"),
        ],
    )
    .await;
    let v = json(&b);
    assert!(v["segments"].is_array() && v["words"].is_array(), "{b}");
    // Granularities need verbose_json (OpenAI's rule).
    let (s, _, b) = transcribe(
        &app,
        &[("model", "tiny.en"), ("timestamp_granularities", "word")],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(error_of(&b)["param"], "timestamp_granularities");
    // logprobs: one entry per text token (no special or timestamp
    // tokens), their texts spelling the transcript.
    let (s, _, b) = transcribe(&app, &[("model", "tiny.en"), ("include[]", "logprobs")]).await;
    assert_eq!(s, 200, "{b}");
    let v = json(&b);
    let lps = v["logprobs"].as_array().expect("logprobs");
    assert!(
        lps.iter()
            .all(|l| !l["token"].as_str().unwrap().starts_with("<|")),
        "a special token in logprobs: {lps:?}"
    );
    let spelled: String = lps.iter().map(|l| l["token"].as_str().unwrap()).collect();
    assert_eq!(spelled.trim(), v["text"].as_str().unwrap());
    assert!(lps
        .iter()
        .all(|l| l["logprob"].as_f64().unwrap() <= 0.0 && l["bytes"].is_array()));
    // server_vad chunking and the extensions.
    let (s, _, b) = transcribe(
        &app,
        &[
            ("model", "tiny.en"),
            ("chunking_strategy", r#"{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500}"#),
            ("beam_size", "2"),
            ("condition_on_previous_text", "false"),
            ("hotwords", "Kennedy"),
            ("temperature", "0"),
            ("language", "en"),
            ("prompt", "A speech."),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        json(&b)["text"].as_str().unwrap().contains("your country"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sends_deltas_then_done() {
    let Some(cfg) = config(&["tiny.en"]) else {
        return;
    };
    let app = ready(cfg).await;
    let (s, ct, b) = transcribe(&app, &[("model", "tiny.en"), ("stream", "true")]).await;
    assert_eq!(s, 200, "{b}");
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events: Vec<Value> = b
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(json)
        .collect();
    let (done, deltas) = events.split_last().expect("events");
    assert_eq!(done["type"], "transcript.text.done");
    assert!(!deltas.is_empty());
    assert!(deltas.iter().all(|d| d["type"] == "transcript.text.delta"));
    let joined: String = deltas
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, done["text"].as_str().unwrap());
    assert!(joined.contains(JFK_TEXT));
    // Progress events only when asked for (the web page's extension).
    let (_, _, b) = transcribe(
        &app,
        &[("model", "tiny.en"), ("stream", "1"), ("progress", "1")],
    )
    .await;
    assert!(b.contains("\"transcript.progress\""), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_of_a_file_that_is_not_audio_is_a_400() {
    let Some(cfg) = config(&["tiny.en"]) else {
        return;
    };
    let app = ready(cfg).await;
    let wav = jfk();
    let cases: [(&str, &[u8]); 2] = [
        ("a.mp3", b"this is not audio at all, just text bytes"),
        ("a.wav", &wav[..44]),
    ];
    for (name, data) in cases {
        let body = multipart(
            &[
                ("model", "tiny.en"),
                ("stream", "true"),
                ("progress", "true"),
            ],
            Some((name, data)),
        );
        let (s, ct, b) = call(&app, post("/v1/audio/transcriptions", body)).await;
        assert_eq!(s, 400, "{name}: {b}");
        assert!(ct.starts_with("application/json"), "{name}: {ct}");
        assert_eq!(error_of(&b)["param"], "file", "{name}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_metrics_and_translation() {
    let Some(cfg) = config(&["tiny.en", "base"]) else {
        return;
    };
    let state = AppState::new(cfg);
    let app = app(state.clone());
    let (s, _, b) = call(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, 503, "{b}");
    state.preload().await.expect("load");
    let (s, _, _) = call(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, 200);
    let (s, _, b) = call(
        &app,
        Request::get("/v1/models").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let v = json(&b);
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for want in ["tiny.en", "base", "whisper-1", "my-alias"] {
        assert!(ids.contains(&want), "{ids:?}");
    }
    let (s, _, b) = call(
        &app,
        Request::get("/v1/models/base").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (s.as_u16(), json(&b)["object"].as_str()),
        (200, Some("model"))
    );
    let (s, _, b) = call(
        &app,
        Request::get("/v1/models/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(error_of(&b)["code"], "model_not_found");
    // Translation: English-only models cannot; base can.
    let tr = |model: &str| {
        post(
            "/v1/audio/translations",
            multipart(&[("model", model)], Some(("jfk.wav", &jfk()))),
        )
    };
    let (s, _, b) = call(&app, tr("tiny.en")).await;
    assert_eq!(s, 400);
    assert_eq!(error_of(&b)["param"], "model");
    let (s, _, b) = call(&app, tr("base")).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        json(&b)["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("country"),
        "{b}"
    );
    let (s, ct, b) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    for m in [
        "vkwhisper_queue_depth",
        "vkwhisper_in_flight",
        "vkwhisper_real_time_factor",
        "vkwhisper_resident_memory_bytes",
        "vkwhisper_audio_seconds_total",
        "vkwhisper_requests_total{route=\"/v1/audio/translations\",status=\"400\"} 1",
    ] {
        assert!(b.contains(m), "{m} missing:\n{b}");
    }
    // The page.
    let (s, ct, _) = call(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!((s.as_u16(), ct.starts_with("text/html")), (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_4xx_json() {
    let Some(mut cfg) = config(&["tiny.en"]) else {
        return;
    };
    cfg.max_upload = 200_000;
    let app = ready(cfg).await;
    let wav = jfk();
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "no file",
            multipart(&[("model", "tiny.en")], None),
            400,
            Some("file"),
        ),
        (
            "no model",
            multipart(&[], Some(("a.wav", &wav[..1000]))),
            400,
            Some("model"),
        ),
        (
            "unknown model",
            multipart(&[("model", "large-v9")], Some(("a.wav", &wav[..1000]))),
            404,
            Some("model"),
        ),
        (
            "empty file",
            multipart(&[("model", "tiny.en")], Some(("a.wav", b""))),
            400,
            Some("file"),
        ),
        (
            "garbage audio",
            multipart(
                &[("model", "tiny.en")],
                Some((
                    "a.mp3",
                    b"this is not audio at all, just text bytes".as_slice(),
                )),
            ),
            400,
            Some("file"),
        ),
        (
            "truncated wav",
            multipart(&[("model", "tiny.en")], Some(("a.wav", &wav[..44]))),
            400,
            Some("file"),
        ),
        (
            "bad bool",
            multipart(
                &[("model", "tiny.en"), ("stream", "maybe")],
                Some(("a.wav", &wav[..1000])),
            ),
            400,
            Some("stream"),
        ),
        (
            "bad number",
            multipart(
                &[("model", "tiny.en"), ("temperature", "warm")],
                Some(("a.wav", &wav[..1000])),
            ),
            400,
            Some("temperature"),
        ),
        (
            "unknown field",
            multipart(
                &[("model", "tiny.en"), ("voice", "alloy")],
                Some(("a.wav", &wav[..1000])),
            ),
            400,
            Some("voice"),
        ),
        (
            "bad format",
            multipart(
                &[("model", "tiny.en"), ("response_format", "mp3")],
                Some(("a.wav", &wav[..1000])),
            ),
            400,
            Some("response_format"),
        ),
        (
            "too large",
            multipart(&[("model", "tiny.en")], Some(("a.wav", &wav))),
            413,
            Some("file"),
        ),
    ];
    for (what, body, status, param) in cases {
        let (s, ct, b) = call(&app, post("/v1/audio/transcriptions", body)).await;
        assert_eq!(s.as_u16(), status, "{what}: {b}");
        assert!(ct.starts_with("application/json"), "{what}: {ct}");
        let e = error_of(&b);
        assert_eq!(e["param"].as_str(), param, "{what}: {b}");
        assert!(!e["message"].as_str().unwrap().contains('\n'));
    }
    // A model id whose percent-decoding is not UTF-8.
    let r = Request::get("/v1/models/whisper%FF")
        .body(Body::empty())
        .unwrap();
    let (s, ct, b) = call(&app, r).await;
    assert_eq!(s, 400, "{b}");
    assert!(ct.starts_with("application/json"), "{ct}: {b}");
    assert_eq!(error_of(&b)["param"], "model");
    // A client's own long field name given twice: the error names it
    // clipped (found by the server_request fuzz target).
    let long = format!("x{}", "#".repeat(300));
    let body = multipart(
        &[("model", "tiny.en"), (&long, "1"), (&long, "2")],
        Some(("a.wav", &wav[..1000])),
    );
    let (s, _, b) = call(&app, post("/v1/audio/transcriptions", body)).await;
    assert_eq!(s, 400, "{b}");
    let e = error_of(&b);
    let param = e["param"].as_str().expect("param");
    assert!(param.chars().count() <= 65, "{param}");
    assert!(e["message"].as_str().unwrap().chars().count() <= 100, "{b}");
    // Not multipart at all; a truncated multipart body; a non-UTF-8 field.
    let r = Request::post("/v1/audio/transcriptions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"model\":\"tiny.en\"}"))
        .unwrap();
    let (s, _, b) = call(&app, r).await;
    assert_eq!(s, 400, "{b}");
    error_of(&b);
    let mut cut = multipart(&[("model", "tiny.en")], Some(("a.wav", &wav[..5000])));
    cut.truncate(cut.len() - 200);
    let (s, _, b) = call(&app, post("/v1/audio/transcriptions", cut)).await;
    assert!(s.is_client_error(), "{s}: {b}");
    let mut bad = Vec::new();
    bad.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n")
            .as_bytes(),
    );
    bad.extend_from_slice(&[0xff, 0xfe, 0x00]);
    bad.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let (s, _, b) = call(&app, post("/v1/audio/transcriptions", bad)).await;
    assert_eq!(s, 400, "{b}");
    // Unknown paths and methods answer in the same shape.
    let (s, _, b) = call(
        &app,
        Request::get("/v1/audio/transcriptions")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 405);
    error_of(&b);
    let (s, _, b) = call(
        &app,
        Request::get("/v2/nothing").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    error_of(&b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_and_queue_limits() {
    let Some(mut cfg) = config(&["tiny.en"]) else {
        return;
    };
    cfg.api_key = Some("sekret".into());
    cfg.workers = 1;
    cfg.queue = 0;
    let app = ready(cfg).await;
    let body = || multipart(&[("model", "tiny.en")], Some(("jfk.wav", &jfk())));
    let (s, _, b) = call(&app, post("/v1/audio/transcriptions", body())).await;
    assert_eq!(s, 401);
    assert_eq!(error_of(&b)["code"], "invalid_api_key");
    let with_key = |key: &str| {
        let mut r = post("/v1/audio/transcriptions", body());
        r.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {key}").parse().unwrap(),
        );
        r
    };
    let (s, _, _) = call(&app, with_key("wrong")).await;
    assert_eq!(s, 401);
    // The health check needs no key.
    let (s, _, _) = call(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, 200);
    // One worker and no queue: two jobs fit (one decoding, one taking
    // turns), the third at the same moment is a 429 with Retry-After.
    let send = || {
        let app = app.clone();
        let r = with_key("sekret");
        async move { app.oneshot(r).await.unwrap() }
    };
    let (a, b, c) = tokio::join!(send(), send(), send());
    let mut statuses: Vec<u16> = [&a, &b, &c].iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 429]);
    let limited = [a, b, c].into_iter().find(|r| r.status() == 429).unwrap();
    assert!(limited.headers().get(header::RETRY_AFTER).is_some());
}
