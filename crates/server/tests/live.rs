//! The live WebSocket routes (`/v1/stream`, `/v1/realtime`) over a real
//! loopback socket (axum's oneshot cannot upgrade), with tokio-tungstenite
//! as the client, on the real tiny.en model and Silero VAD.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use vkw_server::{app, AppState, ServerConfig};
use vkw_testkit::{fixtures, model_dir, vad_model};
use vkwhisper::{Device, EngineConfig};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// The jfk speech within a few words (live passes depend on timing).
fn assert_jfk(text: &str) {
    let wer = vkw_testkit::wer(JFK, text);
    assert!(wer <= 15.0, "not the jfk text (WER {wer:.1} %): {text:?}");
}

fn config(max_sessions: usize) -> Option<ServerConfig> {
    let dir = model_dir("tiny.en")?;
    vad_model()?;
    let cache = dir.parent()?.parent()?.to_path_buf();
    Some(ServerConfig {
        models: vec![("tiny.en".into(), dir)],
        models_dir: None,
        cache,
        aliases: Vec::new(),
        workers: 2,
        queue: 8,
        max_upload: 25 << 20,
        api_key: None,
        model_ttl: Duration::from_secs(300),
        shutdown_grace: Duration::from_secs(5),
        max_sessions,
        max_session: Duration::from_secs(600),
        engine: EngineConfig::default()
            .with_device(Device::Cpu)
            .with_threads(2),
    })
}

/// Serve `config` on 127.0.0.1 (a free port); the state for inspection.
async fn serve(config: ServerConfig) -> (SocketAddr, AppState) {
    let state = AppState::new(config);
    state.preload().await.expect("models load");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, state)
}

/// jfk.wav's 16-bit samples (a PCM WAV: the `data` chunk as is).
fn jfk_s16() -> Vec<i16> {
    let wav = std::fs::read(fixtures().join("data/jfk/jfk.wav")).expect("jfk.wav");
    let mut at = 12;
    while at + 8 <= wav.len() {
        let len = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        if &wav[at..at + 4] == b"data" {
            return wav[at + 8..(at + 8 + len).min(wav.len())]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    panic!("jfk.wav has no data chunk");
}

fn bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    let req = url.into_client_request().expect("request");
    tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
        .0
}

/// The next JSON text message (panics after 120 s or on close).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(120), ws.next())
            .await
            .expect("a message within 120 s")
            .expect("the socket is open")
            .expect("no socket error");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

fn words_of(text: &str) -> String {
    vkw_testkit::wer_words(text).join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_socket_commits_then_finishes() {
    let Some(cfg) = config(4) else { return };
    let (addr, state) = serve(cfg).await;
    let mut ws = connect(&format!("ws://{addr}/v1/stream")).await;
    // Bad options: an error naming the field, then the socket closes.
    send_json(&mut ws, json!({"model": "tiny.en", "policy": "greedy"})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["error"]["param"], "policy", "{e}");

    let mut ws = connect(&format!("ws://{addr}/v1/stream")).await;
    send_json(&mut ws, json!({"model": "tiny.en", "language": "en"})).await;
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["sample_rate"], 16000);
    let pcm = jfk_s16();
    // 0.25 s frames at 5× real time, while reading what comes back.
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for chunk in pcm.chunks(4000) {
            tx.send(Message::Binary(bytes(chunk).into()))
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A malformed message is answered and the session goes on.
        tx.send(Message::Text("{\"type\":\"nonsense\"}".into()))
            .await
            .expect("send");
        tx.send(Message::Text(json!({"type": "finish"}).to_string().into()))
            .await
            .expect("send");
        tx
    });
    let mut committed_before_final = String::new();
    let mut errors = 0;
    let fin = loop {
        let m = tokio::time::timeout(Duration::from_secs(120), rx.next())
            .await
            .expect("a message")
            .expect("open")
            .expect("ok");
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
        match v["type"].as_str() {
            Some("update") => {
                assert!(
                    v["tentative"].is_string() && v["audio_s"].is_number(),
                    "{v}"
                );
                for w in v["committed"].as_array().expect("committed") {
                    let (s, e) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
                    assert!(s <= e, "{w}");
                    committed_before_final.push_str(w["text"].as_str().unwrap());
                }
            }
            Some("utterance") => {}
            Some("error") => errors += 1,
            Some("final") => break v,
            other => panic!("unexpected {other:?}: {v}"),
        }
    };
    let _tx = sender.await.expect("sender");
    assert_eq!(errors, 1, "one error for the malformed message");
    let text = fin["text"].as_str().expect("text");
    assert_jfk(text);
    assert_eq!(words_of(&committed_before_final), words_of(text));
    assert!(!fin["utterances"].as_array().expect("utterances").is_empty());
    // The session's place is free once the socket is done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.0.sessions.active(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_server_vad_gives_deltas_then_completed() {
    let Some(cfg) = config(4) else { return };
    let (addr, _state) = serve(cfg).await;
    let mut ws = connect(&format!("ws://{addr}/v1/realtime?intent=transcription")).await;
    let created = next_json(&mut ws).await;
    assert_eq!(created["type"], "session.created", "{created}");
    assert_eq!(created["session"]["type"], "transcription");
    assert_eq!(
        created["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"],
        500
    );
    // Malformed events: errors, never a closed socket.
    ws.send(Message::Text("not json".into()))
        .await
        .expect("send");
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["error"]["code"].as_str()),
        (Some("error"), Some("invalid_json"))
    );
    send_json(
        &mut ws,
        json!({"type": "input_audio_buffer.append", "audio": "***", "event_id": "e1"}),
    )
    .await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["error"]["param"], "audio", "{e}");
    assert_eq!(e["error"]["event_id"], "e1", "{e}");
    send_json(&mut ws, json!({"type": "response.create"})).await;
    assert_eq!(next_json(&mut ws).await["error"]["code"], "invalid_event");
    send_json(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000},
            "transcription": {"model": "tiny.en", "language": "en"}}}}}),
    )
    .await;
    let upd = next_json(&mut ws).await;
    assert_eq!(upd["type"], "session.updated", "{upd}");
    assert_eq!(upd["session"]["audio"]["input"]["format"]["rate"], 16000);
    use base64::Engine as _;
    let mut pcm = jfk_s16();
    pcm.extend(std::iter::repeat_n(0i16, 16_000 * 2));
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for chunk in pcm.chunks(4000) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes(chunk));
            let ev = json!({"type": "input_audio_buffer.append", "audio": b64});
            tx.send(Message::Text(ev.to_string().into()))
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tx
    });
    // jfk has pauses longer than 500 ms: several turns, each an item.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut completed: Vec<Value> = Vec::new();
    let mut deltas: std::collections::HashMap<String, String> = Default::default();
    let mut early_deltas = 0;
    let mut sender = Some(sender);
    loop {
        // Quiet for 10 s after the audio was sent and every turn that
        // started has completed: done.
        let started = seen
            .iter()
            .filter(|(k, _)| k == "input_audio_buffer.speech_started")
            .count();
        let settled = sender.is_none() && started > 0 && completed.len() == started;
        let idle = if settled { 10 } else { 120 };
        let m = match tokio::time::timeout(Duration::from_secs(idle), rx.next()).await {
            Ok(m) => m.expect("open").expect("ok"),
            Err(_) if settled => break,
            Err(_) => panic!("no message within {idle} s"),
        };
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        let item = v["item_id"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "conversation.item.input_audio_transcription.delta" => {
                deltas
                    .entry(item.clone())
                    .or_default()
                    .push_str(v["delta"].as_str().expect("delta"));
                if !seen
                    .iter()
                    .any(|(k, i)| k == "input_audio_buffer.speech_stopped" && *i == item)
                {
                    early_deltas += 1;
                }
            }
            "conversation.item.input_audio_transcription.completed" => completed.push(v.clone()),
            "error" => panic!("error event: {v}"),
            _ => {}
        }
        seen.push((kind, item));
        if sender.as_ref().is_some_and(|s| s.is_finished()) {
            let _tx = sender.take().expect("sender").await.expect("sender");
        }
    }
    // Each turn: speech_started, speech_stopped, committed, in that order, one item each.
    let turns: Vec<&(String, String)> = seen
        .iter()
        .filter(|(k, _)| k.starts_with("input_audio_buffer."))
        .collect();
    assert!(
        !turns.is_empty() && turns.chunks_exact(3).remainder().is_empty(),
        "{turns:?}"
    );
    for t in turns.chunks(3) {
        let kinds: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed"
            ]
        );
        assert!(t.iter().all(|(_, i)| *i == t[0].1), "{t:?}");
    }
    assert_eq!(
        completed.len(),
        turns.len() / 3,
        "one completed per committed turn"
    );
    assert!(
        early_deltas >= 1,
        "deltas arrive before their turn ends: {seen:?}"
    );
    let mut all = String::new();
    for c in &completed {
        let id = c["item_id"].as_str().expect("item_id");
        let transcript = c["transcript"].as_str().expect("transcript");
        assert_eq!(
            deltas.get(id).map_or("", String::as_str),
            transcript,
            "the deltas add up to the turn's text"
        );
        assert_eq!(c["usage"]["type"], "duration");
        all.push(' ');
        all.push_str(transcript);
    }
    assert_jfk(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_manual_commits_beta_dialect_and_limits() {
    let Some(cfg) = config(1) else { return };
    let (addr, state) = serve(cfg).await;
    let url = format!("ws://{addr}/v1/realtime?intent=transcription");
    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut()
        .insert("OpenAI-Beta", "realtime=v1".parse().expect("header"));
    let mut ws = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0;
    assert_eq!(
        next_json(&mut ws).await["type"],
        "transcription_session.created"
    );
    // --max-sessions 1: a second session is refused with 429 before the upgrade.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    send_json(
        &mut ws,
        json!({"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16", "turn_detection": null,
            "input_audio_transcription": {"model": "whisper-1", "language": "en"}}}),
    )
    .await;
    let upd = next_json(&mut ws).await;
    assert_eq!(upd["type"], "transcription_session.updated", "{upd}");
    assert!(upd["session"]["turn_detection"].is_null(), "{upd}");
    // Committing nothing is an error.
    send_json(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    assert_eq!(
        next_json(&mut ws).await["error"]["code"],
        "input_audio_buffer_commit_empty"
    );
    // 24 kHz pcm16 (the beta format): jfk, upsampled by linear interpolation.
    let s16 = jfk_s16();
    let pcm24: Vec<i16> = (0..s16.len() * 3 / 2)
        .map(|i| {
            let x = i as f64 * 2.0 / 3.0;
            let (j, f) = (x as usize, x.fract());
            let a = f64::from(s16[j]);
            let b = f64::from(*s16.get(j + 1).unwrap_or(&s16[j]));
            (a + (b - a) * f).round() as i16
        })
        .collect();
    use base64::Engine as _;
    for chunk in pcm24.chunks(24_000) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes(chunk));
        send_json(
            &mut ws,
            json!({"type": "input_audio_buffer.append", "audio": b64}),
        )
        .await;
    }
    send_json(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    let mut kinds = Vec::new();
    let completed = loop {
        let v = next_json(&mut ws).await;
        let k = v["type"].as_str().unwrap_or_default().to_string();
        assert_ne!(k, "error", "{v}");
        if k == "conversation.item.input_audio_transcription.completed" {
            break v;
        }
        kinds.push(k);
    };
    assert!(
        kinds.contains(&"input_audio_buffer.committed".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"conversation.item.created".to_string()),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.contains("speech_started")),
        "no VAD events in manual mode"
    );
    assert_jfk(completed["transcript"].as_str().unwrap());
    // A dropped connection frees its place at once.
    drop(ws);
    let t0 = std::time::Instant::now();
    while state.0.sessions.active() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the session was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    connect(&url).await;
}
