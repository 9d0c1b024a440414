//! The model's weights on the GPU, uploaded once per model load. Matrices
//! keep float16 where the adapter reads it (`SHADER_F16`), else they are
//! widened to float32; int8 (and int16) weights are dequantised to float32
//! at upload (q / scale, spec §2.6). Biases and LayerNorm parameters are
//! float32.

use super::gpu::{Buf, Gpu};
use super::ops::WType;
use crate::BackendError;
use vkw_model::{ModelBin, Tensor, TensorData};

/// A Linear / flattened Conv1D weight `[rows, cols]` with its bias.
pub struct GLinear {
    /// The weight.
    pub w: Buf,
    /// Its element type.
    pub wt: WType,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Bias (float32).
    pub bias: Option<Buf>,
}

/// LayerNorm γ then β in one buffer (`2·d` values).
pub struct GNorm(pub Buf);

/// Upload a matrix in the type the adapter reads best.
fn upload_matrix(gpu: &Gpu, t: &Tensor, name: &str) -> Result<(Buf, WType), BackendError> {
    match &t.data {
        TensorData::F16(v) if gpu.f16 => {
            Ok((gpu.upload(bytemuck::cast_slice(v), name)?, WType::F16))
        }
        TensorData::F32(v) => Ok((gpu.upload_f32(v, name)?, WType::F32)),
        _ => Ok((gpu.upload_f32(&t.to_f32(), name)?, WType::F32)),
    }
}

impl GLinear {
    /// Upload `<prefix>/weight` and its optional bias.
    pub fn load(gpu: &Gpu, m: &ModelBin, prefix: &str) -> Result<Self, BackendError> {
        let name = format!("{prefix}/weight");
        let t = m.get(&name)?;
        if let TensorData::I8(_) = t.data {
            let (rows, _) = t.rows_cols();
            if t.scale.as_ref().map(|s| s.len()) != Some(rows) {
                return Err(vkw_model::ModelError::MissingVariable {
                    path: m.path.clone(),
                    name: format!("{name}_scale"),
                }
                .into());
            }
        }
        let (rows, cols) = t.rows_cols();
        let (w, wt) = upload_matrix(gpu, t, &name)?;
        let bias = match m.try_get(&format!("{prefix}/bias")) {
            Some(b) => Some(gpu.upload_f32(&b.to_f32(), &format!("{prefix}/bias"))?),
            None => None,
        };
        Ok(Self {
            w,
            wt,
            rows,
            cols,
            bias,
        })
    }
}

impl GNorm {
    /// Upload `<prefix>/gamma` and `<prefix>/beta`.
    pub fn load(gpu: &Gpu, m: &ModelBin, prefix: &str) -> Result<Self, BackendError> {
        let mut v = m.get(&format!("{prefix}/gamma"))?.to_f32();
        v.extend(m.get(&format!("{prefix}/beta"))?.to_f32());
        Ok(Self(gpu.upload_f32(&v, prefix)?))
    }
}

/// One encoder layer.
pub struct GEncLayer {
    /// Pre-attention LN.
    pub attn_norm: GNorm,
    /// Fused QKV `[3d, d]`.
    pub qkv: GLinear,
    /// Attention output.
    pub out: GLinear,
    /// Pre-FFN LN.
    pub ffn_norm: GNorm,
    /// FFN up.
    pub fc1: GLinear,
    /// FFN down.
    pub fc2: GLinear,
}

/// One decoder layer.
pub struct GDecLayer {
    /// Pre-self-attention LN.
    pub self_norm: GNorm,
    /// Fused QKV `[3d, d]`.
    pub self_qkv: GLinear,
    /// Self-attention output.
    pub self_out: GLinear,
    /// Pre-cross-attention LN.
    pub cross_norm: GNorm,
    /// Cross-attention query.
    pub cross_q: GLinear,
    /// Cross-attention fused K/V `[2d, d]`.
    pub cross_kv: GLinear,
    /// Cross-attention output.
    pub cross_out: GLinear,
    /// Pre-FFN LN.
    pub ffn_norm: GNorm,
    /// FFN up.
    pub fc1: GLinear,
    /// FFN down.
    pub fc2: GLinear,
}

/// Every weight of the model on the GPU.
pub struct GWeights {
    /// conv1 `[d, n_mels·3]`.
    pub conv1: GLinear,
    /// conv2 `[d, d·3]`.
    pub conv2: GLinear,
    /// Encoder positions `[n_audio_ctx, d]`.
    pub enc_pos: Buf,
    /// Encoder layers.
    pub enc_layers: Vec<GEncLayer>,
    /// Final encoder LN.
    pub enc_norm: GNorm,
    /// Token embeddings `[V, d]`.
    pub embed: GLinear,
    /// Decoder positions `[n_text_ctx, d]`.
    pub dec_pos: Buf,
    /// Decoder layers.
    pub dec_layers: Vec<GDecLayer>,
    /// Final decoder LN.
    pub dec_norm: GNorm,
    /// Output projection when the model has its own (else the embeddings).
    pub proj: Option<GLinear>,
}

impl GWeights {
    /// Upload every weight the forward pass uses (names as spec §3).
    pub fn load(gpu: &Gpu, m: &ModelBin, enc: usize, dec: usize) -> Result<Self, BackendError> {
        let enc_layers = (0..enc)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(GEncLayer {
                    attn_norm: GNorm::load(gpu, m, &format!("{p}/self_attention/layer_norm"))?,
                    qkv: GLinear::load(gpu, m, &format!("{p}/self_attention/linear_0"))?,
                    out: GLinear::load(gpu, m, &format!("{p}/self_attention/linear_1"))?,
                    ffn_norm: GNorm::load(gpu, m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: GLinear::load(gpu, m, &format!("{p}/ffn/linear_0"))?,
                    fc2: GLinear::load(gpu, m, &format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        let dec_layers = (0..dec)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(GDecLayer {
                    self_norm: GNorm::load(gpu, m, &format!("{p}/self_attention/layer_norm"))?,
                    self_qkv: GLinear::load(gpu, m, &format!("{p}/self_attention/linear_0"))?,
                    self_out: GLinear::load(gpu, m, &format!("{p}/self_attention/linear_1"))?,
                    cross_norm: GNorm::load(gpu, m, &format!("{p}/attention/layer_norm"))?,
                    cross_q: GLinear::load(gpu, m, &format!("{p}/attention/linear_0"))?,
                    cross_kv: GLinear::load(gpu, m, &format!("{p}/attention/linear_1"))?,
                    cross_out: GLinear::load(gpu, m, &format!("{p}/attention/linear_2"))?,
                    ffn_norm: GNorm::load(gpu, m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: GLinear::load(gpu, m, &format!("{p}/ffn/linear_0"))?,
                    fc2: GLinear::load(gpu, m, &format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        // The projection is normally tied to the embeddings (one upload).
        let proj = if m.contains("decoder/projection/weight") {
            Some(GLinear::load(gpu, m, "decoder/projection")?)
        } else {
            None
        };
        Ok(Self {
            conv1: GLinear::load(gpu, m, "encoder/conv1")?,
            conv2: GLinear::load(gpu, m, "encoder/conv2")?,
            enc_pos: gpu.upload_f32(
                &m.get("encoder/position_encodings/encodings")?.to_f32(),
                "encoder positions",
            )?,
            enc_layers,
            enc_norm: GNorm::load(gpu, m, "encoder/layer_norm")?,
            embed: GLinear::load(gpu, m, "decoder/embeddings")?,
            dec_pos: gpu.upload_f32(
                &m.get("decoder/position_encodings/encodings")?.to_f32(),
                "decoder positions",
            )?,
            dec_layers,
            dec_norm: GNorm::load(gpu, m, "decoder/layer_norm")?,
            proj,
        })
    }

    /// The output projection.
    pub fn proj(&self) -> &GLinear {
        self.proj.as_ref().unwrap_or(&self.embed)
    }
}
