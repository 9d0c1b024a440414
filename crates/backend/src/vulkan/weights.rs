//! The model's weights on the GPU, uploaded once per model load in the
//! types the [`Precision`] asks for: float32 keeps the stored type (float16
//! stays float16 where the adapter reads it, `SHADER_F16`), float16 narrows
//! every matrix to float16, int8 keeps (or makes, per row as CTranslate2
//! does, spec §2.6) int8 Linear weights with their row scales. Anything the
//! adapter cannot read is widened to float32. Biases and LayerNorm
//! parameters are float32.

use super::gpu::{Buf, Gpu};
use super::ops::WType;
use crate::{BackendError, ComputeType};
use half::f16;
use vkw_model::{ModelBin, Tensor, TensorData};

/// What the Vulkan backend stores and computes in, from `--compute-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float32 compute on the weights as stored: token-identical with the
    /// CPU backend.
    Float32,
    /// float16 weights, float32 accumulation (CTranslate2's CUDA default).
    Float16,
    /// int8 Linear weights with per-row scales, dequantised in the matmul;
    /// the other matrices float16 (`rest_f16`) or float32.
    Int8 {
        /// Convolutions in float16 rather than float32.
        rest_f16: bool,
    },
}

impl Precision {
    /// What `ct` means on an adapter that does (`f16`) or does not read
    /// float16, and a note when that differs from the name.
    pub fn resolve(ct: ComputeType, f16: bool) -> Result<(Self, Option<String>), BackendError> {
        use ComputeType as C;
        let no_f16 = || {
            Some(format!(
                "compute type {ct}: this GPU does not read float16 in shaders, so the weights are float32"
            ))
        };
        Ok(match ct {
            C::Float32 => (Self::Float32, None),
            C::Default | C::Auto | C::Float16 | C::Bfloat16 if !f16 => (Self::Float32, no_f16()),
            C::Default | C::Auto | C::Float16 => (Self::Float16, None),
            C::Bfloat16 => (
                Self::Float16,
                Some(
                    "compute type bfloat16 runs as float16 on Vulkan (shaders have no bfloat16)"
                        .into(),
                ),
            ),
            C::Int8 | C::Int8Float16 | C::Int8Bfloat16 => (Self::Int8 { rest_f16: f16 }, None),
            C::Int8Float32 => (Self::Int8 { rest_f16: false }, None),
            C::Int16 => {
                return Err(BackendError::Unsupported(
                    "compute type int16 has no kernels: use int8 or float16".into(),
                ))
            }
        })
    }

    /// CTranslate2's name of what runs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float16 => "float16",
            Self::Int8 { rest_f16: true } => "int8_float16",
            Self::Int8 { rest_f16: false } => "int8_float32",
        }
    }
}

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
    /// Row scales of an int8 weight (`w = q / scale`).
    pub scale: Option<Buf>,
}

/// LayerNorm γ then β in one buffer (`2·d` values).
pub struct GNorm(pub Buf);

/// Upload a matrix as `prec` asks (`linear`: a Linear layer, which int8
/// compute keeps in int8); returns the buffer, its type and int8 scales.
fn upload_matrix(
    gpu: &Gpu,
    t: &Tensor,
    name: &str,
    prec: Precision,
    linear: bool,
) -> Result<(Buf, WType, Option<Buf>), BackendError> {
    let (rows, cols) = t.rows_cols();
    let int8 = matches!(prec, Precision::Int8 { .. }) && linear && cols.is_multiple_of(4);
    if int8 {
        if let (TensorData::I8(q), Some(s)) = (&t.data, &t.scale) {
            if s.len() == rows {
                let b = gpu.upload(bytemuck::cast_slice(q), name)?;
                return Ok((b, WType::I8, Some(gpu.upload_f32(s, name)?)));
            }
        }
        let w = t.to_f32();
        let mut q = vec![0i8; w.len()];
        let mut scales = Vec::with_capacity(rows);
        for (row, qr) in w.chunks(cols.max(1)).zip(q.chunks_mut(cols.max(1))) {
            scales.push(crate::cpu::int8::quantize_row(row, qr));
        }
        let b = gpu.upload(bytemuck::cast_slice(&q), name)?;
        return Ok((b, WType::I8, Some(gpu.upload_f32(&scales, name)?)));
    }
    let want_f16 = gpu.f16
        && match prec {
            Precision::Float32 => matches!(t.data, TensorData::F16(_)),
            Precision::Float16 => true,
            Precision::Int8 { rest_f16 } => rest_f16,
        };
    if want_f16 {
        let h: Vec<f16> = match &t.data {
            TensorData::F16(v) => v.clone(),
            _ => t.to_f32().iter().map(|&x| f16::from_f32(x)).collect(),
        };
        return Ok((
            gpu.upload(bytemuck::cast_slice(&h), name)?,
            WType::F16,
            None,
        ));
    }
    let w = match &t.data {
        TensorData::F32(v) => gpu.upload_f32(v, name)?,
        _ => gpu.upload_f32(&t.to_f32(), name)?,
    };
    Ok((w, WType::F32, None))
}

impl GLinear {
    /// Upload `<prefix>/weight` and its optional bias (`linear`: a Linear
    /// layer, not a convolution).
    pub fn load(
        gpu: &Gpu,
        m: &ModelBin,
        prefix: &str,
        prec: Precision,
        linear: bool,
    ) -> Result<Self, BackendError> {
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
        let (w, wt, scale) = upload_matrix(gpu, t, &name, prec, linear)?;
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
            scale,
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
    pub fn load(
        gpu: &Gpu,
        m: &ModelBin,
        enc: usize,
        dec: usize,
        prec: Precision,
    ) -> Result<Self, BackendError> {
        let lin = |p: &str| GLinear::load(gpu, m, p, prec, true);
        let enc_layers = (0..enc)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(GEncLayer {
                    attn_norm: GNorm::load(gpu, m, &format!("{p}/self_attention/layer_norm"))?,
                    qkv: lin(&format!("{p}/self_attention/linear_0"))?,
                    out: lin(&format!("{p}/self_attention/linear_1"))?,
                    ffn_norm: GNorm::load(gpu, m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: lin(&format!("{p}/ffn/linear_0"))?,
                    fc2: lin(&format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        let dec_layers = (0..dec)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(GDecLayer {
                    self_norm: GNorm::load(gpu, m, &format!("{p}/self_attention/layer_norm"))?,
                    self_qkv: lin(&format!("{p}/self_attention/linear_0"))?,
                    self_out: lin(&format!("{p}/self_attention/linear_1"))?,
                    cross_norm: GNorm::load(gpu, m, &format!("{p}/attention/layer_norm"))?,
                    cross_q: lin(&format!("{p}/attention/linear_0"))?,
                    cross_kv: lin(&format!("{p}/attention/linear_1"))?,
                    cross_out: lin(&format!("{p}/attention/linear_2"))?,
                    ffn_norm: GNorm::load(gpu, m, &format!("{p}/ffn/layer_norm"))?,
                    fc1: lin(&format!("{p}/ffn/linear_0"))?,
                    fc2: lin(&format!("{p}/ffn/linear_1"))?,
                })
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        // The projection is normally tied to the embeddings (one upload).
        let proj = if m.contains("decoder/projection/weight") {
            Some(lin("decoder/projection")?)
        } else {
            None
        };
        Ok(Self {
            conv1: GLinear::load(gpu, m, "encoder/conv1", prec, false)?,
            conv2: GLinear::load(gpu, m, "encoder/conv2", prec, false)?,
            enc_pos: gpu.upload_f32(
                &m.get("encoder/position_encodings/encodings")?.to_f32(),
                "encoder positions",
            )?,
            enc_layers,
            enc_norm: GNorm::load(gpu, m, "encoder/layer_norm")?,
            embed: lin("decoder/embeddings")?,
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
