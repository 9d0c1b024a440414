//! `config.json` next to model.bin (spec §3.5).

use crate::error::ModelError;
use std::path::Path;

/// The parts of `config.json` the engine uses.
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
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let ids = |key: &str| -> Result<Vec<u32>, ModelError> {
            match v.get(key) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(a) => a
                    .as_array()
                    .ok_or_else(|| bad(format!("'{key}' is not a list")))?
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .map(|n| n as u32)
                            .ok_or_else(|| bad(format!("'{key}' holds a non-integer")))
                    })
                    .collect(),
            }
        };
        cfg.lang_ids = ids("lang_ids")?;
        cfg.suppress_ids = ids("suppress_ids")?;
        cfg.suppress_ids_begin = ids("suppress_ids_begin")?;
        if let Some(heads) = v.get("alignment_heads").and_then(|h| h.as_array()) {
            for pair in heads {
                let p = pair.as_array().filter(|p| p.len() == 2);
                let p =
                    p.ok_or_else(|| bad("'alignment_heads' must hold [layer, head] pairs".into()))?;
                let l = p[0]
                    .as_u64()
                    .ok_or_else(|| bad("bad alignment head".into()))?;
                let h = p[1]
                    .as_u64()
                    .ok_or_else(|| bad("bad alignment head".into()))?;
                cfg.alignment_heads.push((l as usize, h as usize));
            }
        }
        if let Some(eps) = v.get("layer_norm_epsilon").and_then(|e| e.as_f64()) {
            cfg.layer_norm_epsilon = eps as f32;
        }
        Ok(cfg)
    }
}
