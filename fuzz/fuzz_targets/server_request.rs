//! HTTP requests → `vkw_server::app()` (tower's `oneshot`, no socket), on a
//! server with no model: every request ends at routing, auth, body or
//! multipart parsing, field validation, or the 404 `model_not_found` —
//! nothing loads or decodes.
//!
//! Input: a request head, the part separator of `common.rs`, the body. The
//! head is text lines: `METHOD PATH` first, then `Name: value` headers
//! (lines that are not valid headers are skipped) and directives:
//! `@key` (a server with `--api-key sk-fuzz` and a 4 KB body limit instead
//! of none and 25 MB), `@chunk N` (the body arrives in N-byte frames),
//! `@fail` (the body stream then fails, like a client gone mid-upload).
//!
//! Properties: no panic; no 5xx; every non-2xx response is OpenAI's JSON
//! error `{"error": {"message", "type", "param", "code"}}` with a one-line
//! message (no control characters, bounded) and a bounded `param`; the
//! audio routes never answer 2xx (there is no model).
#![no_main]

#[path = "common.rs"]
mod common;

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Duration;
use tower::ServiceExt;
use vkw_server::{app, AppState, ServerConfig};

struct Env {
    rt: tokio::runtime::Runtime,
    open: Router,
    keyed: Router,
}

fn config(api_key: Option<&str>, max_upload: u64) -> ServerConfig {
    ServerConfig {
        models: Vec::new(),
        models_dir: None,
        // An empty cache: no model is installed, none is discovered.
        cache: common::scratch_dir("server-cache"),
        aliases: vec![("whisper-1".into(), "tiny.en".into())],
        workers: 1,
        queue: 4,
        max_upload,
        api_key: api_key.map(str::to_string),
        model_ttl: Duration::from_secs(300),
        engine: vkwhisper::EngineConfig::default().with_device(vkwhisper::Device::Cpu),
        shutdown_grace: Duration::from_secs(1),
        max_sessions: 2,
        max_session: Duration::from_secs(60),
    }
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let open = AppState::new(config(None, 25 << 20));
        let keyed = AppState::new(config(Some("sk-fuzz"), 4096));
        // No pinned model: nothing to load, /health says ok.
        rt.block_on(async {
            open.preload().await.expect("preload");
            keyed.preload().await.expect("preload");
        });
        Env {
            rt,
            open: app(open),
            keyed: app(keyed),
        }
    })
}

struct Parsed {
    req: Request<Body>,
    keyed: bool,
    audio_route: bool,
    head: bool,
}

fn build(head: &[u8], body: &[u8]) -> Option<Parsed> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let (method, path) = first.split_once(' ').unwrap_or(("POST", first));
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    let mut b = Request::builder().method(method.clone()).uri(path);
    let mut keyed = false;
    let mut chunk = 0usize;
    let mut fail = false;
    for l in lines {
        if l == "@key" {
            keyed = true;
        } else if l == "@fail" {
            fail = true;
        } else if let Some(n) = l.strip_prefix("@chunk ") {
            chunk = n.trim().parse().unwrap_or(0);
        } else if let Some((k, v)) = l.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_bytes(v.trim().as_bytes()),
            ) {
                b = b.header(k, v);
            }
        }
    }
    let body = if chunk == 0 && !fail {
        Body::from(body.to_vec())
    } else {
        let size = chunk.clamp(1, body.len().max(1));
        let mut frames: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if fail {
            frames.push(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the client went away",
            )));
        }
        Body::from_stream(futures_util::stream::iter(frames))
    };
    let req = b.body(body).ok()?;
    let audio_route = matches!(
        req.uri().path(),
        "/v1/audio/transcriptions" | "/v1/audio/translations"
    );
    Some(Parsed {
        req,
        keyed,
        audio_route,
        head: method == Method::HEAD,
    })
}

/// The error body's shape (OpenAI's), one line.
fn check_error_body(status: u16, body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{status} with a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    });
    let obj = v.as_object().expect("the body is a JSON object");
    assert_eq!(obj.len(), 1, "{status}: {v}");
    let e = obj
        .get("error")
        .and_then(|e| e.as_object())
        .unwrap_or_else(|| panic!("{status} without an error object: {v}"));
    assert_eq!(e.len(), 4, "{status}: {v}");
    let message = e
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_else(|| panic!("{status}: error.message is not a string: {v}"));
    assert!(!message.is_empty(), "{status}: empty message");
    common::check_error(&message);
    assert!(
        message.chars().count() <= 400,
        "{status}: a message of {} characters: {message:.300}",
        message.chars().count()
    );
    assert!(
        e.get("type").is_some_and(|t| t.is_string()),
        "{status}: error.type: {v}"
    );
    for k in ["param", "code"] {
        let x = e
            .get(k)
            .unwrap_or_else(|| panic!("{status}: no error.{k}: {v}"));
        assert!(x.is_string() || x.is_null(), "{status}: error.{k}: {v}");
        if let Some(s) = x.as_str() {
            assert!(
                s.chars().count() <= 100 && !s.chars().any(char::is_control),
                "{status}: error.{k} {s:.200?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let p = common::parts(data, 2);
    let Some(parsed) = build(p[0], p[1]) else {
        return;
    };
    let env = env();
    let router = if parsed.keyed { &env.keyed } else { &env.open };
    let (status, ctype, body) = env.rt.block_on(async {
        let r = router
            .clone()
            .oneshot(parsed.req)
            .await
            .expect("the router is infallible");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("response body");
        (status, ctype, body)
    });
    assert!(
        status < 500,
        "{status}: {:?}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    if parsed.audio_route {
        assert!(
            !(200..300).contains(&status),
            "{status} from an audio route without a model"
        );
    }
    if !(200..400).contains(&status) && !parsed.head {
        assert!(ctype.starts_with("application/json"), "{status}: {ctype}");
        check_error_body(status, &body);
    }
});
