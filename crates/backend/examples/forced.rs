//! The CPU backend at a model's shape, as `key=value` lines for
//! scripts/bench-shapes.py (issue 19's small/medium comparison, where no
//! real model of those sizes can be had and random-weight models of the real
//! shapes stand in):
//!
//! `forced MODEL_DIR [compute_type] [threads] [beam] [steps] [reps]`
//!
//! * `encode_ms_per_window`: one 30-s window through the encoder (median of
//!   `reps` after a warm-up call);
//! * `step_ms`: beam search forced to `steps` new tokens (no early stop):
//!   the cross K/V, the `<|startoftranscript|><|notimestamps|>` prompt, then
//!   per step the decoder over `beam` sequences, the logit rules,
//!   log-softmax and the top `2·beam` candidates per row
//!   ([`Backend::decode_top`], what decoding calls), and the beam reorder —
//!   all of it divided by `steps`, as CTranslate2's `generate` time minus
//!   its encoder pass is in the same script.
//!
//! `cargo build --release -p vkw-backend --example forced`.

use std::sync::Arc;
use std::time::Instant;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::{Backend, ComputeType, LogitMasks, LogitsAt, RowRule, TopK, TopRequest};
use vkw_model::WhisperModel;
use vkw_testkit::percentile;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: forced MODEL_DIR [compute_type] [threads] [beam] [steps] [reps]")?;
    let ct: ComputeType = args.get(2).map_or("default", |s| s.as_str()).parse()?;
    let threads: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let beam: usize = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let steps: usize = args.get(5).map_or(Ok(64), |s| s.parse())?;
    let reps: usize = args.get(6).map_or(Ok(3), |s| s.parse())?;
    let t = Instant::now();
    let model = Arc::new(WhisperModel::load(dir)?);
    let hp = model.hparams;
    let vocab = hp.n_vocab as u32;
    // The loader already found and checked the special tokens.
    let sp = model.tokenizer.special;
    let (sot, nots, eot) = (sp.sot, sp.no_timestamps, sp.eot);
    let b = CpuBackend::with_compute_type(model.clone(), threads, ct)?;
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "engine=vkwhisper model={dir} compute_type={} int8_kernel={} threads={threads} load_s={load_s:.2}",
        b.compute_type(),
        vkw_backend::cpu::int8::Isa::best().name(),
    );
    // Deterministic noise in log-mel range: the work does not depend on it.
    let mel: Vec<f32> = (0..hp.n_mels * 3000)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect();
    let mut enc = b.encode(&mel, 1)?;
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        enc = b.encode(&mel, 1)?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "engine=vkwhisper encode_ms_per_window={:.1}",
        percentile(&mut v, 0.5)
    );
    // Every special token (end of text included) is masked, so each run
    // decodes exactly `steps` tokens, like the CTranslate2 side.
    let masks = LogitMasks {
        suppress: (eot..vocab).collect(),
        suppress_begin: Vec::new(),
        timestamp_begin: vocab,
    };
    let mut v = Vec::new();
    let mut top = TopK::default();
    let mut logits = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let mut st = b.start(&enc, 0)?;
        b.decode(&mut st, &[sot, nots], 2, LogitsAt::Last, &mut logits)?;
        // Expand to `beam` sequences, then keep the best `beam` of the
        // candidates each step (a beam search without finished hypotheses).
        b.reorder(&mut st, &vec![0; beam])?;
        let mut toks: Vec<u32> = (0..beam as u32).map(|r| 440 + r).collect();
        let mut rows = vec![RowRule::default(); beam];
        for _ in 0..steps {
            let req = TopRequest {
                masks: &masks,
                rows: &rows,
                k: 2 * beam,
                no_speech: None,
            };
            b.decode_top(&mut st, &toks, &req, &mut top)?;
            let mut all: Vec<(f32, usize, u32)> = (0..beam)
                .flat_map(|r| top.row(r).iter().map(move |c| (c.score, r, c.token)))
                .collect();
            all.sort_by(|a, c| c.0.total_cmp(&a.0));
            all.truncate(beam);
            let origins: Vec<usize> = all.iter().map(|c| c.1).collect();
            b.reorder(&mut st, &origins)?;
            toks = all.iter().map(|c| c.2).collect();
            for (r, c) in rows.iter_mut().zip(&all) {
                r.score = c.0;
            }
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ms = percentile(&mut v, 0.5);
    println!(
        "engine=vkwhisper beam={beam} steps={steps} decode_ms_per_window={ms:.1} step_ms={:.3}",
        ms / steps as f64
    );
    Ok(())
}
