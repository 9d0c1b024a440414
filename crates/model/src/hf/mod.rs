//! Hugging Face transformers Whisper checkpoints, read without Python.
//!
//! A transformers directory holds `config.json` (`WhisperConfig`),
//! `model.safetensors` or shards `model-0000N-of-0000M.safetensors` with
//! `model.safetensors.index.json`, `tokenizer.json` and usually
//! `generation_config.json`. [`load`] maps it onto exactly what a
//! CTranslate2 converter would have written (spec §3): the same variable
//! names, fused layouts and scalar attributes, and the same `config.json`
//! values (§3.5), so everything downstream (backends, decoding, `convert`)
//! sees one kind of model.

mod weights;

use crate::config::{show, ModelConfig};
use crate::error::ModelError;
use crate::hparams::{caps, MAX_MELS, N_AUDIO_CTX};
use crate::modelbin::ModelBin;
use crate::text::quote;
use crate::tokenizer::{Tokenizer, LANGUAGES};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The index file of a sharded checkpoint.
pub(crate) const INDEX_FILE: &str = "model.safetensors.index.json";
/// The single-file checkpoint.
pub(crate) const SINGLE_FILE: &str = "model.safetensors";

/// Whether `dir` looks like a transformers checkpoint (it has safetensors weights).
pub(crate) fn is_hf_dir(dir: &Path) -> bool {
    dir.join(SINGLE_FILE).is_file() || dir.join(INDEX_FILE).is_file()
}

/// The hyper-parameters of transformers' `WhisperConfig` the mapping needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HfConfig {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_heads: usize,
    pub decoder_heads: usize,
    pub encoder_ffn: usize,
    pub decoder_ffn: usize,
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_text_ctx: usize,
    pub n_vocab: usize,
    /// `tie_word_embeddings` (true unless the config says otherwise).
    pub tied: bool,
    /// `suppress_tokens` / `begin_suppress_tokens` of older configs.
    pub suppress_tokens: Option<Vec<u32>>,
    pub begin_suppress_tokens: Option<Vec<u32>>,
}

/// Everything read from a transformers directory.
pub(crate) struct HfModel {
    pub weights: ModelBin,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
}

fn read_json(path: &Path) -> Result<Value, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v = crate::json::parse(&text).map_err(|e| ModelError::BadFile {
        path: path.to_path_buf(),
        msg: format!("invalid JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(bad(path, "expected a JSON object".into()));
    }
    Ok(v)
}

fn bad(path: &Path, msg: String) -> ModelError {
    ModelError::BadFile {
        path: path.to_path_buf(),
        msg,
    }
}

/// A list of token ids below `n_vocab` (`null` or absent → `None`).
fn id_list(
    path: &Path,
    v: &Value,
    key: &str,
    n_vocab: usize,
) -> Result<Option<Vec<u32>>, ModelError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .filter(|&n| n < n_vocab as u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        bad(
                            path,
                            format!(
                                "{} holds {}, not a token id below vocab_size {n_vocab}",
                                quote(key),
                                show(x)
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(
            path,
            format!("{} is {}, not a list", quote(key), show(other)),
        )),
    }
}

impl HfConfig {
    /// Parse transformers' `config.json`; another `model_type` is an error.
    pub(crate) fn load(path: &Path) -> Result<Self, ModelError> {
        let v = read_json(path)?;
        let model_type = match v.get("model_type") {
            Some(Value::String(t)) => t.as_str(),
            None => "",
            Some(other) => {
                return Err(bad(
                    path,
                    format!("\"model_type\" is {}, not a string", show(other)),
                ))
            }
        };
        if model_type != "whisper" {
            return Err(ModelError::NotWhisper {
                path: path.to_path_buf(),
                model_type: model_type.to_string(),
            });
        }
        // Every size is range-checked here, before anything is allocated
        // from it (a vocab_size of 1e12 must be an error, not an abort).
        let num = |key: &str, default: Option<usize>, max: usize| -> Result<usize, ModelError> {
            match v.get(key) {
                Some(x) => x
                    .as_u64()
                    .filter(|&n| n > 0 && n <= max as u64)
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        bad(
                            path,
                            format!("{} is {}, not an integer in 1..={max}", quote(key), show(x)),
                        )
                    }),
                None => default.ok_or_else(|| {
                    bad(
                        path,
                        format!("{} is missing (not a WhisperConfig)", quote(key)),
                    )
                }),
            }
        };
        let flag = |key: &str, default: bool| -> Result<bool, ModelError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(bad(
                    path,
                    format!("{} is {}, not true or false", quote(key), show(other)),
                )),
            }
        };
        // Activation and embedding scaling are fixed in CTranslate2's Whisper
        // spec (exact GELU, unscaled embeddings, §3.3); refuse anything else
        // rather than run a different network.
        let act = match v.get("activation_function") {
            None | Some(Value::Null) => "gelu",
            Some(Value::String(a)) => a.as_str(),
            Some(other) => {
                return Err(bad(
                    path,
                    format!("\"activation_function\" is {}, not a string", show(other)),
                ))
            }
        };
        if act != "gelu" {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                msg: format!(
                    "activation_function {} is not supported (Whisper uses \"gelu\")",
                    quote(act)
                ),
            });
        }
        if flag("scale_embedding", false)? {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                msg: "scale_embedding = true is not supported (Whisper does not scale embeddings)"
                    .into(),
            });
        }
        let d_model = num("d_model", None, caps::D_MODEL)?;
        let n_vocab = num("vocab_size", None, caps::VOCAB)?;
        let cfg = HfConfig {
            d_model,
            encoder_layers: num("encoder_layers", None, caps::LAYERS)?,
            decoder_layers: num("decoder_layers", None, caps::LAYERS)?,
            encoder_heads: num("encoder_attention_heads", None, d_model)?,
            decoder_heads: num("decoder_attention_heads", None, d_model)?,
            encoder_ffn: num("encoder_ffn_dim", Some(4 * d_model), caps::FFN)?,
            decoder_ffn: num("decoder_ffn_dim", Some(4 * d_model), caps::FFN)?,
            n_mels: num("num_mel_bins", Some(80), MAX_MELS)?,
            // Whisper's encoder length is fixed (30 s windows); anything
            // else could not run, and would size the computed position table.
            n_audio_ctx: num("max_source_positions", Some(N_AUDIO_CTX), N_AUDIO_CTX)?,
            n_text_ctx: num("max_target_positions", Some(448), caps::TEXT_CTX)?,
            n_vocab,
            tied: flag("tie_word_embeddings", true)?,
            suppress_tokens: id_list(path, &v, "suppress_tokens", n_vocab)?,
            begin_suppress_tokens: id_list(path, &v, "begin_suppress_tokens", n_vocab)?,
        };
        if cfg.n_audio_ctx != N_AUDIO_CTX {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                msg: format!(
                    "max_source_positions is {}; Whisper's 30 s windows need {N_AUDIO_CTX}",
                    cfg.n_audio_ctx
                ),
            });
        }
        for (key, heads) in [
            ("encoder_attention_heads", cfg.encoder_heads),
            ("decoder_attention_heads", cfg.decoder_heads),
        ] {
            if d_model % heads != 0 {
                return Err(bad(
                    path,
                    format!("{key} = {heads} does not divide d_model = {d_model}"),
                ));
            }
        }
        Ok(cfg)
    }
}

/// The full vocabulary (spec §3.6): tokenizer.json's tokens and added tokens
/// by id, then the timestamp tokens `<|%.2f|>` the tokenizer lacks, up to the
/// model's vocabulary size — what CTranslate2's converter writes to
/// `vocabulary.json`.
fn vocabulary(
    tk_path: &Path,
    tk: &tokenizers::Tokenizer,
    n_vocab: usize,
) -> Result<Vec<String>, ModelError> {
    let map = tk.get_vocab(true);
    if map.len() > n_vocab {
        return Err(bad(
            tk_path,
            format!(
                "{} tokens, more than config.json's vocab_size {n_vocab}",
                map.len()
            ),
        ));
    }
    let mut vocab: Vec<Option<String>> = vec![None; map.len()];
    for (token, id) in map {
        let id = id as usize;
        // An id past vocab_size would size the table from the file's claim.
        if id >= n_vocab {
            return Err(bad(
                tk_path,
                format!(
                    "token {} has id {id}, beyond config.json's vocab_size {n_vocab}",
                    quote(&token)
                ),
            ));
        }
        if id >= vocab.len() {
            vocab.resize(id + 1, None);
        }
        vocab[id] = Some(token);
    }
    let mut out = Vec::with_capacity(n_vocab);
    for (id, t) in vocab.into_iter().enumerate() {
        out.push(t.ok_or_else(|| bad(tk_path, format!("no token has id {id}")))?);
    }
    // Timestamps continue after `<|notimestamps|>`: `<|0.00|>` is the first
    // id the tokenizer does not know (§3.6, §5.2).
    let first = out.len();
    let ts_begin = out
        .iter()
        .position(|t| t == "<|notimestamps|>")
        .map(|p| p + 1)
        .unwrap_or(first);
    for id in first..n_vocab {
        out.push(format!("<|{:.2}|>", (id - ts_begin) as f64 * 0.02));
    }
    Ok(out)
}

/// Read `generation_config.json` (when present) into the CTranslate2
/// `config.json` values (§3.5), checking its special ids against the
/// vocabulary.
fn model_config(
    dir: &Path,
    hf: &HfConfig,
    tk_path: &Path,
    tokenizer: &Tokenizer,
) -> Result<ModelConfig, ModelError> {
    let mut cfg = ModelConfig {
        layer_norm_epsilon: 1e-5,
        suppress_ids: hf.suppress_tokens.clone().unwrap_or_default(),
        suppress_ids_begin: hf.begin_suppress_tokens.clone().unwrap_or_default(),
        ..Default::default()
    };
    let gen_path = dir.join("generation_config.json");
    let mut lang_ids = None;
    if gen_path.is_file() {
        let g = read_json(&gen_path)?;
        if let Some(s) = id_list(&gen_path, &g, "suppress_tokens", hf.n_vocab)? {
            cfg.suppress_ids = s;
        }
        if let Some(s) = id_list(&gen_path, &g, "begin_suppress_tokens", hf.n_vocab)? {
            cfg.suppress_ids_begin = s;
        }
        if let Some(heads) = g.get("alignment_heads").filter(|h| !h.is_null()) {
            let pairs = heads
                .as_array()
                .ok_or_else(|| bad(&gen_path, "\"alignment_heads\" is not a list".into()))?;
            for p in pairs {
                let pair = p
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .and_then(|p| {
                        Some((
                            usize::try_from(p[0].as_u64()?).ok()?,
                            usize::try_from(p[1].as_u64()?).ok()?,
                        ))
                    })
                    .ok_or_else(|| {
                        bad(
                            &gen_path,
                            format!(
                                "\"alignment_heads\" holds {}, not a [layer, head] pair",
                                show(p)
                            ),
                        )
                    })?;
                if pair.0 >= hf.decoder_layers || pair.1 >= hf.decoder_heads {
                    return Err(bad(
                        &gen_path,
                        format!(
                            "alignment head {pair:?} is outside the decoder's {} layers × {} heads",
                            hf.decoder_layers, hf.decoder_heads
                        ),
                    ));
                }
                cfg.alignment_heads.push(pair);
            }
        }
        if let Some(map) = g.get("lang_to_id").filter(|m| !m.is_null()) {
            let map = map.as_object().ok_or_else(|| {
                bad(
                    &gen_path,
                    format!("\"lang_to_id\" is {}, not an object", show(map)),
                )
            })?;
            let mut ids = map
                .iter()
                .map(|(tok, id)| {
                    id.as_u64()
                        .filter(|&n| n < hf.n_vocab as u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            bad(
                                &gen_path,
                                format!(
                                    "lang_to_id[{}] is {}, not a token id below vocab_size {}",
                                    quote(tok),
                                    show(id),
                                    hf.n_vocab
                                ),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            lang_ids = Some(ids);
        }
        // The special ids are looked up by string in the vocabulary (§5.2);
        // a generation config that disagrees means the tokenizer does not
        // belong to these weights.
        let sp = &tokenizer.special;
        let mut checks = vec![
            (
                "no_timestamps_token_id",
                g.get("no_timestamps_token_id"),
                sp.no_timestamps,
            ),
            (
                "decoder_start_token_id",
                g.get("decoder_start_token_id"),
                sp.sot,
            ),
        ];
        if let Some(tasks) = g.get("task_to_id") {
            checks.push((
                "task_to_id.transcribe",
                tasks.get("transcribe"),
                sp.transcribe,
            ));
            checks.push(("task_to_id.translate", tasks.get("translate"), sp.translate));
        }
        for (key, found, want) in checks {
            let found = found.filter(|f| !f.is_null());
            if let Some(n) = found {
                if n.as_u64() != Some(u64::from(want)) {
                    let n = show(n);
                    return Err(bad(
                        &gen_path,
                        format!("{key} is {n}, but {} gives id {want}: the tokenizer does not match the generation config", crate::text::path(tk_path)),
                    ));
                }
            }
        }
    }
    cfg.lang_ids = match lang_ids {
        Some(ids) => ids,
        // No generation config: the language tokens of the vocabulary (§3.5).
        None => tokenizer
            .vocabulary()
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.strip_prefix("<|")
                    .and_then(|t| t.strip_suffix("|>"))
                    .is_some_and(|code| LANGUAGES.contains(&code))
            })
            .map(|(id, _)| id as u32)
            .collect(),
    };
    Ok(cfg)
}

/// Load a transformers Whisper directory.
pub(crate) fn load(dir: &Path) -> Result<HfModel, ModelError> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        return Err(ModelError::MissingFile {
            path: cfg_path,
            hint: "a transformers Whisper directory holds config.json next to its safetensors",
        });
    }
    let hf = HfConfig::load(&cfg_path)?;
    let tk_path = dir.join("tokenizer.json");
    if !tk_path.is_file() {
        return Err(ModelError::MissingFile {
            path: tk_path,
            hint: "save the checkpoint's tokenizer too (processor.save_pretrained(dir))",
        });
    }
    let inner = crate::tokenizer::read_tokenizer_json(&tk_path)?;
    let vocab = vocabulary(&tk_path, &inner, hf.n_vocab)?;
    let weights = weights::load(dir, &hf)?;
    let tokenizer = Tokenizer::from_parts(inner, vocab, &tk_path, hf.n_vocab)?;
    let config = model_config(dir, &hf, &tk_path, &tokenizer)?;
    Ok(HfModel {
        weights,
        config,
        tokenizer,
    })
}

/// The weight files of a checkpoint: the single file, or the shards the
/// index names (each once, in index order).
pub(crate) fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join(SINGLE_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(INDEX_FILE);
    let v = read_json(&index)?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(&index, "no 'weight_map' object".into()))?;
    // A set: an index may list many thousands of tensors.
    let mut files = std::collections::BTreeSet::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && *f != ".." && *f != ".")
            .ok_or_else(|| {
                bad(
                    &index,
                    format!("weight_map[{}] is not a file name", quote(name)),
                )
            })?;
        files.insert(dir.join(file));
    }
    Ok(files.into_iter().collect())
}
