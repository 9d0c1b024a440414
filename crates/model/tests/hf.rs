//! transformers checkpoints: tiny.en's CTranslate2 weights exported to a
//! transformers layout (the inverse mapping in examples/export_hf), loaded
//! back, converted back, and broken in each way the loader must report.

#[path = "../examples/export_hf/inverse.rs"]
#[allow(dead_code)]
mod inverse;

use inverse::{export_hf, ExportOptions};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use vkw_model::convert::{write_ct2_dir, Quantization};
use vkw_model::{DType, ModelBin, ModelError, ModelFormat, WhisperModel};

fn export(ct2: &Path, opts: ExportOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    export_hf(ct2, dir.path(), &opts).unwrap();
    dir
}

/// Rewrite `file` keeping the tensors `keep` accepts, with `edit` applied to
/// each tensor's f32 values (the file must be float32).
fn rewrite(
    file: &Path,
    keep: impl Fn(&str) -> bool,
    edit: impl Fn(&str, &mut Vec<usize>, &mut Vec<f32>),
) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        if !keep(&name) {
            continue;
        }
        let mut v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut shape = view.shape().to_vec();
        edit(&name, &mut shape, &mut v);
        let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        data.push((name, shape, b));
    }
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, s, b)| {
            let v = TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap();
            (n.clone(), v)
        })
        .collect();
    safetensors::serialize_to_file(views, None, file).unwrap();
}

fn tiny() -> Option<PathBuf> {
    vkw_testkit::model_dir("tiny.en")
}

#[test]
fn float32_sharded_checkpoint_maps_onto_the_ct2_variables_and_converts_back_exactly() {
    let Some(ct2) = tiny() else { return };
    let orig = WhisperModel::load(&ct2).unwrap();
    let hf = export(
        &ct2,
        ExportOptions {
            shards: 2,
            ..Default::default()
        },
    );
    assert!(hf.path().join("model.safetensors.index.json").is_file());
    let m = WhisperModel::load(hf.path()).unwrap();
    assert_eq!(m.format, ModelFormat::HuggingFace);
    assert_eq!(m.hparams, orig.hparams);
    assert_eq!(m.config, orig.config);
    assert_eq!(m.tokenizer.special, orig.tokenizer.special);
    // The vocabulary built from tokenizer.json + timestamps is vocabulary.txt.
    assert_eq!(m.tokenizer.vocabulary(), orig.tokenizer.vocabulary());
    // Same variables (fused layouts, zero key biases, scalars, the tied
    // projection alias), float32 holding the float16 values exactly.
    let names: Vec<&str> = orig.weights.names().collect();
    assert_eq!(m.weights.names().collect::<Vec<_>>(), names);
    assert_eq!(m.weights.aliases, orig.weights.aliases);
    for name in names {
        let (a, b) = (
            orig.weights.get(name).unwrap(),
            m.weights.get(name).unwrap(),
        );
        assert_eq!(a.shape, b.shape, "{name}");
        if a.shape.is_empty() {
            assert_eq!(a.data, b.data, "{name}");
        } else {
            assert_eq!(b.data.dtype(), DType::F32, "{name}");
            assert_eq!(a.to_f32(), b.to_f32(), "{name}");
        }
    }

    // HF → CT2 float16: model.bin holds exactly the original's variables,
    // dtypes, shapes and values; config.json is byte-identical.
    let out = tempfile::tempdir().unwrap();
    let mut calls = 0;
    write_ct2_dir(&m, out.path(), Some(Quantization::Float16), &mut |p| {
        calls += 1;
        assert_eq!(p.done, calls);
    })
    .unwrap();
    assert_eq!(calls, 148);
    let a = ModelBin::open(&ct2.join("model.bin")).unwrap();
    let b = ModelBin::open(&out.path().join("model.bin")).unwrap();
    assert_eq!(
        (b.binary_version, &b.spec_name, b.spec_revision),
        (6, &a.spec_name, 3)
    );
    assert_eq!(b.aliases, a.aliases);
    let av: Vec<_> = a.stored_variables().collect();
    let bv: Vec<_> = b.stored_variables().collect();
    assert_eq!(av.len(), bv.len());
    for ((an, at), (bn, bt)) in av.iter().zip(&bv) {
        assert_eq!(an, bn);
        assert_eq!(at, bt, "{an}");
    }
    assert_eq!(
        std::fs::read(out.path().join("config.json")).unwrap(),
        std::fs::read(ct2.join("config.json")).unwrap()
    );
    let back = WhisperModel::load(out.path()).unwrap();
    assert_eq!(back.tokenizer.vocabulary(), orig.tokenizer.vocabulary());
}

/// base: a multilingual vocabulary whose tokenizer.json already holds the
/// timestamp tokens, exported as one float16 file.
#[test]
fn multilingual_float16_checkpoint_maps_onto_the_ct2_variables() {
    let Some(ct2) = vkw_testkit::model_dir("base") else {
        return;
    };
    let orig = WhisperModel::load(&ct2).unwrap();
    let hf = export(
        &ct2,
        ExportOptions {
            dtype: "float16".into(),
            ..Default::default()
        },
    );
    let m = WhisperModel::load(hf.path()).unwrap();
    assert_eq!(m.hparams, orig.hparams);
    assert_eq!(m.config, orig.config);
    assert_eq!(m.tokenizer.special, orig.tokenizer.special);
    assert!(m.tokenizer.special.multilingual);
    assert_eq!(m.tokenizer.vocabulary(), orig.tokenizer.vocabulary());
    assert_eq!(m.weights.aliases, orig.weights.aliases);
    for name in orig.weights.names() {
        let a = orig.weights.get(name).unwrap();
        match m.weights.try_get(name) {
            Some(b) => assert_eq!(a, b, "{name}"),
            // This conversion was made by a newer CTranslate2, which also
            // writes default-valued (zero) scalars the Whisper spec ignores.
            None => assert!(a.shape.is_empty() && a.scalar_i64() == Some(0), "{name}"),
        }
    }
    let out = tempfile::tempdir().unwrap();
    write_ct2_dir(&m, out.path(), Some(Quantization::Float16), &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("config.json")).unwrap(),
        std::fs::read(ct2.join("config.json")).unwrap()
    );
}

#[test]
fn float16_and_bfloat16_checkpoints_keep_their_dtype() {
    let Some(ct2) = tiny() else { return };
    let orig = WhisperModel::load(&ct2).unwrap();
    for (dtype, want) in [("float16", DType::F16), ("bfloat16", DType::BF16)] {
        let hf = export(
            &ct2,
            ExportOptions {
                dtype: dtype.into(),
                ..Default::default()
            },
        );
        let m = WhisperModel::load(hf.path()).unwrap();
        for name in [
            "encoder/conv1/weight",
            "decoder/layer_1/attention/linear_1/bias",
        ] {
            let t = m.weights.get(name).unwrap();
            assert_eq!(t.data.dtype(), want, "{dtype} {name}");
            let expect: Vec<f32> = orig.weights.get(name).unwrap().to_f32();
            let expect: Vec<f32> = match want {
                DType::BF16 => expect
                    .iter()
                    .map(|&x| half::bf16::from_f32(x).to_f32())
                    .collect(),
                _ => expect,
            };
            assert_eq!(t.to_f32(), expect, "{dtype} {name}");
        }
    }
}

#[test]
fn untied_output_projection_is_its_own_variable() {
    let Some(ct2) = tiny() else { return };
    let hf = export(
        &ct2,
        ExportOptions {
            write_proj_out: true,
            ..Default::default()
        },
    );
    // An equal proj_out is still an alias, as CTranslate2's converter makes it.
    let m = WhisperModel::load(hf.path()).unwrap();
    assert_eq!(m.weights.aliases.len(), 1);
    let file = hf.path().join("model.safetensors");
    rewrite(
        &file,
        |_| true,
        |n, _, v| {
            if n == "proj_out.weight" {
                v.iter_mut().for_each(|x| *x *= 0.5);
            }
        },
    );
    let m = WhisperModel::load(hf.path()).unwrap();
    assert!(m.weights.aliases.is_empty());
    let p = m.weights.get("decoder/projection/weight").unwrap().to_f32();
    let e = m.weights.get("decoder/embeddings/weight").unwrap().to_f32();
    assert_eq!(p[7], e[7] * 0.5);
    // And it survives conversion as a stored variable.
    let out = tempfile::tempdir().unwrap();
    write_ct2_dir(&m, out.path(), None, &mut |_| {}).unwrap();
    let b = ModelBin::open(&out.path().join("model.bin")).unwrap();
    assert!(b.aliases.is_empty());
    assert_eq!(b.get("decoder/projection/weight").unwrap().to_f32(), p);
}

/// 128 mel bins (large-v3's front end): n_mels comes from config.json and
/// conv1, and the converted directory tells faster-whisper through
/// preprocessor_config.json.
#[test]
fn mel_count_follows_the_checkpoint() {
    let Some(ct2) = tiny() else { return };
    let hf = export(&ct2, ExportOptions::default());
    let cfg_path = hf.path().join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        cfg.replace("\"num_mel_bins\": 80", "\"num_mel_bins\": 128"),
    )
    .unwrap();
    rewrite(
        &hf.path().join("model.safetensors"),
        |_| true,
        |n, shape, v| {
            if n == "model.encoder.conv1.weight" {
                // [384, 80, 3] → [384, 128, 3], the extra input channels zero.
                let old = std::mem::take(v);
                for row in old.chunks(80 * 3) {
                    v.extend_from_slice(row);
                    v.extend(std::iter::repeat_n(0.0, 48 * 3));
                }
                shape[1] = 128;
            }
        },
    );
    let m = WhisperModel::load(hf.path()).unwrap();
    assert_eq!(m.hparams.n_mels, 128);
    assert_eq!(
        m.weights.get("encoder/conv1/weight").unwrap().shape,
        [384, 128, 3]
    );
    let out = tempfile::tempdir().unwrap();
    write_ct2_dir(&m, out.path(), None, &mut |_| {}).unwrap();
    let pre = std::fs::read_to_string(out.path().join("preprocessor_config.json")).unwrap();
    let pre: serde_json::Value = serde_json::from_str(&pre).unwrap();
    assert_eq!(pre["feature_size"], 128);
    assert_eq!(WhisperModel::load(out.path()).unwrap().hparams.n_mels, 128);
}

/// A checkpoint saved without the encoder's fixed sinusoid table gets it
/// computed (equal to tiny.en's stored table up to its float16 rounding).
#[test]
fn missing_encoder_positions_are_computed() {
    let Some(ct2) = tiny() else { return };
    let orig = WhisperModel::load(&ct2).unwrap();
    let hf = export(&ct2, ExportOptions::default());
    let file = hf.path().join("model.safetensors");
    rewrite(
        &file,
        |n| n != "model.encoder.embed_positions.weight",
        |_, _, _| {},
    );
    let m = WhisperModel::load(hf.path()).unwrap();
    let name = "encoder/position_encodings/encodings";
    let (a, b) = (
        orig.weights.get(name).unwrap(),
        m.weights.get(name).unwrap(),
    );
    assert_eq!(a.shape, b.shape);
    let max = a
        .to_f32()
        .iter()
        .zip(b.to_f32())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max < 5e-4, "max |diff| {max}");
}

fn load_err(dir: &Path) -> String {
    let e = WhisperModel::load(dir).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn broken_checkpoints_are_one_line_errors_naming_the_problem() {
    let Some(ct2) = tiny() else { return };
    let hf = export(&ct2, ExportOptions::default());
    let dir = hf.path();
    let cfg_path = dir.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();

    // Another architecture.
    std::fs::write(&cfg_path, cfg.replace("\"whisper\"", "\"bart\"")).unwrap();
    let e = WhisperModel::load(dir).unwrap_err();
    assert!(matches!(e, ModelError::NotWhisper { .. }), "{e}");
    assert!(load_err(dir).contains("\"bart\""));

    // A shape that disagrees with config.json names the tensor.
    std::fs::write(
        &cfg_path,
        cfg.replace("\"num_mel_bins\": 80", "\"num_mel_bins\": 128"),
    )
    .unwrap();
    let msg = load_err(dir);
    assert!(
        msg.contains("\"model.encoder.conv1.weight\"") && msg.contains("[384, 80, 3]"),
        "{msg}"
    );
    std::fs::write(&cfg_path, &cfg).unwrap();

    // A missing tensor is named.
    let file = dir.join("model.safetensors");
    let good = std::fs::read(&file).unwrap();
    rewrite(
        &file,
        |n| n != "model.decoder.layers.2.fc2.bias",
        |_, _, _| {},
    );
    let msg = load_err(dir);
    assert!(
        msg.contains("tensor \"model.decoder.layers.2.fc2.bias\" is missing"),
        "{msg}"
    );

    // A corrupt header: every truncation and a garbled length are errors,
    // never panics.
    for cut in [0, 4, 8, 100, good.len() / 2] {
        std::fs::write(&file, &good[..cut]).unwrap();
        let msg = load_err(dir);
        assert!(msg.contains("model.safetensors"), "{msg}");
    }
    let mut bad = good.clone();
    bad[8] = b'!';
    std::fs::write(&file, &bad).unwrap();
    assert!(load_err(dir).contains("invalid safetensors header"));
    let mut bad = good;
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&file, &bad).unwrap();
    assert!(load_err(dir).contains("invalid safetensors header"));
}

#[test]
fn pytorch_only_checkpoint_asks_for_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "whisper"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"PK").unwrap();
    let msg = load_err(dir.path());
    assert!(
        msg.contains("pytorch_model.bin") && msg.contains("safe_serialization=True"),
        "{msg}"
    );
}
