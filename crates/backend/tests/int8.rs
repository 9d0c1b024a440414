//! int8 compute end to end on the first jfk window: the encoder output and
//! the first decoder steps stay close to float32 compute, and the decoded
//! argmax tokens agree (int8 changes values by quantisation noise, not
//! meaning). Also checks what the compute types resolve to.

use std::sync::Arc;
use vkw_backend::cpu::{int8::Isa, CpuBackend};
use vkw_backend::{Backend, ComputeType, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, model_dir};

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
        .0
}

#[test]
fn compute_types_resolve() {
    let auto = CpuBackend::resolve(ComputeType::Auto).unwrap();
    if Isa::best() == Isa::Portable {
        assert_eq!(auto, ComputeType::Default);
    } else {
        assert_eq!(auto, ComputeType::Int8);
    }
    assert!(CpuBackend::resolve(ComputeType::Int16).is_err());
    assert_eq!(
        CpuBackend::resolve(ComputeType::Int8Float16).unwrap(),
        ComputeType::Int8Float16
    );
}

#[test]
fn int8_tracks_float32_on_jfk() {
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let f32b = CpuBackend::new(model.clone(), 2).unwrap();
    let q8 = CpuBackend::with_compute_type(model, 2, ComputeType::Int8).unwrap();
    assert_eq!(q8.compute_type(), ComputeType::Int8);
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let window = mel.window(0, mel.content_frames(), 3000);

    let (ef, eq) = (
        f32b.encode(&window, 1).unwrap(),
        q8.encode(&window, 1).unwrap(),
    );
    let (hf, hq) = (
        f32b.encoded_to_host(&ef).unwrap(),
        q8.encoded_to_host(&eq).unwrap(),
    );
    // Relative RMS difference of the encoder output: int8 noise is a few
    // percent at most; a broken kernel gives O(1).
    let num: f64 = hf
        .iter()
        .zip(&hq)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let den: f64 = hf.iter().map(|&a| f64::from(a).powi(2)).sum();
    let rel = (num / den).sqrt();
    eprintln!("encoder relative RMS difference int8 vs float32: {rel:.4}");
    assert!(rel < 0.06, "encoder int8 vs float32: {rel}");

    // Greedy decoding of the first tokens after the SOT sequence agrees.
    let (mut sf, mut sq) = (f32b.start(&ef, 0).unwrap(), q8.start(&eq, 0).unwrap());
    let (mut lf, mut lq) = (Vec::new(), Vec::new());
    let mut tokens = vec![50257u32, 50362];
    f32b.decode(&mut sf, &tokens, 2, LogitsAt::Last, &mut lf)
        .unwrap();
    q8.decode(&mut sq, &tokens, 2, LogitsAt::Last, &mut lq)
        .unwrap();
    for _ in 0..8 {
        let (a, b) = (argmax(&lf), argmax(&lq));
        assert_eq!(a, b, "greedy token after {tokens:?}");
        tokens.push(a as u32);
        f32b.decode(&mut sf, &[a as u32], 1, LogitsAt::Last, &mut lf)
            .unwrap();
        q8.decode(&mut sq, &[a as u32], 1, LogitsAt::Last, &mut lq)
            .unwrap();
    }
    let text = q8.model().tokenizer.decode(&tokens[2..]);
    eprintln!("int8 greedy start: {text:?}");
    assert!(text.contains("my fellow Americans"), "{text}");
}
