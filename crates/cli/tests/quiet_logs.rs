//! What a log file gets: a first download with stderr redirected (not a
//! terminal) writes a few progress lines and no carriage returns, and
//! `--device auto` falling back to the CPU says so in one short line.
//!
//! The download comes from a local PyPI stand-in on 127.0.0.1 serving a
//! faster-whisper wheel rebuilt from the installed Silero VAD model (the
//! pull checks the member's pinned sha256, so only the real file passes),
//! padded with an incompressible member so the download takes many chunks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vkwhisper"));
    c.env_remove("VKWHISPER_MODEL")
        .env_remove("VKWHISPER_DEVICE");
    c
}

/// A wheel holding `faster_whisper/assets/silero_vad_v6.onnx` and `pad`
/// bytes of noise.
fn wheel(onnx: &[u8], pad: usize) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let deflated = zip::write::SimpleFileOptions::default();
    let stored = deflated.compression_method(zip::CompressionMethod::Stored);
    z.start_file("faster_whisper/assets/silero_vad_v6.onnx", deflated)
        .unwrap();
    z.write_all(onnx).unwrap();
    z.start_file("faster_whisper/assets/padding.bin", stored)
        .unwrap();
    // xorshift noise: incompressible, reproducible.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..pad)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    z.write_all(&noise).unwrap();
    z.finish().unwrap();
    out.into_inner()
}

/// Answers one HTTP/1.1 request per connection: the release JSON or the
/// wheel.
fn serve(listener: TcpListener, wheel: Arc<Vec<u8>>) {
    let sha = format!("{:x}", Sha256::digest(wheel.as_slice()));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let wheel = wheel.clone();
        let sha = sha.clone();
        std::thread::spawn(move || answer(&mut stream, &wheel, &sha));
    }
}

fn answer(stream: &mut TcpStream, wheel: &[u8], sha: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body): (&str, &str, Vec<u8>) = if path == "/pypi/faster-whisper/1.2.1/json"
    {
        let json = serde_json::json!({"urls": [{
            "filename": "faster_whisper-1.2.1-py3-none-any.whl",
            "url": "/files/faster_whisper-1.2.1-py3-none-any.whl",
            "packagetype": "bdist_wheel",
            "digests": {"sha256": sha},
            "yanked": false,
        }]});
        ("200 OK", "application/json", json.to_string().into_bytes())
    } else if path.starts_with("/files/") {
        ("200 OK", "application/octet-stream", wheel.to_vec())
    } else {
        ("404 Not Found", "text/plain", b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

#[test]
fn a_download_into_a_log_has_a_few_lines_and_no_carriage_returns() {
    let Some(vad) = vkw_testkit::vad_model() else {
        return;
    };
    let onnx = std::fs::read(&vad).unwrap();
    // About 8 MB: some 32 reads of the downloader's 256 KB buffer.
    let wheel = Arc::new(wheel(&onnx, 8 << 20));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || serve(listener, wheel));

    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("stderr.log");
    let o = bin()
        .args(["models", "pull", "vad"])
        .env("VKWHISPER_CACHE", cache.path())
        .env("VKWHISPER_PYPI_URL", format!("http://127.0.0.1:{port}"))
        .stderr(std::fs::File::create(&log).unwrap())
        .output()
        .unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(o.status.success(), "pull failed: {err}");
    assert!(
        cache.path().join("vad/silero_vad_v6.onnx").is_file(),
        "not installed: {err}"
    );
    assert!(!err.contains('\r'), "a carriage return in the log: {err:?}");
    let progress = err
        .lines()
        .filter(|l| l.contains("faster_whisper-1.2.1-py3-none-any.whl:"))
        .count();
    // The start, each quarter, the end: never one line per chunk.
    assert!(
        (2..=6).contains(&progress),
        "{progress} progress lines: {err}"
    );
    assert!(err.lines().count() <= 12, "a chatty log: {err}");
}

#[test]
fn device_auto_falling_back_says_so_in_one_short_line() {
    let Some(model) = vkw_testkit::model_dir("tiny.en") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let o = bin()
        .args(["transcribe", "--device", "auto", "--model"])
        .arg(&model)
        .arg(vkw_testkit::fixtures().join("data/jfk/jfk.wav"))
        .stderr(std::fs::File::create(&log).unwrap())
        .output()
        .unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("device auto")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    // On a machine with a real GPU it names the GPU; otherwise it says the
    // CPU runs and why, briefly: the driver advice is not repeated here.
    assert!(lines[0].len() <= 160, "a long device line: {}", lines[0]);
    assert!(!err.contains('\r'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "more than the device line: {err}");
}
