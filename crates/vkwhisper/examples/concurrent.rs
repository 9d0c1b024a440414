//! Several files transcribed at once on one shared engine, each call on its
//! own thread with its own state; prints each file's text, the wall time and
//! the process's peak resident memory (Linux).
//!
//!     cargo run --release -p vkwhisper --example concurrent -- [--model M] [--max-concurrent N] FILE...

use std::time::Instant;
use vkwhisper::{Engine, EngineConfig, TranscribeOptions};

/// Peak resident set size in MB (`VmHWM`), where /proc has it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model = "tiny.en".to_string();
    let mut max_concurrent = 0;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().ok_or("--model needs a value")?,
            "--max-concurrent" => {
                max_concurrent = args
                    .next()
                    .ok_or("--max-concurrent needs a value")?
                    .parse()?
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return Err("usage: concurrent [--model M] [--max-concurrent N] FILE...".into());
    }
    let config = EngineConfig::default().with_max_concurrent(max_concurrent);
    let engine = Engine::load(&model, &config)?;
    let loaded = peak_rss_mb();
    let t0 = Instant::now();
    let texts = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| {
                let engine = engine.clone();
                scope.spawn(move || -> Result<String, vkwhisper::Error> {
                    let audio = vkwhisper::decode_audio(f)?;
                    let mut segments = Vec::new();
                    engine.transcribe(audio, &TranscribeOptions::default(), &mut segments)?;
                    Ok(segments.iter().map(|s| s.text.as_str()).collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a transcription thread panicked"))
            .collect::<Vec<_>>()
    });
    let wall = t0.elapsed().as_secs_f64();
    for (f, t) in files.iter().zip(texts) {
        match t {
            Ok(text) => println!("{f}:{text}"),
            Err(e) => println!("{f}: error: {e}"),
        }
    }
    eprintln!(
        "{} files in {wall:.2} s on {}; peak RSS {:.0} MB (after load {:.0} MB)",
        files.len(),
        engine.info().device,
        peak_rss_mb().unwrap_or(f64::NAN),
        loaded.unwrap_or(f64::NAN),
    );
    Ok(())
}
