//! Hyper-parameters inferred from tensor shapes (spec §3.4), with every
//! variable the forward pass needs checked up front so a bad file fails at
//! load with the variable's name, not in the middle of a transcription.

use crate::error::ModelError;
use crate::modelbin::ModelBin;

/// Encoder positions of every Whisper model: a 30 s window is 3000 mel
/// frames, halved by the second convolution's stride (spec §4.3–§4.4).
pub const N_AUDIO_CTX: usize = 1500;
/// Fewest decoder positions a runnable model may have: faster-whisper's
/// generation limit `max_length` (spec §6.2).
pub const MIN_TEXT_CTX: usize = 448;
/// Most mel bins accepted (Whisper uses 80, large-v3 128).
pub const MAX_MELS: usize = 512;

/// Upper bounds on the sizes a transformers `config.json` may declare,
/// checked before anything is allocated from them. Each is far above every
/// published Whisper (large-v3: d_model 1280, FFN 5120, 32 layers, 20 heads,
/// 51866 tokens) and small enough that no product of two of them overflows
/// or asks for more than a few GB.
pub(crate) mod caps {
    /// Model width.
    pub const D_MODEL: usize = 1 << 14;
    /// FFN width.
    pub const FFN: usize = 1 << 16;
    /// Layers per stack.
    pub const LAYERS: usize = 1 << 10;
    /// Decoder positions.
    pub const TEXT_CTX: usize = 1 << 16;
    /// Vocabulary size.
    pub const VOCAB: usize = 1 << 20;
}

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

    /// Whether a model of these sizes can run at all, beyond its tensors
    /// being consistent ([`HParams::infer`] checks those): 1500 encoder
    /// positions, at least 448 decoder positions, 1–512 mel bins, a non-zero
    /// width. `WhisperModel::load` calls this, so a model that could only
    /// fail in the middle of a transcription is refused at load, with an
    /// error naming `path`.
    pub fn check_runnable(&self, path: &std::path::Path) -> Result<(), ModelError> {
        let unsupported = |msg: String| ModelError::Unsupported {
            path: path.to_path_buf(),
            msg,
        };
        if self.n_audio_ctx != N_AUDIO_CTX {
            return Err(unsupported(format!(
                "the encoder has {} positions; Whisper's 30 s windows need {N_AUDIO_CTX}",
                self.n_audio_ctx
            )));
        }
        if self.n_text_ctx < MIN_TEXT_CTX {
            return Err(unsupported(format!(
                "the decoder has {} positions; decoding needs at least {MIN_TEXT_CTX}",
                self.n_text_ctx
            )));
        }
        if self.n_mels == 0 || self.n_mels > MAX_MELS {
            return Err(unsupported(format!(
                "{} mel bins (Whisper models have 80 or 128; at most {MAX_MELS} are accepted)",
                self.n_mels
            )));
        }
        if self.d_model == 0 || self.d_ffn == 0 {
            return Err(unsupported(format!(
                "zero-width layers (d_model {}, FFN {})",
                self.d_model, self.d_ffn
            )));
        }
        Ok(())
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
