//! The model's weights as the CPU forward pass reads them: matrices stay in
//! their stored dtype (float16 stays float16 in RAM); biases and LayerNorm
//! parameters, which are tiny, are widened to f32 once at load.

use super::int8::{qlinear, Epilogue, QMatrix};
use super::matmul::{linear, widen_row};
use super::ops::{add_assign, gelu, layer_norm};
use std::sync::Arc;
use vkw_model::{ModelBin, ModelError, Tensor, TensorData, WeightView};

/// How the matrices of the Linear layers are held (chosen from the compute
/// type, see [`super::CpuBackend::with_compute_type`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The stored dtype (float32 compute; float16 stays float16 in RAM).
    Stored,
    /// float16 (float32 models are narrowed at load).
    F16,
    /// bfloat16.
    BF16,
    /// int8, quantised per row at load (spec §2.6) and packed for the int8
    /// kernels; activations are quantised per row at run time.
    Int8,
}

enum Store {
    /// A tensor of the model (f32/f16/bf16/int8 with scales), shared with it.
    Float(Arc<Tensor>),
    /// Packed int8 for the int8 kernels.
    Int8(QMatrix),
}

/// A Linear (or flattened Conv1D) layer: `y = x · Wᵀ + b`.
#[derive(Clone)]
pub struct Linear {
    w: Arc<Store>,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Bias, widened to f32.
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// Load `<prefix>/weight` and (if present) `<prefix>/bias`, held as
    /// `storage` says.
    pub fn load(m: &ModelBin, prefix: &str, storage: Storage) -> Result<Self, ModelError> {
        let name = format!("{prefix}/weight");
        let mut w = m.get_arc(&name)?;
        let narrow = |data: TensorData, w: &Tensor| {
            Arc::new(Tensor {
                shape: w.shape.clone(),
                data,
                scale: None,
            })
        };
        if w.view().is_none() {
            // int16 / int32 weights have no kernel: dequantise once (spec §2.6).
            w = narrow(TensorData::F32(w.to_f32()), &w);
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
        let store = match (storage, &w.data) {
            (Storage::F16, d) if !matches!(d, TensorData::F16(_)) => {
                let v = w.to_f32().iter().map(|&x| half::f16::from_f32(x)).collect();
                Store::Float(narrow(TensorData::F16(v), &w))
            }
            (Storage::BF16, d) if !matches!(d, TensorData::BF16(_)) => {
                let v = w
                    .to_f32()
                    .iter()
                    .map(|&x| half::bf16::from_f32(x))
                    .collect();
                Store::Float(narrow(TensorData::BF16(v), &w))
            }
            (Storage::Int8, _) => {
                // `load` checked above that a view exists.
                let view = w.view().unwrap_or(WeightView::F32(&[]));
                Store::Int8(QMatrix::from_view(view, rows, cols))
            }
            _ => Store::Float(w),
        };
        let bias = m.try_get(&format!("{prefix}/bias")).map(|b| b.to_f32());
        Ok(Self {
            w: Arc::new(store),
            rows,
            cols,
            bias,
        })
    }

    /// `out[rows, self.rows] = x[rows, self.cols] · Wᵀ + b`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.forward_epi(x, rows, Epilogue::None, out);
    }

    /// `out = GELU(x · Wᵀ + b)` (FFN up-projection; fused into the int8
    /// kernel's store).
    pub fn forward_gelu(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.forward_epi(x, rows, Epilogue::Gelu, out);
    }

    fn forward_epi(&self, x: &[f32], rows: usize, epi: Epilogue, out: &mut [f32]) {
        match &*self.w {
            Store::Int8(q) => qlinear(
                x,
                rows,
                self.cols,
                self.cols,
                q,
                self.bias.as_deref(),
                epi,
                out,
            ),
            Store::Float(t) => {
                // `load` guarantees a view exists.
                let view = t.view().unwrap_or(WeightView::F32(&[]));
                let bias = self.bias.as_deref();
                linear(x, rows, self.cols, self.cols, view, self.rows, bias, out);
                if epi == Epilogue::Gelu {
                    gelu(&mut out[..rows * self.rows]);
                }
            }
        }
    }

    /// Whether the weight is stored int8 (its kernel has its own many-row path).
    pub fn is_int8(&self) -> bool {
        matches!(&*self.w, Store::Int8(_))
    }

    /// Row `r` of the weight as f32 (an embedding lookup).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        match &*self.w {
            Store::Int8(q) => q.row_f32(r, out),
            Store::Float(t) => {
                let view = t.view().unwrap_or(WeightView::F32(&[]));
                widen_row(view, r, self.cols, out);
            }
        }
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
    ///
    /// With `Storage::Int8` every Linear layer and the tied embedding /
    /// output projection become int8 (they are quantisable, spec §2.6); the
    /// two convolutions keep their float weights, as CTranslate2's oneDNN
    /// CPU build dequantises int8 Conv1D weights to float (§2.6).
    pub fn load(
        m: &ModelBin,
        enc_layers: usize,
        dec_layers: usize,
        storage: Storage,
    ) -> Result<Self, ModelError> {
        let lin = |name: &str| Linear::load(m, name, storage);
        let conv_storage = if storage == Storage::Int8 {
            Storage::Stored
        } else {
            storage
        };
        let enc = (0..enc_layers)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncoderLayer {
                    attn_norm: Norm::load(m, &format!("{p}/self_attention/layer_norm"))?,
                    qkv: lin(&format!("{p}/self_attention/linear_0"))?,
                    out: lin(&format!("{p}/self_attention/linear_1"))?,
                    ffn_norm: Norm::load(m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: lin(&format!("{p}/ffn/linear_0"))?,
                    fc2: lin(&format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let dec = (0..dec_layers)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecoderLayer {
                    self_norm: Norm::load(m, &format!("{p}/self_attention/layer_norm"))?,
                    self_qkv: lin(&format!("{p}/self_attention/linear_0"))?,
                    self_out: lin(&format!("{p}/self_attention/linear_1"))?,
                    cross_norm: Norm::load(m, &format!("{p}/attention/layer_norm"))?,
                    cross_q: lin(&format!("{p}/attention/linear_0"))?,
                    cross_kv: lin(&format!("{p}/attention/linear_1"))?,
                    cross_out: lin(&format!("{p}/attention/linear_2"))?,
                    ffn_norm: Norm::load(m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: lin(&format!("{p}/ffn/linear_0"))?,
                    fc2: lin(&format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let proj_name = if m.contains("decoder/projection/weight") {
            "decoder/projection"
        } else {
            "decoder/embeddings"
        };
        // The projection is normally an alias of the embeddings (tied): one
        // copy serves both.
        let embed = lin("decoder/embeddings")?;
        Ok(Self {
            conv1: Linear::load(m, "encoder/conv1", conv_storage)?,
            conv2: Linear::load(m, "encoder/conv2", conv_storage)?,
            enc_pos: m.get("encoder/position_encodings/encodings")?.to_f32(),
            enc_layers: enc,
            enc_norm: Norm::load(m, "encoder/layer_norm")?,
            embed: embed.clone(),
            dec_pos: m.get("decoder/position_encodings/encodings")?.to_f32(),
            dec_layers: dec,
            dec_norm: Norm::load(m, "decoder/layer_norm")?,
            proj: if proj_name == "decoder/embeddings" {
                embed
            } else {
                lin(proj_name)?
            },
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
    fc1.forward_gelu(&s.h, rows, &mut s.ff);
    fc2.forward(&s.ff, rows, &mut s.proj);
    add_assign(x, &s.proj);
}
