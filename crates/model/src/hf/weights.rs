//! transformers Whisper tensors → CTranslate2 variables (spec §3).
//!
//! The safetensors headers are parsed from a memory map (validation reads
//! only the header), and each tensor's bytes are then read from the file
//! into the CT2 variable's own buffer, in the checkpoint's dtype (float32,
//! float16 or bfloat16). The data pages are never mapped into the process,
//! so it holds one copy of the weights (plus one tensor's bytes at a time). The only layout changes are
//! the fused attention projections (§3.2): q/k/v rows are concatenated, and
//! the key part of a fused bias is zeros because Whisper's key projections
//! have no bias.

use super::{weight_files, HfConfig, INDEX_FILE};
use crate::error::ModelError;
use crate::modelbin::ModelBin;
use crate::tensor::{DType, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The spec name and revision CTranslate2's converter writes (§2.2).
pub(crate) const SPEC_NAME: &str = "WhisperSpec";
pub(crate) const SPEC_REVISION: u32 = 3;

struct Shards<'a> {
    files: &'a [PathBuf],
    handles: &'a [File],
    maps: &'a [memmap2::Mmap],
    parsed: Vec<SafeTensors<'a>>,
    /// Tensor name → index into `parsed`.
    by_name: HashMap<String, usize>,
    /// `model.` for WhisperForConditionalGeneration, empty for WhisperModel.
    prefix: &'static str,
    dir: &'a Path,
}

/// One checkpoint tensor, still in the mapped file.
struct Src<'a> {
    file: &'a Path,
    handle: &'a File,
    dtype: DType,
    shape: Vec<usize>,
    /// Where the tensor's bytes are in the file.
    offset: u64,
    len: usize,
}

impl Src<'_> {
    /// The tensor's little-endian bytes, read from the file.
    fn read(&self) -> Result<Vec<u8>, ModelError> {
        let mut buf = vec![0u8; self.len];
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    fn read_into(&self, buf: &mut [u8]) -> Result<(), ModelError> {
        let mut f = self.handle;
        f.seek(SeekFrom::Start(self.offset))
            .and_then(|_| f.read_exact(buf))
            .map_err(|source| ModelError::Io {
                path: self.file.to_path_buf(),
                source,
            })
    }
}

impl<'a> Shards<'a> {
    fn where_missing(&self) -> PathBuf {
        if self.files.len() == 1 {
            self.files[0].clone()
        } else {
            self.dir.join(INDEX_FILE)
        }
    }

    /// A tensor by its transformers name (without the `model.` prefix for
    /// encoder/decoder tensors), checked against the expected shape.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Src<'a>, ModelError> {
        let full = if name.starts_with("proj_out") {
            name.to_string()
        } else {
            format!("{}{name}", self.prefix)
        };
        let Some(&i) = self.by_name.get(&full) else {
            return Err(ModelError::MissingTensor {
                path: self.where_missing(),
                name: full,
            });
        };
        let file = self.files[i].as_path();
        let view = self.parsed[i]
            .tensor(&full)
            .map_err(|e| ModelError::Corrupt {
                path: file.to_path_buf(),
                msg: format!("tensor '{full}': {e}"),
            })?;
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::Unsupported {
                    path: file.to_path_buf(),
                    msg: format!(
                        "tensor '{full}' is {other:?}; Whisper weights must be float32, float16 or bfloat16"
                    ),
                })
            }
        };
        if view.shape() != shape {
            return Err(ModelError::ShapeMismatch {
                path: file.to_path_buf(),
                name: full,
                found: view.shape().to_vec(),
                expected: format!("{shape:?} from config.json"),
            });
        }
        // The offset from the pointer into the map: no data page is touched.
        let offset = view.data().as_ptr() as usize - self.maps[i].as_ptr() as usize;
        Ok(Src {
            file,
            handle: &self.handles[i],
            dtype,
            shape: view.shape().to_vec(),
            offset: offset as u64,
            len: view.data().len(),
        })
    }

    fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

impl Src<'_> {
    /// The tensor read straight into typed storage (no byte copy on
    /// little-endian hosts, where the file's layout is the memory layout).
    fn data(&self) -> Result<TensorData, ModelError> {
        if cfg!(target_endian = "big") {
            return Ok(TensorData::from_le_bytes(self.dtype, &self.read()?));
        }
        fn fill<T: bytemuck::Pod + Default>(s: &Src, n: usize) -> Result<Vec<T>, ModelError> {
            let mut v = vec![T::default(); n];
            s.read_into(bytemuck::cast_slice_mut(&mut v))?;
            Ok(v)
        }
        let n = self.len / self.dtype.size();
        Ok(match self.dtype {
            DType::F16 => TensorData::F16(
                fill::<u16>(self, n)?
                    .into_iter()
                    .map(half::f16::from_bits)
                    .collect(),
            ),
            DType::BF16 => TensorData::BF16(
                fill::<u16>(self, n)?
                    .into_iter()
                    .map(half::bf16::from_bits)
                    .collect(),
            ),
            _ => TensorData::F32(fill::<f32>(self, n)?),
        })
    }
}

fn owned(src: &Src) -> Result<Tensor, ModelError> {
    Ok(Tensor {
        shape: src.shape.clone(),
        data: src.data()?,
        scale: None,
    })
}

/// Rows of several tensors stacked (the fused projections of §3.2); `None`
/// parts are zero rows of length `zero_len` (the absent key bias). The
/// result takes the first real part's dtype.
fn concat(parts: &[Option<&Src>], zero_len: usize) -> Result<Tensor, ModelError> {
    let dtype = parts
        .iter()
        .flatten()
        .map(|s| s.dtype)
        .next()
        .unwrap_or(DType::F32);
    let rows: usize = parts
        .iter()
        .map(|p| p.map_or(zero_len, |s| s.shape[0]))
        .sum();
    let mut shape = parts
        .iter()
        .flatten()
        .map(|s| s.shape.clone())
        .next()
        .unwrap_or_else(|| vec![zero_len]);
    shape[0] = rows;
    let numel: usize = shape.iter().product();
    let mut data = match dtype {
        DType::F16 => TensorData::F16(Vec::with_capacity(numel)),
        DType::BF16 => TensorData::BF16(Vec::with_capacity(numel)),
        _ => TensorData::F32(Vec::with_capacity(numel)),
    };
    for p in parts {
        match p {
            Some(s) if s.dtype == dtype => {
                append(&mut data, s.data()?);
            }
            // Mixed dtypes inside one checkpoint: widen the part and narrow
            // it to the fused tensor's dtype.
            Some(s) => {
                let t = owned(s)?;
                append(&mut data, from_f32(dtype, &t.to_f32()));
            }
            None => append(&mut data, from_f32(dtype, &vec![0.0; zero_len])),
        }
    }
    Ok(Tensor {
        shape,
        data,
        scale: None,
    })
}

fn from_f32(dtype: DType, v: &[f32]) -> TensorData {
    match dtype {
        DType::F16 => TensorData::F16(v.iter().map(|&x| half::f16::from_f32(x)).collect()),
        DType::BF16 => TensorData::BF16(v.iter().map(|&x| half::bf16::from_f32(x)).collect()),
        _ => TensorData::F32(v.to_vec()),
    }
}

fn append(dst: &mut TensorData, src: TensorData) {
    match (dst, src) {
        (TensorData::F32(d), TensorData::F32(s)) => d.extend(s),
        (TensorData::F16(d), TensorData::F16(s)) => d.extend(s),
        (TensorData::BF16(d), TensorData::BF16(s)) => d.extend(s),
        // `concat` only appends parts converted to the destination dtype.
        _ => unreachable!("concat converts every part to one dtype"),
    }
}

/// Whisper's encoder position table (spec §4.4): for `j < d/2`,
/// `P[t, j] = sin(t·e^(−j·ln(10000)/(d/2 − 1)))` and `P[t, d/2 + j]` the cosine.
fn sinusoids(length: usize, d: usize) -> Vec<f32> {
    let half = d / 2;
    let inc = (10000f64).ln() / (half.max(2) - 1) as f64;
    let mut p = vec![0f32; length * d];
    for t in 0..length {
        for j in 0..half {
            let a = t as f64 * (-(j as f64) * inc).exp();
            p[t * d + j] = a.sin() as f32;
            p[t * d + half + j] = a.cos() as f32;
        }
    }
    p
}

fn scalar_i16(v: i16) -> Tensor {
    Tensor {
        shape: vec![],
        data: TensorData::I16(vec![v]),
        scale: None,
    }
}

fn scalar_i8(v: i8) -> Tensor {
    Tensor {
        shape: vec![],
        data: TensorData::I8(vec![v]),
        scale: None,
    }
}

/// Map every tensor of the checkpoint in `dir` to CTranslate2 variables.
pub(crate) fn load(dir: &Path, cfg: &HfConfig) -> Result<ModelBin, ModelError> {
    let files = weight_files(dir)?;
    let mut maps = Vec::with_capacity(files.len());
    let mut handles = Vec::with_capacity(files.len());
    for f in &files {
        let io = |source| ModelError::Io {
            path: f.clone(),
            source,
        };
        let file = File::open(f).map_err(io)?;
        // SAFETY: a read-only mapping, used for the header and for tensor
        // offsets only, and dropped at the end of this function.
        maps.push(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?);
        handles.push(file);
    }
    let mut parsed = Vec::with_capacity(files.len());
    let mut by_name = HashMap::new();
    for (i, (f, m)) in files.iter().zip(&maps).enumerate() {
        let st = SafeTensors::deserialize(m).map_err(|e| ModelError::Corrupt {
            path: f.clone(),
            msg: format!("invalid safetensors header: {e}"),
        })?;
        for name in st.names() {
            by_name.insert(name.to_string(), i);
        }
        parsed.push(st);
    }
    let prefix = if by_name.contains_key("model.encoder.conv1.weight") {
        "model."
    } else {
        ""
    };
    let shards = Shards {
        files: &files,
        handles: &handles,
        maps: &maps,
        parsed,
        by_name,
        prefix,
        dir,
    };
    let vars = map_variables(&shards, cfg)?;
    let mut variables = vars.0;
    let aliases = vars.1;
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    ModelBin::from_variables(
        &dir.join("model.safetensors"),
        SPEC_NAME,
        SPEC_REVISION,
        variables,
        aliases,
    )
}

type Vars = (Vec<(String, Tensor)>, Vec<(String, String)>);

fn map_variables(s: &Shards, c: &HfConfig) -> Result<Vars, ModelError> {
    let d = c.d_model;
    let mut out: Vec<(String, Tensor)> = Vec::new();
    let mut put = |name: String, t: Tensor| out.push((name, t));
    let vec_d = [d];

    // Encoder front end and final norm (§3.1).
    for conv in ["conv1", "conv2"] {
        let cin = if conv == "conv1" { c.n_mels } else { d };
        let w = s.get(&format!("encoder.{conv}.weight"), &[d, cin, 3])?;
        put(format!("encoder/{conv}/weight"), owned(&w)?);
        let b = s.get(&format!("encoder.{conv}.bias"), &vec_d)?;
        put(format!("encoder/{conv}/bias"), owned(&b)?);
    }
    // transformers keeps the encoder's fixed sinusoid table as a parameter;
    // a checkpoint saved without it gets the same table computed (§4.4).
    let enc_pos = if s.has(&format!("{}encoder.embed_positions.weight", s.prefix)) {
        let pos = s.get("encoder.embed_positions.weight", &[c.n_audio_ctx, d])?;
        owned(&pos)?
    } else {
        let conv1 = s.get("encoder.conv1.weight", &[d, c.n_mels, 3])?;
        Tensor {
            shape: vec![c.n_audio_ctx, d],
            data: from_f32(conv1.dtype, &sinusoids(c.n_audio_ctx, d)),
            scale: None,
        }
    };
    put("encoder/position_encodings/encodings".into(), enc_pos);
    let ln = |s: &Shards, hf: &str, ct2: &str, put: &mut dyn FnMut(String, Tensor)| {
        let g = s.get(&format!("{hf}.weight"), &vec_d)?;
        put(format!("{ct2}/gamma"), owned(&g)?);
        let b = s.get(&format!("{hf}.bias"), &vec_d)?;
        put(format!("{ct2}/beta"), owned(&b)?);
        Ok::<(), ModelError>(())
    };
    let linear = |s: &Shards,
                  hf: &str,
                  ct2: &str,
                  o: usize,
                  i: usize,
                  put: &mut dyn FnMut(String, Tensor)| {
        let w = s.get(&format!("{hf}.weight"), &[o, i])?;
        put(format!("{ct2}/weight"), owned(&w)?);
        let b = s.get(&format!("{hf}.bias"), &[o])?;
        put(format!("{ct2}/bias"), owned(&b)?);
        Ok::<(), ModelError>(())
    };
    ln(s, "encoder.layer_norm", "encoder/layer_norm", &mut put)?;

    // Fused projections (§3.2): rows of q|k|v (or k|v), key bias zero. A
    // checkpoint that does carry a key bias keeps it.
    let fused =
        |s: &Shards, hf: &str, parts: &[&str], ct2: &str, put: &mut dyn FnMut(String, Tensor)| {
            let ws: Vec<Src> = parts
                .iter()
                .map(|p| s.get(&format!("{hf}.{p}_proj.weight"), &[d, d]))
                .collect::<Result<_, _>>()?;
            let w: Vec<Option<&Src>> = ws.iter().map(Some).collect();
            put(format!("{ct2}/weight"), concat(&w, d)?);
            let bs: Vec<Option<Src>> = parts
                .iter()
                .map(|p| {
                    let name = format!("{hf}.{p}_proj.bias");
                    if *p == "k" && !s.has(&format!("{}{name}", s.prefix)) {
                        Ok(None)
                    } else {
                        s.get(&name, &vec_d).map(Some)
                    }
                })
                .collect::<Result<_, _>>()?;
            let b: Vec<Option<&Src>> = bs.iter().map(Option::as_ref).collect();
            put(format!("{ct2}/bias"), concat(&b, d)?);
            Ok::<(), ModelError>(())
        };

    for (stack, layers, ffn, cross) in [
        ("encoder", c.encoder_layers, c.encoder_ffn, false),
        ("decoder", c.decoder_layers, c.decoder_ffn, true),
    ] {
        for i in 0..layers {
            let hf = format!("{stack}.layers.{i}");
            let ct = format!("{stack}/layer_{i}");
            ln(
                s,
                &format!("{hf}.self_attn_layer_norm"),
                &format!("{ct}/self_attention/layer_norm"),
                &mut put,
            )?;
            fused(
                s,
                &format!("{hf}.self_attn"),
                &["q", "k", "v"],
                &format!("{ct}/self_attention/linear_0"),
                &mut put,
            )?;
            linear(
                s,
                &format!("{hf}.self_attn.out_proj"),
                &format!("{ct}/self_attention/linear_1"),
                d,
                d,
                &mut put,
            )?;
            if cross {
                ln(
                    s,
                    &format!("{hf}.encoder_attn_layer_norm"),
                    &format!("{ct}/attention/layer_norm"),
                    &mut put,
                )?;
                linear(
                    s,
                    &format!("{hf}.encoder_attn.q_proj"),
                    &format!("{ct}/attention/linear_0"),
                    d,
                    d,
                    &mut put,
                )?;
                fused(
                    s,
                    &format!("{hf}.encoder_attn"),
                    &["k", "v"],
                    &format!("{ct}/attention/linear_1"),
                    &mut put,
                )?;
                linear(
                    s,
                    &format!("{hf}.encoder_attn.out_proj"),
                    &format!("{ct}/attention/linear_2"),
                    d,
                    d,
                    &mut put,
                )?;
            }
            ln(
                s,
                &format!("{hf}.final_layer_norm"),
                &format!("{ct}/ffn/layer_norm"),
                &mut put,
            )?;
            linear(
                s,
                &format!("{hf}.fc1"),
                &format!("{ct}/ffn/linear_0"),
                ffn,
                d,
                &mut put,
            )?;
            linear(
                s,
                &format!("{hf}.fc2"),
                &format!("{ct}/ffn/linear_1"),
                d,
                ffn,
                &mut put,
            )?;
        }
    }

    // Decoder embeddings, positions, final norm (§3.2).
    let emb = s.get("decoder.embed_tokens.weight", &[c.n_vocab, d])?;
    put("decoder/embeddings/weight".into(), owned(&emb)?);
    let pos = s.get("decoder.embed_positions.weight", &[c.n_text_ctx, d])?;
    put("decoder/position_encodings/encodings".into(), owned(&pos)?);
    ln(s, "decoder.layer_norm", "decoder/layer_norm", &mut put)?;

    // The output projection: transformers drops `proj_out.weight` from the
    // file when it is tied to the embeddings. CT2 aliases it whenever the two
    // are equal (§2.5), so a saved-but-equal copy is an alias too.
    let mut aliases = Vec::new();
    let projection = "decoder/projection/weight".to_string();
    if s.has("proj_out.weight") {
        let p = s.get("proj_out.weight", &[c.n_vocab, d])?;
        if p.dtype == emb.dtype && p.read()? == emb.read()? {
            aliases.push((projection, "decoder/embeddings/weight".into()));
        } else {
            put(projection, owned(&p)?);
        }
    } else if c.tied {
        aliases.push((projection, "decoder/embeddings/weight".into()));
    } else {
        return Err(ModelError::MissingTensor {
            path: s.where_missing(),
            name: "proj_out.weight".into(),
        });
    }

    // Scalar attributes exactly as CTranslate2's Whisper spec writes them
    // (§3.3): heads, exact GELU (3), pre-norm, unscaled embeddings, and the
    // generic attention-return defaults.
    let heads = |h: usize, file: &Path| {
        i16::try_from(h).map_err(|_| ModelError::Unsupported {
            path: file.to_path_buf(),
            msg: format!("{h} attention heads do not fit model.bin's int16"),
        })
    };
    put(
        "encoder/num_heads".into(),
        scalar_i16(heads(c.encoder_heads, emb.file)?),
    );
    put(
        "decoder/num_heads".into(),
        scalar_i16(heads(c.decoder_heads, emb.file)?),
    );
    put("decoder/activation".into(), scalar_i8(3));
    put("decoder/alibi".into(), scalar_i8(0));
    put("decoder/alignment_heads".into(), scalar_i16(1));
    put("decoder/alignment_layer".into(), scalar_i16(-1));
    put("decoder/pre_norm".into(), scalar_i8(1));
    put("decoder/scale_embeddings".into(), scalar_i8(0));
    put("decoder/start_from_zero_embedding".into(), scalar_i8(0));
    Ok((out, aliases))
}
