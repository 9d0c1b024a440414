//! Times the encoder and decoder steps of a model on silence-free noise:
//! `cargo run --release -p vkw-backend --example profile -- MODEL_DIR [threads] [beams] [steps] [compute_type]`.

use std::sync::Arc;
use std::time::Instant;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::{Backend, ComputeType, LogitsAt};
use vkw_model::WhisperModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: profile MODEL_DIR [threads] [beams] [steps] [compute_type]")?;
    let threads = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let beams: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let model = Arc::new(WhisperModel::load(dir)?);
    let hp = model.hparams;
    let ct: ComputeType = args.get(5).map_or("default", |s| s.as_str()).parse()?;
    let t = Instant::now();
    let b = CpuBackend::with_compute_type(model, threads, ct)?;
    println!(
        "compute type {} (int8 kernel {}), load {:.3} s",
        b.compute_type(),
        vkw_backend::cpu::int8::Isa::best().name(),
        t.elapsed().as_secs_f64()
    );
    let mel: Vec<f32> = (0..hp.n_mels * 3000)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect();
    let enc = b.encode(&mel, 1)?;
    let t = Instant::now();
    let enc = b.encode(&mel, 1).map(|_| enc)?;
    println!("encode (second call): {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut st = b.start(&enc, 0)?;
    println!("start (cross K/V): {:.3} s", t.elapsed().as_secs_f64());
    let mut logits = Vec::new();
    b.decode(&mut st, &[50257], 1, LogitsAt::Last, &mut logits)?;
    b.reorder(&mut st, &vec![0; beams])?;
    let steps: u32 = args.get(4).map_or(Ok(60), |s| s.parse())?;
    let t = Instant::now();
    for i in 0..steps {
        let toks: Vec<u32> = (0..beams as u32).map(|k| 400 + k + i % 200).collect();
        b.decode(&mut st, &toks, 1, LogitsAt::Last, &mut logits)?;
        let origins: Vec<usize> = (0..beams).map(|k| (k + 1) % beams).collect();
        b.reorder(&mut st, &origins)?;
    }
    println!(
        "decode step ({beams} seqs): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / steps as f64
    );
    Ok(())
}
