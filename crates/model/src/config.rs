//! `config.json` next to model.bin (spec §3.5).

use crate::error::ModelError;
use crate::text::quote;
use serde_json::Value;
use std::path::Path;

/// The parts of `config.json` the engine uses.
///
/// After [`crate::WhisperModel::load`], every id here is below the
/// vocabulary size and every alignment head is a (layer, head) of the
/// decoder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelConfig {
    /// `[decoder layer, head]` pairs used for word timestamps.
    pub alignment_heads: Vec<(usize, usize)>,
    /// Language token ids (multilingual models).
    pub lang_ids: Vec<u32>,
    /// Default suppress list (`suppress_ids`).
    pub suppress_ids: Vec<u32>,
    /// Ids suppressed at the first sampled step (`suppress_ids_begin`).
    pub suppress_ids_begin: Vec<u32>,
    /// LayerNorm epsilon (1e-5 unless the config says otherwise).
    pub layer_norm_epsilon: f32,
}

impl ModelConfig {
    /// Read `DIR/config.json`; a missing file gives the defaults.
    ///
    /// Each key the engine reads must have its type (a list of ids, a list of
    /// `[layer, head]` pairs, a positive number); a key of the wrong type, a
    /// key named twice or an id beyond 32 bits is an error naming the file,
    /// never a silently ignored setting.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        let mut cfg = ModelConfig {
            layer_norm_epsilon: 1e-5,
            ..Default::default()
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cfg),
            Err(source) => return Err(ModelError::Io { path, source }),
        };
        let bad = |msg: String| ModelError::BadFile {
            path: path.clone(),
            msg,
        };
        let v = crate::json::parse(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if !v.is_object() {
            return Err(bad("expected a JSON object".into()));
        }
        let ids = |key: &str| -> Result<Vec<u32>, ModelError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(a) => a
                    .as_array()
                    .ok_or_else(|| bad(format!("{} is not a list", quote(key))))?
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| {
                                bad(format!("{} holds a non-id {}", quote(key), show(x)))
                            })
                    })
                    .collect(),
            }
        };
        cfg.lang_ids = ids("lang_ids")?;
        cfg.suppress_ids = ids("suppress_ids")?;
        cfg.suppress_ids_begin = ids("suppress_ids_begin")?;
        match v.get("alignment_heads") {
            None | Some(Value::Null) => {}
            Some(Value::Array(heads)) => {
                for pair in heads {
                    let p = pair
                        .as_array()
                        .filter(|p| p.len() == 2)
                        .and_then(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                        .and_then(|(l, h)| {
                            Some((usize::try_from(l).ok()?, usize::try_from(h).ok()?))
                        })
                        .ok_or_else(|| {
                            bad(format!(
                                "\"alignment_heads\" holds {}, not a [layer, head] pair",
                                show(pair)
                            ))
                        })?;
                    cfg.alignment_heads.push(p);
                }
            }
            Some(other) => {
                return Err(bad(format!(
                    "\"alignment_heads\" is {}, not a list of [layer, head] pairs",
                    show(other)
                )))
            }
        }
        match v.get("layer_norm_epsilon") {
            None | Some(Value::Null) => {}
            Some(e) => {
                // A LayerNorm epsilon is a small positive number; zero or a
                // huge value would turn every normalised row into NaN or noise.
                let eps = e.as_f64().filter(|&x| x > 0.0 && x <= 1.0).ok_or_else(|| {
                    bad(format!(
                        "\"layer_norm_epsilon\" is {}, not a number in (0, 1]",
                        show(e)
                    ))
                })?;
                cfg.layer_norm_epsilon = eps as f32;
            }
        }
        Ok(cfg)
    }
}

/// A JSON value for an error message: compact, escaped, truncated.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
