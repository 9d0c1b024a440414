//! Hyper-parameters inferred from tensor shapes (spec §3.4), with every
//! variable the forward pass needs checked up front so a bad file fails at
//! load with the variable's name, not in the middle of a transcription.

use crate::error::ModelError;
use crate::modelbin::ModelBin;

/// Whisper hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HParams {
    /// Mel bins (80, or 128 for large-v3).
    pub n_mels: usize,
    /// Model width.
    pub d_model: usize,
    /// FFN width.
    pub d_ffn: usize,
    /// Encoder positions (1500).
    pub n_audio_ctx: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Encoder attention heads.
    pub encoder_heads: usize,
    /// Decoder attention heads.
    pub decoder_heads: usize,
}

fn count_layers(m: &ModelBin, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            m.contains(&format!(
                "{prefix}/layer_{i}/self_attention/linear_0/weight"
            ))
        })
        .count()
}

impl HParams {
    /// Infer from a parsed model.bin and check every shape the forward pass uses.
    pub fn infer(m: &ModelBin) -> Result<Self, ModelError> {
        let conv1 = m.get("encoder/conv1/weight")?;
        if conv1.shape.len() != 3 || conv1.shape[2] != 3 {
            return Err(ModelError::ShapeMismatch {
                path: m.path.clone(),
                name: "encoder/conv1/weight".into(),
                found: conv1.shape.clone(),
                expected: "[d_model, n_mels, 3]".into(),
            });
        }
        let d = conv1.shape[0];
        let n_mels = conv1.shape[1];
        let heads = |name: &str| -> Result<usize, ModelError> {
            let t = m.get(name)?;
            match t.scalar_i64() {
                Some(h) if h > 0 && d % h as usize == 0 => Ok(h as usize),
                _ => Err(ModelError::ShapeMismatch {
                    path: m.path.clone(),
                    name: name.into(),
                    found: t.shape.clone(),
                    expected: format!("a scalar dividing d_model {d}"),
                }),
            }
        };
        let encoder_heads = heads("encoder/num_heads")?;
        let decoder_heads = heads("decoder/num_heads")?;
        let first_dim = |name: &str| -> Result<usize, ModelError> {
            let t = m.get(name)?;
            t.shape
                .first()
                .copied()
                .ok_or_else(|| ModelError::ShapeMismatch {
                    path: m.path.clone(),
                    name: name.into(),
                    found: t.shape.clone(),
                    expected: "a matrix".into(),
                })
        };
        let n_audio_ctx = first_dim("encoder/position_encodings/encodings")?;
        let n_text_ctx = first_dim("decoder/position_encodings/encodings")?;
        let n_vocab = first_dim("decoder/embeddings/weight")?;
        let d_ffn = first_dim("encoder/layer_0/ffn/linear_0/weight")?;
        let hp = HParams {
            n_mels,
            d_model: d,
            d_ffn,
            n_audio_ctx,
            n_text_ctx,
            n_vocab,
            encoder_layers: count_layers(m, "encoder"),
            decoder_layers: count_layers(m, "decoder"),
            encoder_heads,
            decoder_heads,
        };
        hp.check(m)?;
        Ok(hp)
    }

    fn check(&self, m: &ModelBin) -> Result<(), ModelError> {
        let (d, f) = (self.d_model, self.d_ffn);
        let mut want: Vec<(String, Vec<usize>)> = vec![
            ("encoder/conv1/bias".into(), vec![d]),
            ("encoder/conv2/weight".into(), vec![d, d, 3]),
            ("encoder/conv2/bias".into(), vec![d]),
            (
                "encoder/position_encodings/encodings".into(),
                vec![self.n_audio_ctx, d],
            ),
            ("encoder/layer_norm/gamma".into(), vec![d]),
            ("encoder/layer_norm/beta".into(), vec![d]),
            ("decoder/embeddings/weight".into(), vec![self.n_vocab, d]),
            (
                "decoder/position_encodings/encodings".into(),
                vec![self.n_text_ctx, d],
            ),
            ("decoder/layer_norm/gamma".into(), vec![d]),
            ("decoder/layer_norm/beta".into(), vec![d]),
        ];
        let ln = |p: &str, want: &mut Vec<(String, Vec<usize>)>| {
            want.push((format!("{p}/layer_norm/gamma"), vec![d]));
            want.push((format!("{p}/layer_norm/beta"), vec![d]));
        };
        let lin = |p: &str, o: usize, i: usize, want: &mut Vec<(String, Vec<usize>)>| {
            want.push((format!("{p}/weight"), vec![o, i]));
            want.push((format!("{p}/bias"), vec![o]));
        };
        for (prefix, layers, cross) in [
            ("encoder", self.encoder_layers, false),
            ("decoder", self.decoder_layers, true),
        ] {
            if layers == 0 {
                return Err(ModelError::MissingVariable {
                    path: m.path.clone(),
                    name: format!("{prefix}/layer_0/self_attention/linear_0/weight"),
                });
            }
            for i in 0..layers {
                let l = format!("{prefix}/layer_{i}");
                ln(&format!("{l}/self_attention"), &mut want);
                lin(&format!("{l}/self_attention/linear_0"), 3 * d, d, &mut want);
                lin(&format!("{l}/self_attention/linear_1"), d, d, &mut want);
                if cross {
                    ln(&format!("{l}/attention"), &mut want);
                    lin(&format!("{l}/attention/linear_0"), d, d, &mut want);
                    lin(&format!("{l}/attention/linear_1"), 2 * d, d, &mut want);
                    lin(&format!("{l}/attention/linear_2"), d, d, &mut want);
                }
                ln(&format!("{l}/ffn"), &mut want);
                lin(&format!("{l}/ffn/linear_0"), f, d, &mut want);
                lin(&format!("{l}/ffn/linear_1"), d, f, &mut want);
            }
        }
        for (name, shape) in &want {
            m.get_shaped(name, shape)?;
        }
        // The output projection may be an alias of the embeddings or its own matrix.
        if m.contains("decoder/projection/weight") {
            m.get_shaped("decoder/projection/weight", &[self.n_vocab, d])?;
        }
        Ok(())
    }
}
