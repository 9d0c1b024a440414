//! What the load-time value check costs: `cargo run --release -p vkw-model
//! --example check_cost -- DIR [REPEATS]` loads DIR and times
//! `ModelBin::check_values` (the NaN/Inf scan of every weight) against the
//! whole `WhisperModel::load`, best of REPEATS (default 5).

use std::time::Instant;
use vkw_model::WhisperModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: check_cost DIR [REPEATS]")?;
    let repeats: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let (mut load, mut check) = (f64::MAX, f64::MAX);
    let mut bytes = 0;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let m = WhisperModel::load(&dir)?;
        load = load.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        m.weights.check_values()?;
        check = check.min(t0.elapsed().as_secs_f64());
        bytes = m.weights.resident_bytes();
    }
    println!(
        "{dir}: {:.1} MB of weights; load {:.1} ms (check included), check {:.1} ms ({:.1}% of the load, {:.1} GB/s) on {} threads",
        bytes as f64 / 1e6,
        load * 1e3,
        check * 1e3,
        100.0 * check / load,
        bytes as f64 / check / 1e9,
        rayon::current_num_threads()
    );
    Ok(())
}
