//! The model's weights as the CPU forward pass reads them: matrices stay in
//! their stored dtype (float16 stays float16 in RAM); biases and LayerNorm
//! parameters, which are tiny, are widened to f32 once at load.

use super::matmul::linear;
use super::ops::{add_assign, gelu, layer_norm};
use std::sync::Arc;
use vkw_model::{ModelBin, ModelError, Tensor, TensorData, WeightView};

/// A Linear (or flattened Conv1D) layer: `y = x · Wᵀ + b`.
pub struct Linear {
    w: Arc<Tensor>,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Bias, widened to f32.
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// Load `<prefix>/weight` and (if present) `<prefix>/bias`.
    pub fn load(m: &ModelBin, prefix: &str) -> Result<Self, ModelError> {
        let name = format!("{prefix}/weight");
        let mut w = m.get_arc(&name)?;
        if w.view().is_none() {
            // int16 / int32 weights have no kernel: dequantise once (spec §2.6).
            w = Arc::new(Tensor {
                shape: w.shape.clone(),
                data: TensorData::F32(w.to_f32()),
                scale: None,
            });
        }
        if let TensorData::I8(_) = w.data {
            let (rows, _) = w.rows_cols();
            if w.scale.as_ref().map(|s| s.len()) != Some(rows) {
                return Err(ModelError::MissingVariable {
                    path: m.path.clone(),
                    name: format!("{name}_scale"),
                });
            }
        }
        let (rows, cols) = w.rows_cols();
        let bias = m.try_get(&format!("{prefix}/bias")).map(|b| b.to_f32());
        Ok(Self {
            w,
            rows,
            cols,
            bias,
        })
    }

    /// `out[rows, self.rows] = x[rows, self.cols] · Wᵀ + b`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        linear(
            x,
            rows,
            self.cols,
            self.cols,
            self.view(),
            self.rows,
            self.bias.as_deref(),
            out,
        );
    }

    /// The weight in its stored type.
    pub fn view(&self) -> WeightView<'_> {
        // `load` guarantees a view exists.
        self.w.view().unwrap_or(WeightView::F32(&[]))
    }
}

/// LayerNorm parameters.
pub struct Norm {
    /// γ.
    pub gamma: Vec<f32>,
    /// β.
    pub beta: Vec<f32>,
}

impl Norm {
    /// LayerNorm of rows of width `gamma.len()` (spec §4.4).
    pub fn forward(&self, x: &[f32], eps: f32, out: &mut [f32]) {
        layer_norm(x, self.gamma.len(), &self.gamma, &self.beta, eps, out);
    }

    /// Load `<prefix>/gamma` and `<prefix>/beta`.
    pub fn load(m: &ModelBin, prefix: &str) -> Result<Self, ModelError> {
        Ok(Self {
            gamma: m.get(&format!("{prefix}/gamma"))?.to_f32(),
            beta: m.get(&format!("{prefix}/beta"))?.to_f32(),
        })
    }
}

/// One encoder layer.
pub struct EncoderLayer {
    /// Pre-attention LN.
    pub attn_norm: Norm,
    /// Fused QKV projection `[3d, d]`.
    pub qkv: Linear,
    /// Attention output projection.
    pub out: Linear,
    /// Pre-FFN LN.
    pub ffn_norm: Norm,
    /// FFN up.
    pub fc1: Linear,
    /// FFN down.
    pub fc2: Linear,
}

/// One decoder layer.
pub struct DecoderLayer {
    /// Pre-self-attention LN.
    pub self_norm: Norm,
    /// Fused QKV `[3d, d]`.
    pub self_qkv: Linear,
    /// Self-attention output projection.
    pub self_out: Linear,
    /// Pre-cross-attention LN.
    pub cross_norm: Norm,
    /// Cross-attention query projection.
    pub cross_q: Linear,
    /// Cross-attention fused K/V projection `[2d, d]` (applied to the encoder output).
    pub cross_kv: Linear,
    /// Cross-attention output projection.
    pub cross_out: Linear,
    /// Pre-FFN LN.
    pub ffn_norm: Norm,
    /// FFN up.
    pub fc1: Linear,
    /// FFN down.
    pub fc2: Linear,
}

/// All weights of the model.
pub struct Weights {
    /// conv1 as `[d, n_mels·3]`.
    pub conv1: Linear,
    /// conv2 as `[d, d·3]`.
    pub conv2: Linear,
    /// Encoder sinusoid table `[n_audio_ctx, d]`.
    pub enc_pos: Vec<f32>,
    /// Encoder layers.
    pub enc_layers: Vec<EncoderLayer>,
    /// Final encoder LN.
    pub enc_norm: Norm,
    /// Token embeddings `[V, d]` (stored dtype).
    pub embed: Linear,
    /// Learned decoder positions `[n_text_ctx, d]`.
    pub dec_pos: Vec<f32>,
    /// Decoder layers.
    pub dec_layers: Vec<DecoderLayer>,
    /// Final decoder LN.
    pub dec_norm: Norm,
    /// Output projection `[V, d]` (normally an alias of the embeddings).
    pub proj: Linear,
}

impl Weights {
    /// Gather every weight the forward pass uses.
    pub fn load(m: &ModelBin, enc_layers: usize, dec_layers: usize) -> Result<Self, ModelError> {
        let enc = (0..enc_layers)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    attn_norm: Norm::load(m, &format!("{p}/self_attention/layer_norm"))?,
                    qkv: Linear::load(m, &format!("{p}/self_attention/linear_0"))?,
                    out: Linear::load(m, &format!("{p}/self_attention/linear_1"))?,
                    ffn_norm: Norm::load(m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: Linear::load(m, &format!("{p}/ffn/linear_0"))?,
                    fc2: Linear::load(m, &format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let dec = (0..dec_layers)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_norm: Norm::load(m, &format!("{p}/self_attention/layer_norm"))?,
                    self_qkv: Linear::load(m, &format!("{p}/self_attention/linear_0"))?,
                    self_out: Linear::load(m, &format!("{p}/self_attention/linear_1"))?,
                    cross_norm: Norm::load(m, &format!("{p}/attention/layer_norm"))?,
                    cross_q: Linear::load(m, &format!("{p}/attention/linear_0"))?,
                    cross_kv: Linear::load(m, &format!("{p}/attention/linear_1"))?,
                    cross_out: Linear::load(m, &format!("{p}/attention/linear_2"))?,
                    ffn_norm: Norm::load(m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: Linear::load(m, &format!("{p}/ffn/linear_0"))?,
                    fc2: Linear::load(m, &format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let proj_name = if m.contains("decoder/projection/weight") {
            "decoder/projection"
        } else {
            "decoder/embeddings"
        };
        Ok(Self {
            conv1: Linear::load(m, "encoder/conv1")?,
            conv2: Linear::load(m, "encoder/conv2")?,
            enc_pos: m.get("encoder/position_encodings/encodings")?.to_f32(),
            enc_layers: enc,
            enc_norm: Norm::load(m, "encoder/layer_norm")?,
            embed: Linear::load(m, "decoder/embeddings")?,
            dec_pos: m.get("decoder/position_encodings/encodings")?.to_f32(),
            dec_layers: dec,
            dec_norm: Norm::load(m, "decoder/layer_norm")?,
            proj: Linear::load(m, proj_name)?,
        })
    }
}

/// Scratch buffers of one forward pass over `rows` positions.
pub struct Scratch {
    /// LayerNorm output `[rows, d]`.
    pub h: Vec<f32>,
    /// Projection output `[rows, d]`.
    pub proj: Vec<f32>,
    /// FFN hidden `[rows, d_ffn]`.
    pub ff: Vec<f32>,
}

impl Scratch {
    /// Buffers for `rows` positions of width `d` and FFN width `d_ffn`.
    pub fn new(rows: usize, d: usize, d_ffn: usize) -> Self {
        Self {
            h: vec![0f32; rows * d],
            proj: vec![0f32; rows * d],
            ff: vec![0f32; rows * d_ffn],
        }
    }
}

/// `x += out(ctx)`: an attention block's output projection and residual.
pub fn project_residual(x: &mut [f32], ctx: &[f32], rows: usize, out: &Linear, s: &mut Scratch) {
    out.forward(ctx, rows, &mut s.proj);
    add_assign(x, &s.proj);
}

/// `x += FC2(GELU(FC1(LN(x))))`: the pre-norm feed-forward block of both
/// stacks (spec §4.4, §4.6).
pub fn ffn_residual(
    x: &mut [f32],
    rows: usize,
    norm: &Norm,
    fc1: &Linear,
    fc2: &Linear,
    eps: f32,
    s: &mut Scratch,
) {
    norm.forward(x, eps, &mut s.h);
    fc1.forward(&s.h, rows, &mut s.ff);
    gelu(&mut s.ff);
    fc2.forward(&s.ff, rows, &mut s.proj);
    add_assign(x, &s.proj);
}
