//! The Vulkan backend against the CPU backend on tiny.en and jfk.wav: the
//! encoder output, a prompt pre-pass, beam steps with reorder, batched
//! windows (`start_batch`) and the alignment pass. Skips locally without a
//! Vulkan device or the model; fails in CI (`CI=true`) for either.
#![cfg(feature = "vulkan")]

use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::vulkan::{best_adapter, gpu, VulkanBackend};
use vkw_backend::{Backend, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, model_dir};

fn backends() -> Option<(Arc<WhisperModel>, CpuBackend, VulkanBackend)> {
    let list = gpu::enumerate();
    let Some(best) = best_adapter(&list) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Vulkan device in CI: {}",
            vkw_backend::vulkan::no_device_message()
        );
        eprintln!("skipping: no Vulkan device");
        return None;
    };
    let dir = model_dir("tiny.en")?;
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let cpu = CpuBackend::new(model.clone(), 2).unwrap();
    let vk = VulkanBackend::new(model.clone(), best.index).unwrap();
    Some((model, cpu, vk))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

#[test]
fn encoder_decoder_start_batch_and_align_match_cpu() {
    let Some((model, cpu, vk)) = backends() else {
        return;
    };
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let mut both = mel.window(0, mel.content_frames(), 3000);
    both.extend(mel.window(400, mel.content_frames() - 400, 3000));
    let t0 = std::time::Instant::now();
    let enc_v = vk.encode(&both, 2).unwrap();
    eprintln!(
        "vulkan encode of 2 windows: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let enc_c = cpu.encode(&both, 2).unwrap();
    let (hv, hc) = (
        vk.encoded_to_host(&enc_v).unwrap(),
        cpu.encoded_to_host(&enc_c).unwrap(),
    );
    let d = max_diff(&hv, &hc);
    eprintln!("encoder max abs difference: {d:.2e}");
    assert!(d < 2e-3, "encoder output differs by {d}");

    let v = model.hparams.n_vocab;
    let sp = model.tokenizer.special;
    let prompt = [sp.sot, sp.no_timestamps];
    // Pre-pass with logits at every position, then beams.
    let (mut sv, mut sc) = (vk.start(&enc_v, 0).unwrap(), cpu.start(&enc_c, 0).unwrap());
    let (mut lv, mut lc) = (Vec::new(), Vec::new());
    vk.decode(&mut sv, &prompt, 2, LogitsAt::All, &mut lv)
        .unwrap();
    cpu.decode(&mut sc, &prompt, 2, LogitsAt::All, &mut lc)
        .unwrap();
    assert_eq!(lv.len(), 2 * v);
    let d = max_diff(&lv, &lc);
    assert!(d < 2e-3, "pre-pass logits differ by {d}");
    vk.reorder(&mut sv, &[0, 0, 0]).unwrap();
    cpu.reorder(&mut sc, &[0, 0, 0]).unwrap();
    let mut toks: Vec<u32> = vec![argmax(&lc[v..]) as u32, 400, 1000];
    for step in 0..4 {
        vk.decode(&mut sv, &toks, 1, LogitsAt::Last, &mut lv)
            .unwrap();
        cpu.decode(&mut sc, &toks, 1, LogitsAt::Last, &mut lc)
            .unwrap();
        let d = max_diff(&lv, &lc);
        assert!(d < 2e-3, "step {step}: logits differ by {d}");
        for s in 0..3 {
            assert_eq!(
                argmax(&lv[s * v..(s + 1) * v]),
                argmax(&lc[s * v..(s + 1) * v])
            );
        }
        let origins = [2, 0, 0];
        vk.reorder(&mut sv, &origins).unwrap();
        cpu.reorder(&mut sc, &origins).unwrap();
        toks = (0..3)
            .map(|s| argmax(&lc[s * v..(s + 1) * v]) as u32 + s as u32)
            .collect();
    }
    assert_eq!(vk.cache_len(&sv), 6);

    // Two windows in one state, interleaved by reorder.
    let mut bv = vk.start_batch(&enc_v, &[0, 1]).unwrap();
    let mut bc = cpu.start_batch(&enc_c, &[0, 1]).unwrap();
    let tokens: Vec<u32> = prompt.iter().chain(&prompt).copied().collect();
    vk.decode(&mut bv, &tokens, 2, LogitsAt::Last, &mut lv)
        .unwrap();
    cpu.decode(&mut bc, &tokens, 2, LogitsAt::Last, &mut lc)
        .unwrap();
    assert!(max_diff(&lv, &lc) < 2e-3);
    assert!(
        max_diff(&lv[..v], &lv[v..]) > 1e-2,
        "the two windows should differ"
    );
    vk.reorder(&mut bv, &[1, 0, 1, 0]).unwrap();
    cpu.reorder(&mut bc, &[1, 0, 1, 0]).unwrap();
    let step = [220u32, 220, 50256, 50256];
    vk.decode(&mut bv, &step, 1, LogitsAt::Last, &mut lv)
        .unwrap();
    cpu.decode(&mut bc, &step, 1, LogitsAt::Last, &mut lc)
        .unwrap();
    let d = max_diff(&lv, &lc);
    assert!(d < 2e-3, "batched windows after reorder differ by {d}");

    // Alignment pass: compare with the CPU's when it has one, else with
    // the Vulkan decoder's own logits and softmax-normalisable scores.
    let toks = [sp.sot, sp.no_timestamps, 400, 1000, 2000];
    let heads = [(1usize, 2usize), (3, 5), (1, 0)];
    let al = vk.align(&enc_v, 1, &toks, &heads).unwrap();
    let frames = model.hparams.n_audio_ctx;
    assert_eq!(al.scores.len(), heads.len() * toks.len() * frames);
    assert_eq!(al.logits.len(), toks.len() * v);
    match cpu.align(&enc_c, 1, &toks, &heads) {
        Ok(ac) => {
            assert!(max_diff(&al.logits, &ac.logits) < 2e-3);
            assert!(max_diff(&al.scores, &ac.scores) < 2e-3);
        }
        Err(e) => {
            eprintln!("CPU align unavailable ({e}); comparing with decode");
            let mut st = cpu.start(&enc_c, 1).unwrap();
            cpu.decode(&mut st, &toks, toks.len(), LogitsAt::All, &mut lc)
                .unwrap();
            assert!(max_diff(&al.logits, &lc) < 2e-3);
            // Scores of different heads differ, and are pre-softmax
            // (not probabilities).
            let row = &al.scores[..frames];
            assert!(row.iter().any(|&x| !(0.0..=1.0).contains(&x)));
            assert!(
                max_diff(
                    &al.scores[..frames],
                    &al.scores[2 * toks.len() * frames..][..frames]
                ) > 1e-3
            );
        }
    }
}
