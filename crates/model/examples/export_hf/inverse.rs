//! The inverse of vkw-model's transformers mapping: a CTranslate2 Whisper
//! directory written out as a transformers checkpoint (config.json,
//! generation_config.json, tokenizer.json, safetensors — one file or shards
//! with an index). Test support: the HF tests and
//! `scripts/check-ct2-compat.sh` build their checkpoints with it, so no
//! Python or download is needed. Written from spec §3 (names, fused
//! layouts) and transformers' `WhisperForConditionalGeneration` names.

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::path::Path;
use vkw_model::{Tensor, WhisperModel, LANGUAGES};

/// A tensor's shape and values.
type Values = (Vec<usize>, Vec<f32>);

/// How to write the checkpoint.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// "float32", "float16" or "bfloat16".
    pub dtype: String,
    /// Number of safetensors files (1 = `model.safetensors`).
    pub shards: usize,
    /// Write `proj_out.weight` as its own tensor (an untied head) instead of
    /// leaving it out as transformers does for tied embeddings.
    pub write_proj_out: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            dtype: "float32".into(),
            shards: 1,
            write_proj_out: false,
        }
    }
}

fn bytes(values: &[f32], dtype: &str) -> (Dtype, Vec<u8>) {
    match dtype {
        "float16" => (
            Dtype::F16,
            values
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes())
                .collect(),
        ),
        "bfloat16" => (
            Dtype::BF16,
            values
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_bits().to_le_bytes())
                .collect(),
        ),
        _ => (
            Dtype::F32,
            values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    }
}

/// Export the CTranslate2 model at `ct2_dir` as a transformers checkpoint in `out`.
pub fn export_hf(ct2_dir: &Path, out: &Path, opts: &ExportOptions) -> Result<(), String> {
    let m = WhisperModel::load(ct2_dir).map_err(|e| e.to_string())?;
    let w = &m.weights;
    let hp = m.hparams;
    let d = hp.d_model;
    let get = |name: &str| -> Result<&Tensor, String> { w.get(name).map_err(|e| e.to_string()) };
    let mut tensors: BTreeMap<String, Values> = BTreeMap::new();
    let mut put = |name: String, t: &Tensor| {
        tensors.insert(name, (t.shape.clone(), t.to_f32()));
    };
    // Rows [from, to) of a matrix or vector.
    let rows = |t: &Tensor, from: usize, to: usize| -> Values {
        let (_, cols) = t.rows_cols();
        let v = t.to_f32()[from * cols..to * cols].to_vec();
        let mut shape = t.shape.clone();
        shape[0] = to - from;
        (shape, v)
    };
    put(
        "model.encoder.conv1.weight".into(),
        get("encoder/conv1/weight")?,
    );
    put(
        "model.encoder.conv1.bias".into(),
        get("encoder/conv1/bias")?,
    );
    put(
        "model.encoder.conv2.weight".into(),
        get("encoder/conv2/weight")?,
    );
    put(
        "model.encoder.conv2.bias".into(),
        get("encoder/conv2/bias")?,
    );
    put(
        "model.encoder.embed_positions.weight".into(),
        get("encoder/position_encodings/encodings")?,
    );
    put(
        "model.decoder.embed_tokens.weight".into(),
        get("decoder/embeddings/weight")?,
    );
    put(
        "model.decoder.embed_positions.weight".into(),
        get("decoder/position_encodings/encodings")?,
    );
    for stack in ["encoder", "decoder"] {
        put(
            format!("model.{stack}.layer_norm.weight"),
            get(&format!("{stack}/layer_norm/gamma"))?,
        );
        put(
            format!("model.{stack}.layer_norm.bias"),
            get(&format!("{stack}/layer_norm/beta"))?,
        );
    }
    let mut split: Vec<(String, Values)> = Vec::new();
    for (stack, layers) in [
        ("encoder", hp.encoder_layers),
        ("decoder", hp.decoder_layers),
    ] {
        for i in 0..layers {
            let hf = format!("model.{stack}.layers.{i}");
            let ct = format!("{stack}/layer_{i}");
            let mut lnorm = |hfn: &str, ctn: &str| -> Result<(), String> {
                put(
                    format!("{hf}.{hfn}.weight"),
                    get(&format!("{ct}/{ctn}/gamma"))?,
                );
                put(
                    format!("{hf}.{hfn}.bias"),
                    get(&format!("{ct}/{ctn}/beta"))?,
                );
                Ok(())
            };
            lnorm("self_attn_layer_norm", "self_attention/layer_norm")?;
            lnorm("final_layer_norm", "ffn/layer_norm")?;
            if stack == "decoder" {
                lnorm("encoder_attn_layer_norm", "attention/layer_norm")?;
            }
            let mut linear = |hfn: &str, ctn: &str| -> Result<(), String> {
                put(
                    format!("{hf}.{hfn}.weight"),
                    get(&format!("{ct}/{ctn}/weight"))?,
                );
                put(
                    format!("{hf}.{hfn}.bias"),
                    get(&format!("{ct}/{ctn}/bias"))?,
                );
                Ok(())
            };
            linear("self_attn.out_proj", "self_attention/linear_1")?;
            linear("fc1", "ffn/linear_0")?;
            linear("fc2", "ffn/linear_1")?;
            let mut fused = vec![("self_attn", "self_attention/linear_0", vec!["q", "k", "v"])];
            if stack == "decoder" {
                linear("encoder_attn.q_proj", "attention/linear_0")?;
                linear("encoder_attn.out_proj", "attention/linear_2")?;
                fused.push(("encoder_attn", "attention/linear_1", vec!["k", "v"]));
            }
            for (hfn, ctn, parts) in fused {
                let wt = get(&format!("{ct}/{ctn}/weight"))?;
                let bt = get(&format!("{ct}/{ctn}/bias"))?;
                for (k, p) in parts.iter().enumerate() {
                    split.push((
                        format!("{hf}.{hfn}.{p}_proj.weight"),
                        rows(wt, k * d, (k + 1) * d),
                    ));
                    let b = rows(bt, k * d, (k + 1) * d);
                    // Whisper's key projections have no bias: the fused
                    // bias holds zeros there (spec §3.2).
                    if *p == "k" && b.1.iter().all(|&x| x == 0.0) {
                        continue;
                    }
                    split.push((format!("{hf}.{hfn}.{p}_proj.bias"), b));
                }
            }
        }
    }
    if opts.write_proj_out {
        let p = w
            .try_get("decoder/projection/weight")
            .unwrap_or(get("decoder/embeddings/weight")?);
        put("proj_out.weight".into(), p);
    }
    tensors.extend(split);

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    // Shards: consecutive runs of names, as transformers splits by size.
    let names: Vec<&String> = tensors.keys().collect();
    let shards = opts.shards.max(1);
    let per = names.len().div_ceil(shards);
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (s, chunk) in names.chunks(per).enumerate() {
        let file = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", s + 1, shards)
        };
        let data: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = chunk
            .iter()
            .map(|n| {
                let (shape, v) = &tensors[*n];
                let (dt, b) = bytes(v, &opts.dtype);
                ((*n).clone(), shape.clone(), dt, b)
            })
            .collect();
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, shape, dt, b)| {
                TensorView::new(*dt, shape.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| format!("{n}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        safetensors::serialize_to_file(views, Some(meta), &out.join(&file))
            .map_err(|e| format!("{file}: {e}"))?;
        for (n, _, _, b) in &data {
            weight_map.insert(n.clone(), serde_json::json!(file));
            total += b.len();
        }
    }
    let write_json = |name: &str, v: serde_json::Value| -> Result<(), String> {
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    if shards > 1 {
        write_json(
            "model.safetensors.index.json",
            serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map}),
        )?;
    }
    let sp = m.tokenizer.special;
    let c = &m.config;
    write_json(
        "config.json",
        serde_json::json!({
            "architectures": ["WhisperForConditionalGeneration"],
            "model_type": "whisper",
            "activation_function": "gelu",
            "d_model": d,
            "encoder_layers": hp.encoder_layers,
            "decoder_layers": hp.decoder_layers,
            "encoder_attention_heads": hp.encoder_heads,
            "decoder_attention_heads": hp.decoder_heads,
            "encoder_ffn_dim": hp.d_ffn,
            "decoder_ffn_dim": hp.d_ffn,
            "num_mel_bins": hp.n_mels,
            "max_source_positions": hp.n_audio_ctx,
            "max_target_positions": hp.n_text_ctx,
            "vocab_size": hp.n_vocab,
            "scale_embedding": false,
            "tie_word_embeddings": !opts.write_proj_out,
            "torch_dtype": opts.dtype,
            "bos_token_id": sp.eot,
            "eos_token_id": sp.eot,
            "pad_token_id": sp.eot,
            "decoder_start_token_id": sp.sot,
        }),
    )?;
    let lang_to_id: serde_json::Map<String, serde_json::Value> = c
        .lang_ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let code = LANGUAGES.get(k).copied().unwrap_or("xx");
            (format!("<|{code}|>"), serde_json::json!(id))
        })
        .collect();
    let heads: Vec<[usize; 2]> = c.alignment_heads.iter().map(|&(l, h)| [l, h]).collect();
    write_json(
        "generation_config.json",
        serde_json::json!({
            "alignment_heads": heads,
            "begin_suppress_tokens": c.suppress_ids_begin,
            "suppress_tokens": c.suppress_ids,
            "lang_to_id": lang_to_id,
            "task_to_id": {"transcribe": sp.transcribe, "translate": sp.translate},
            "no_timestamps_token_id": sp.no_timestamps,
            "decoder_start_token_id": sp.sot,
            "is_multilingual": sp.multilingual,
            "max_length": hp.n_text_ctx,
        }),
    )?;
    std::fs::copy(ct2_dir.join("tokenizer.json"), out.join("tokenizer.json"))
        .map_err(|e| format!("tokenizer.json: {e}"))?;
    Ok(())
}
