//! The `VKW_BATCH_GEMV=chunks` candidate (docs/GPU.md, "Device check"):
//! decoder calls of more than 16 rows run their projections as few-row
//! matmuls over chunks of rows, with the cache append of each chunk into its
//! own slots. Against the CPU backend on tiny.en: 18-row steps (two windows
//! × 9 beams: chunks of 16 and 2, reorder between steps), an 18-row call of
//! two positions per sequence (chunks of 8 sequences) with logits at every
//! position (the output projection chunked too). The variable is read when a
//! device opens, so this test has its own binary: one backend opens before
//! it is set (the default path, for the dispatch count), one after.
#![cfg(feature = "vulkan")]

use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
mod common;

use vkw_backend::vulkan::{stats, VulkanBackend};
use vkw_backend::{Backend, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, max_abs_diff, model_dir};

/// Run the calls on `b` from a fresh two-window state; returns every call's
/// logits and the dispatches of the 18-row steps.
fn run<B: Backend>(b: &B, mel: &[f32], sot: &[u32]) -> (Vec<Vec<f32>>, u64) {
    let enc = b.encode(mel, 2).unwrap();
    let mut st = b.start_batch(&enc, &[0, 1]).unwrap();
    let mut out = Vec::new();
    let mut l = Vec::new();
    let prompt: Vec<u32> = sot.iter().chain(sot).copied().collect();
    b.decode(&mut st, &prompt, sot.len(), LogitsAt::Last, &mut l)
        .unwrap();
    out.push(l.clone());
    // 9 beams per window: sequences 0-8 from window 0, 9-17 from window 1.
    let origins: Vec<usize> = (0..18).map(|i| i / 9).collect();
    b.reorder(&mut st, &origins).unwrap();
    let mut dispatches = 0;
    for step in 0..3u32 {
        let toks: Vec<u32> = (0..18).map(|i| 220 + 7 * i + step).collect();
        let before = stats::tally();
        b.decode(&mut st, &toks, 1, LogitsAt::Last, &mut l).unwrap();
        dispatches += stats::tally().since(&before).dispatches;
        out.push(l.clone());
        // Beams trade places within their window, one pair across the
        // chunk border (15 ↔ 16, both window 1).
        let mut o: Vec<usize> = (0..18).collect();
        o.swap(2, 8);
        o.swap(15, 16);
        b.reorder(&mut st, &o).unwrap();
    }
    // Two positions per sequence, logits at both: 36 rows of logits.
    let toks: Vec<u32> = (0..36).map(|i| 300 + 5 * i).collect();
    b.decode(&mut st, &toks, 2, LogitsAt::All, &mut l).unwrap();
    out.push(l.clone());
    (out, dispatches)
}

#[test]
fn chunked_batched_calls_match_cpu() {
    let Some(best) = common::vulkan_adapter() else {
        return;
    };
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let m = vkw_audio::mel::LogMel::compute(&samples, 80);
    let mut mel = m.window(0, m.content_frames(), 3000);
    mel.extend(m.window(400, m.content_frames() - 400, 3000));
    let sp = model.tokenizer.special;
    let sot = [sp.sot, sp.no_timestamps];

    let cpu = CpuBackend::new(model.clone(), 2).unwrap();
    let (want, _) = run(&cpu, &mel, &sot);
    let (plain, plain_dispatches) = {
        let vk = VulkanBackend::new(model.clone(), best.index).unwrap();
        run(&vk, &mel, &sot)
    };
    // Set before the second device opens; nothing else in this binary reads
    // the environment concurrently (one test).
    std::env::set_var("VKW_BATCH_GEMV", "chunks");
    let vk = VulkanBackend::new(model.clone(), best.index).unwrap();
    let (chunked, chunked_dispatches) = run(&vk, &mel, &sot);

    for (i, ((c, p), w)) in chunked.iter().zip(&plain).zip(&want).enumerate() {
        assert_eq!(c.len(), w.len(), "call {i}");
        let (dc, dp) = (max_abs_diff(c, w), max_abs_diff(p, w));
        eprintln!("call {i}: chunked {dc:.2e}, default {dp:.2e} from the CPU");
        assert!(dc < 2e-3, "call {i}: chunked logits differ by {dc}");
        assert!(dp < 2e-3, "call {i}: default logits differ by {dp}");
    }
    // The chunked path really ran: two few-row matmuls per projection
    // instead of LayerNorms, tiled matmuls and a separate cache append.
    eprintln!("dispatches of three 18-row steps: chunked {chunked_dispatches}, default {plain_dispatches}");
    assert_ne!(chunked_dispatches, plain_dispatches);
}
