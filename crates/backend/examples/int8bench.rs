//! Throughput of the int8 matmul kernels at Whisper's shapes, every kernel
//! family this CPU runs side by side in one process:
//! `cargo run --release -p vkw-backend --example int8bench -- [threads] [d_model] [vocab]`
//! (defaults: 1 thread, tiny's 384 and 51,865). Prints GMAC/s per shape and
//! kernel; `VKW_CPU_ISA=avx2` limits the families to what an AVX2-only CPU
//! runs.

use std::time::Instant;
use vkw_backend::cpu::int8::{qlinear_with, Epilogue, Isa, QMatrix};
use vkw_model::WeightView;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let d: usize = args.get(2).map_or(Ok(384), |s| s.parse())?;
    let vocab: usize = args.get(3).map_or(Ok(51_865), |s| s.parse())?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let gen = |n: usize, s: u64| -> Vec<f32> {
        (0..n as u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ s) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    };
    // (label, m, n, k): decoder steps at beam 5 (logits projection, FC1,
    // FC2), and the encoder's FC1 and FC2 over a 30-s window.
    let shapes = [
        ("dec proj", 5, vocab, d),
        ("dec fc1", 5, 4 * d, d),
        ("dec fc2", 5, d, 4 * d),
        ("enc fc1", 1500, 4 * d, d),
        ("enc fc2", 1500, d, 4 * d),
    ];
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.supported()).collect();
    println!("threads {threads}, d_model {d}; GMAC/s (best of 5)");
    for (label, m, n, k) in shapes {
        let w = gen(n * k, 1);
        let q = QMatrix::from_view(WeightView::F32(&w), n, k);
        let x = gen(m * k, 2);
        let mut out = vec![0f32; m * n];
        let reps = (2e9 / (m * n * k) as f64).clamp(1.0, 200.0) as usize;
        let mut line = format!("{label:9} m={m:5} n={n:6} k={k:5}");
        for &isa in &isas {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    qlinear_with(isa, &x, m, k, k, &q, None, Epilogue::None, &mut out);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            let gmacs = (m * n * k) as f64 / best / 1e9;
            line += &format!("  {}: {gmacs:6.1}", isa.name());
        }
        println!("{line}");
    }
    Ok(())
}
