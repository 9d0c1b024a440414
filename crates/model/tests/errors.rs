//! model.bin error paths on a synthetic Whisper model: every failure is an
//! error naming the file and the variable, never a panic.

use half::f16;
use std::path::Path;
use vkw_model::writer::write_model_bin;
use vkw_model::{HParams, ModelBin, ModelError, Tensor, TensorData};

const D: usize = 8;

fn t(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor {
        shape: shape.to_vec(),
        data: TensorData::F16((0..n).map(|i| f16::from_f32(i as f32 * 1e-3)).collect()),
        scale: None,
    }
}

fn scalar(v: i16) -> Tensor {
    Tensor {
        shape: vec![],
        data: TensorData::I16(vec![v]),
        scale: None,
    }
}

/// A complete one-layer Whisper with d_model 8, 2 heads, 4 mels, vocab 20.
fn tiny_vars() -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vec![
        ("encoder/num_heads".into(), scalar(2)),
        ("decoder/num_heads".into(), scalar(2)),
        ("encoder/conv1/weight".into(), t(&[D, 4, 3])),
        ("encoder/conv1/bias".into(), t(&[D])),
        ("encoder/conv2/weight".into(), t(&[D, D, 3])),
        ("encoder/conv2/bias".into(), t(&[D])),
        ("encoder/position_encodings/encodings".into(), t(&[6, D])),
        ("encoder/layer_norm/gamma".into(), t(&[D])),
        ("encoder/layer_norm/beta".into(), t(&[D])),
        ("decoder/embeddings/weight".into(), t(&[20, D])),
        ("decoder/position_encodings/encodings".into(), t(&[10, D])),
        ("decoder/layer_norm/gamma".into(), t(&[D])),
        ("decoder/layer_norm/beta".into(), t(&[D])),
    ];
    let lin = |v: &mut Vec<(String, Tensor)>, p: &str, o: usize, i: usize| {
        v.push((format!("{p}/weight"), t(&[o, i])));
        v.push((format!("{p}/bias"), t(&[o])));
    };
    let ln = |v: &mut Vec<(String, Tensor)>, p: &str| {
        v.push((format!("{p}/layer_norm/gamma"), t(&[D])));
        v.push((format!("{p}/layer_norm/beta"), t(&[D])));
    };
    for side in ["encoder", "decoder"] {
        let l = format!("{side}/layer_0");
        ln(&mut v, &format!("{l}/self_attention"));
        lin(&mut v, &format!("{l}/self_attention/linear_0"), 3 * D, D);
        lin(&mut v, &format!("{l}/self_attention/linear_1"), D, D);
        if side == "decoder" {
            ln(&mut v, &format!("{l}/attention"));
            lin(&mut v, &format!("{l}/attention/linear_0"), D, D);
            lin(&mut v, &format!("{l}/attention/linear_1"), 2 * D, D);
            lin(&mut v, &format!("{l}/attention/linear_2"), D, D);
        }
        ln(&mut v, &format!("{l}/ffn"));
        lin(&mut v, &format!("{l}/ffn/linear_0"), 4 * D, D);
        lin(&mut v, &format!("{l}/ffn/linear_1"), D, 4 * D);
    }
    v
}

fn bytes(spec: &str, vars: &[(String, Tensor)]) -> Vec<u8> {
    let mut b = Vec::new();
    let aliases = [(
        "decoder/projection/weight".to_string(),
        "decoder/embeddings/weight".to_string(),
    )];
    write_model_bin(&mut b, spec, 3, vars, &aliases).unwrap();
    b
}

fn load(b: &[u8]) -> Result<HParams, ModelError> {
    let m = ModelBin::parse(Path::new("/m/model.bin"), b)?;
    HParams::infer(&m)
}

#[test]
fn synthetic_model_infers_hparams() {
    let hp = load(&bytes("WhisperSpec", &tiny_vars())).unwrap();
    assert_eq!(
        (hp.d_model, hp.n_mels, hp.d_ffn, hp.n_vocab),
        (D, 4, 4 * D, 20)
    );
    assert_eq!(
        (hp.encoder_layers, hp.decoder_layers, hp.encoder_heads),
        (1, 1, 2)
    );
    assert_eq!((hp.n_audio_ctx, hp.n_text_ctx), (6, 10));
}

#[test]
fn wrong_spec_name_is_rejected() {
    let e = load(&bytes("TransformerSpec", &tiny_vars()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/m/model.bin") && e.contains("TransformerSpec"),
        "{e}"
    );
}

#[test]
fn missing_variable_is_named() {
    let vars: Vec<_> = tiny_vars()
        .into_iter()
        .filter(|(n, _)| n != "decoder/layer_0/attention/linear_2/bias")
        .collect();
    let e = load(&bytes("WhisperSpec", &vars)).unwrap_err().to_string();
    assert!(
        e.contains("decoder/layer_0/attention/linear_2/bias") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn shape_mismatch_is_named() {
    let mut vars = tiny_vars();
    for (n, tensor) in vars.iter_mut() {
        if n == "encoder/layer_0/ffn/linear_1/weight" {
            *tensor = t(&[D, 3 * D]);
        }
    }
    let e = load(&bytes("WhisperSpec", &vars)).unwrap_err().to_string();
    assert!(
        e.contains("encoder/layer_0/ffn/linear_1/weight") && e.contains("shape"),
        "{e}"
    );
}

#[test]
fn every_truncation_and_bad_payload_size_is_an_error() {
    let b = bytes("WhisperSpec", &tiny_vars());
    for cut in (0..b.len()).step_by(7) {
        let e = load(&b[..cut]).unwrap_err().to_string();
        assert!(e.contains("/m/model.bin"), "{e}");
    }
    // Extra bytes after the alias table.
    let mut extra = b.clone();
    extra.extend_from_slice(&[0, 1, 2]);
    assert!(load(&extra).unwrap_err().to_string().contains("trailing"));
    // A newer binary version.
    let mut newer = b;
    newer[0] = 7;
    assert!(load(&newer).unwrap_err().to_string().contains("newer"));
}

#[test]
fn older_binary_versions_parse() {
    // Version 2: spec name and revision, no aliases; version 3 adds aliases;
    // both use item sizes instead of dtype ids (spec §2.3).
    for version in [2u32, 3] {
        let mut b = Vec::new();
        b.extend(version.to_le_bytes());
        b.extend(12u16.to_le_bytes());
        b.extend(b"WhisperSpec\0");
        b.extend(1u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(4u16.to_le_bytes());
        b.extend(b"a/w\0");
        b.push(1);
        b.extend(2u32.to_le_bytes());
        b.push(4);
        b.extend(2u32.to_le_bytes());
        b.extend(1.5f32.to_le_bytes());
        b.extend((-2.0f32).to_le_bytes());
        if version >= 3 {
            b.extend(1u32.to_le_bytes());
            b.extend(4u16.to_le_bytes());
            b.extend(b"b/w\0");
            b.extend(4u16.to_le_bytes());
            b.extend(b"a/w\0");
        }
        let m = ModelBin::parse(Path::new("v.bin"), &b).unwrap();
        assert_eq!(m.get("a/w").unwrap().to_f32(), vec![1.5, -2.0]);
        assert_eq!(m.contains("b/w"), version >= 3);
    }
}

#[test]
fn bfloat16_and_int16_dequantise() {
    let bf = Tensor {
        shape: vec![2],
        data: TensorData::BF16(vec![half::bf16::from_f32(1.5), half::bf16::from_f32(-0.25)]),
        scale: None,
    };
    assert_eq!(bf.to_f32(), vec![1.5, -0.25]);
    let mut vars = vec![(
        "x/weight".to_string(),
        Tensor {
            shape: vec![2],
            data: TensorData::I16(vec![1024, -512]),
            scale: Some(vec![1024.0]),
        },
    )];
    vars.push(("y/weight".to_string(), bf));
    let mut b = Vec::new();
    write_model_bin(&mut b, "WhisperSpec", 3, &vars, &[]).unwrap();
    let m = ModelBin::parse(Path::new("q.bin"), &b).unwrap();
    assert_eq!(m.get("x/weight").unwrap().to_f32(), vec![1.0, -0.5]);
    assert_eq!(m.get("y/weight").unwrap().to_f32(), vec![1.5, -0.25]);
}

#[test]
fn bit_flips_never_panic() {
    // Flip bytes all over a valid file: every outcome is Ok or an Err naming
    // the file, never a panic (shapes, sizes and string lengths included).
    let b = bytes("WhisperSpec", &tiny_vars());
    let mut state = 0x9e37_79b9u32;
    for _ in 0..3000 {
        let mut c = b.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let at = state as usize % c.len();
            c[at] ^= (state >> 24) as u8 | 1;
        }
        if let Err(e) = load(&c) {
            assert!(e.to_string().contains("/m/model.bin"), "{e}");
        }
    }
}
