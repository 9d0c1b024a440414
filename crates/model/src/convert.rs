//! Writing a loaded model as a CTranslate2 directory (spec §1–§3), with the
//! weight types CTranslate2's converter produces for each `quantization`
//! (§2.6), so that the result loads in CTranslate2 itself.
//!
//! `model.bin` is streamed: one variable is converted, written and dropped
//! at a time, so converting needs the loaded model plus one tensor.

use crate::error::ModelError;
use crate::tensor::{DType, Tensor, TensorData};
use crate::writer::{is_quantizable, quantize_int8};
use crate::{ModelFormat, WhisperModel};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// A CTranslate2 `quantization` type (spec §2.6, "Conversion types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// Everything float32.
    Float32,
    /// Everything float16.
    Float16,
    /// Everything bfloat16.
    Bfloat16,
    /// int8 weights; other tensors keep their type.
    Int8,
    /// int8 weights; other tensors float16.
    Int8Float16,
    /// int8 weights; other tensors float32.
    Int8Float32,
    /// int8 weights; other tensors bfloat16.
    Int8Bfloat16,
}

impl Quantization {
    /// Every type, in the order `--help` lists them.
    pub const ALL: [Quantization; 7] = [
        Self::Float32,
        Self::Float16,
        Self::Bfloat16,
        Self::Int8,
        Self::Int8Float16,
        Self::Int8Float32,
        Self::Int8Bfloat16,
    ];

    /// The name CTranslate2 uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float16 => "float16",
            Self::Bfloat16 => "bfloat16",
            Self::Int8 => "int8",
            Self::Int8Float16 => "int8_float16",
            Self::Int8Float32 => "int8_float32",
            Self::Int8Bfloat16 => "int8_bfloat16",
        }
    }

    /// Parse a CTranslate2 name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name() == s)
    }

    fn int8(self) -> bool {
        matches!(
            self,
            Self::Int8 | Self::Int8Float16 | Self::Int8Float32 | Self::Int8Bfloat16
        )
    }

    /// The float type of the quantisable weights (non-int8 types).
    fn weight_float(self) -> Option<DType> {
        match self {
            Self::Float32 => Some(DType::F32),
            Self::Float16 => Some(DType::F16),
            Self::Bfloat16 => Some(DType::BF16),
            _ => None,
        }
    }

    /// The type of the other float tensors; `None` keeps the source's.
    fn other_float(self) -> Option<DType> {
        match self {
            Self::Float32 | Self::Int8Float32 => Some(DType::F32),
            Self::Float16 | Self::Int8Float16 => Some(DType::F16),
            Self::Bfloat16 | Self::Int8Bfloat16 => Some(DType::BF16),
            Self::Int8 => None,
        }
    }
}

/// Progress of [`write_ct2_dir`], reported after each variable.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Variables written so far.
    pub done: usize,
    /// Variables in the output model.bin.
    pub total: usize,
    /// The variable just written.
    pub name: &'a str,
    /// Bytes of model.bin written so far.
    pub bytes: u64,
}

fn is_float(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F16 | DType::BF16)
}

fn to_dtype(t: &Tensor, dtype: DType) -> Tensor {
    // Float sources convert element by element (no float32 copy of a large
    // tensor in between); quantised ones are dequantised first (§2.6).
    fn map<T>(t: &Tensor, f: impl Fn(f32) -> T) -> Vec<T> {
        match &t.data {
            TensorData::F32(v) if t.scale.is_none() => v.iter().map(|&x| f(x)).collect(),
            TensorData::F16(v) if t.scale.is_none() => v.iter().map(|x| f(x.to_f32())).collect(),
            TensorData::BF16(v) if t.scale.is_none() => v.iter().map(|x| f(x.to_f32())).collect(),
            _ => t.to_f32().into_iter().map(f).collect(),
        }
    }
    let data = match dtype {
        DType::F16 => TensorData::F16(map(t, half::f16::from_f32)),
        DType::BF16 => TensorData::BF16(map(t, half::bf16::from_f32)),
        _ => TensorData::F32(map(t, |x| x)),
    };
    Tensor {
        shape: t.shape.clone(),
        data,
        scale: None,
    }
}

/// One variable as CTranslate2's converter would store it (spec §2.6):
/// scalars are never converted; quantisable weights follow the weight type
/// (int8 with per-row scales, or a float type; an int8 source stays as it
/// is for int8 targets); other float tensors follow the "other" type.
pub fn convert_tensor<'a>(name: &str, t: &'a Tensor, q: Option<Quantization>) -> Cow<'a, Tensor> {
    match plan(name, t, q) {
        Plan::Keep => Cow::Borrowed(t),
        Plan::Int8 => Cow::Owned(quantize_int8(t)),
        Plan::Float(want) => Cow::Owned(to_dtype(t, want)),
    }
}

/// What [`convert_tensor`] does to one variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Keep,
    Int8,
    Float(DType),
}

impl Plan {
    /// Whether the converted variable has a `_scale` beside it.
    fn has_scale(self, t: &Tensor) -> bool {
        match self {
            Plan::Keep => t.scale.is_some(),
            Plan::Int8 => true,
            Plan::Float(_) => false,
        }
    }
}

fn plan(name: &str, t: &Tensor, q: Option<Quantization>) -> Plan {
    let Some(q) = q else {
        return Plan::Keep;
    };
    if t.shape.is_empty() {
        return Plan::Keep;
    }
    let dtype = t.data.dtype();
    let quantised = t.scale.is_some();
    if is_quantizable(name) && (is_float(dtype) || quantised) {
        if q.int8() {
            return if dtype == DType::I8 && quantised {
                Plan::Keep
            } else {
                Plan::Int8
            };
        }
        let want = q.weight_float().unwrap_or(DType::F32);
        return if dtype == want && !quantised {
            Plan::Keep
        } else {
            Plan::Float(want)
        };
    }
    match q.other_float() {
        Some(want) if (is_float(dtype) || quantised) && dtype != want => Plan::Float(want),
        _ => Plan::Keep,
    }
}

/// Aliases as CTranslate2's converter makes them (spec §2.5): a non-scalar
/// variable equal (same dtype, shape, values and scale) to one that sorts
/// before it becomes an alias of the first such variable. Computed on the
/// source values, before quantisation, as the converter does.
pub fn find_aliases(vars: &[(&str, &Tensor)]) -> Vec<(String, String)> {
    let mut groups: HashMap<(Vec<usize>, u8), Vec<usize>> = HashMap::new();
    for (i, (_, t)) in vars.iter().enumerate() {
        if !t.shape.is_empty() {
            groups
                .entry((t.shape.clone(), t.data.dtype().id()))
                .or_default()
                .push(i);
        }
    }
    let mut aliases = Vec::new();
    for members in groups.values() {
        for (k, &i) in members.iter().enumerate() {
            if let Some(&j) = members[..k].iter().find(|&&j| vars[j].1 == vars[i].1) {
                aliases.push((vars[i].0.to_string(), vars[j].0.to_string()));
            }
        }
    }
    aliases.sort();
    aliases
}

fn write_string(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    // §2.1: u16 length counting the NUL terminator, bytes, NUL.
    let n = u16::try_from(s.len() + 1)
        .map_err(|_| std::io::Error::other(format!("name too long: {s}")))?;
    out.write_all(&n.to_le_bytes())?;
    out.write_all(s.as_bytes())?;
    out.write_all(&[0])
}

fn write_var(
    out: &mut impl Write,
    name: &str,
    shape: &[usize],
    data: &TensorData,
) -> std::io::Result<u64> {
    write_string(out, name)?;
    out.write_all(&[shape.len() as u8])?;
    for &d in shape {
        let d = u32::try_from(d)
            .map_err(|_| std::io::Error::other(format!("{name}: dimension {d} too large")))?;
        out.write_all(&d.to_le_bytes())?;
    }
    let len = data.len() * data.dtype().size();
    // §2.2: num_bytes is a u32, so one tensor is limited to 4 GiB.
    let n = u32::try_from(len).map_err(|_| {
        std::io::Error::other(format!(
            "{name}: {len} bytes exceed model.bin's 4 GiB per tensor"
        ))
    })?;
    out.write_all(&[data.dtype().id()])?;
    out.write_all(&n.to_le_bytes())?;
    write_le(out, data)?;
    Ok(len as u64 + name.len() as u64 + 8 + 4 * shape.len() as u64)
}

/// The elements as little-endian bytes, a block at a time (no byte copy of
/// the whole tensor).
fn write_le(out: &mut impl Write, data: &TensorData) -> std::io::Result<()> {
    const BLOCK: usize = 1 << 16;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 4);
    macro_rules! blocks {
        ($v:expr, $bytes:expr) => {
            for chunk in $v.chunks(BLOCK) {
                buf.clear();
                for x in chunk {
                    buf.extend_from_slice(&$bytes(x));
                }
                out.write_all(&buf)?;
            }
        };
    }
    match data {
        TensorData::F32(v) => blocks!(v, |x: &f32| x.to_le_bytes()),
        TensorData::I8(v) => blocks!(v, |x: &i8| x.to_le_bytes()),
        TensorData::I16(v) => blocks!(v, |x: &i16| x.to_le_bytes()),
        TensorData::I32(v) => blocks!(v, |x: &i32| x.to_le_bytes()),
        TensorData::F16(v) => blocks!(v, |x: &half::f16| x.to_bits().to_le_bytes()),
        TensorData::BF16(v) => blocks!(v, |x: &half::bf16| x.to_bits().to_le_bytes()),
    }
    Ok(())
}

/// Stream `model`'s weights as a version-6 model.bin (spec §2.2).
pub fn write_model_bin(
    model: &WhisperModel,
    out: &mut impl Write,
    q: Option<Quantization>,
    progress: &mut dyn FnMut(Progress),
) -> std::io::Result<()> {
    let w = &model.weights;
    // Scales are regenerated from each tensor's `scale`; drop the stored ones.
    let vars: Vec<(&str, &Tensor)> = w
        .stored_variables()
        .filter(|(n, _)| {
            n.strip_suffix("_scale")
                .and_then(|base| w.try_get(base))
                .is_none_or(|b| b.scale.is_none())
        })
        .collect();
    let mut aliases: Vec<(String, String)> = w.aliases.clone();
    aliases.extend(find_aliases(&vars));
    let aliased: std::collections::HashSet<&str> =
        aliases.iter().map(|(a, _)| a.as_str()).collect();
    let kept: Vec<(&str, &Tensor)> = vars
        .into_iter()
        .filter(|(n, _)| !aliased.contains(n))
        .collect();
    // The output list: every kept variable, and `<name>_scale` after each
    // one that will be quantised; sorted by name as the converter writes.
    let mut entries: Vec<(String, usize, bool)> = Vec::new();
    for (i, (name, t)) in kept.iter().enumerate() {
        entries.push((name.to_string(), i, false));
        if plan(name, t, q).has_scale(t) {
            entries.push((format!("{name}_scale"), i, true));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    out.write_all(&6u32.to_le_bytes())?;
    write_string(out, &w.spec_name)?;
    out.write_all(&w.spec_revision.to_le_bytes())?;
    out.write_all(&(entries.len() as u32).to_le_bytes())?;
    let mut pending_scales: HashMap<usize, (Vec<usize>, Vec<f32>)> = HashMap::new();
    let mut bytes = 0u64;
    let total = entries.len();
    for (done, (name, i, is_scale)) in entries.iter().enumerate() {
        let (src_name, t) = kept[*i];
        if *is_scale {
            let (shape, s) = match pending_scales.remove(i) {
                Some(x) => x,
                // `<name>_scale` sorts after `<name>`, so this is only reached
                // if a name sorted between them; convert again.
                None => {
                    let c = convert_tensor(src_name, t, q);
                    scale_of(&c)
                }
            };
            bytes += write_var(out, name, &shape, &TensorData::F32(s))?;
        } else {
            let c = convert_tensor(src_name, t, q);
            bytes += write_var(out, name, &c.shape, &c.data)?;
            if c.scale.is_some() {
                pending_scales.insert(*i, scale_of(&c));
            }
        }
        progress(Progress {
            done: done + 1,
            total,
            name,
            bytes,
        });
    }
    out.write_all(&(aliases.len() as u32).to_le_bytes())?;
    for (a, t) in &aliases {
        write_string(out, a)?;
        write_string(out, t)?;
    }
    out.flush()
}

/// A scale variable's shape and values: a scalar for int16, one per row for int8 (§2.6).
fn scale_of(t: &Tensor) -> (Vec<usize>, Vec<f32>) {
    let s = t.scale.clone().unwrap_or_default();
    let shape = if t.data.dtype() == DType::I16 {
        vec![]
    } else {
        vec![s.len()]
    };
    (shape, s)
}

/// `config.json` as CTranslate2's converter writes it (spec §3.5):
/// `alignment_heads` (with the last-half fallback), `lang_ids`,
/// `suppress_ids`, `suppress_ids_begin`; sorted keys, indent 2, newline.
pub fn config_json(model: &WhisperModel) -> String {
    let heads: Vec<[usize; 2]> = model
        .alignment_heads()
        .into_iter()
        .map(|(l, h)| [l, h])
        .collect();
    let c = &model.config;
    let mut map = serde_json::Map::new();
    map.insert("alignment_heads".into(), serde_json::json!(heads));
    map.insert("lang_ids".into(), serde_json::json!(c.lang_ids));
    map.insert("suppress_ids".into(), serde_json::json!(c.suppress_ids));
    map.insert(
        "suppress_ids_begin".into(),
        serde_json::json!(c.suppress_ids_begin),
    );
    let mut s = serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap_or_default();
    s.push('\n');
    s
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `model` as a CTranslate2 directory into the existing directory
/// `out`: model.bin, config.json, tokenizer.json, the vocabulary and (when
/// the source has one, or the model has 128 mels) preprocessor_config.json.
/// From a CTranslate2 source the small files are copied as they are; from a
/// transformers source they are made as CTranslate2's converter makes them.
pub fn write_ct2_dir(
    model: &WhisperModel,
    out: &Path,
    q: Option<Quantization>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ModelError> {
    let bin = out.join("model.bin");
    let file = std::fs::File::create(&bin).map_err(io(&bin))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    write_model_bin(model, &mut w, q, progress).map_err(io(&bin))?;
    w.into_inner()
        .map_err(|e| io(&bin)(e.into_error()))?
        .sync_all()
        .map_err(io(&bin))?;

    let src = &model.dir;
    let copy = |name: &str| -> Result<bool, ModelError> {
        let from = src.join(name);
        if !from.is_file() {
            return Ok(false);
        }
        std::fs::copy(&from, out.join(name)).map_err(io(&from))?;
        Ok(true)
    };
    let write = |name: &str, text: &str| -> Result<(), ModelError> {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(io(&p))
    };
    copy("tokenizer.json")?;
    match model.format {
        ModelFormat::Ct2 => {
            if !copy("config.json")? {
                write("config.json", &config_json(model))?;
            }
            if !copy("vocabulary.json")? && !copy("vocabulary.txt")? {
                write_vocabulary(model, out)?;
            }
        }
        ModelFormat::HuggingFace => {
            write("config.json", &config_json(model))?;
            write_vocabulary(model, out)?;
        }
    }
    // faster-whisper takes the mel count from preprocessor_config.json and
    // assumes 80 without it (spec §1), so a 128-mel model needs the file.
    if !copy("preprocessor_config.json")? && model.hparams.n_mels != 80 {
        write(
            "preprocessor_config.json",
            &format!("{{\n  \"feature_size\": {}\n}}\n", model.hparams.n_mels),
        )?;
    }
    Ok(())
}

/// `vocabulary.json`: the token strings in id order (spec §3.6).
fn write_vocabulary(model: &WhisperModel, out: &Path) -> Result<(), ModelError> {
    let p = out.join("vocabulary.json");
    let text = serde_json::to_string_pretty(model.tokenizer.vocabulary()).unwrap_or_default();
    std::fs::write(&p, text).map_err(io(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32t(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor {
            shape,
            data: TensorData::F32(v),
            scale: None,
        }
    }

    #[test]
    fn types_follow_the_conversion_table() {
        let w = f32t(vec![2, 2], vec![1.0, -2.0, 0.5, 0.25]);
        let b = f32t(vec![2], vec![1.0, 2.0]);
        let s = Tensor {
            shape: vec![],
            data: TensorData::I16(vec![6]),
            scale: None,
        };
        let wn = "encoder/layer_0/ffn/linear_0/weight";
        let bn = "encoder/layer_0/ffn/linear_0/bias";
        let cases = [
            (Quantization::Float16, DType::F16, DType::F16),
            (Quantization::Bfloat16, DType::BF16, DType::BF16),
            (Quantization::Float32, DType::F32, DType::F32),
            (Quantization::Int8, DType::I8, DType::F32),
            (Quantization::Int8Float16, DType::I8, DType::F16),
            (Quantization::Int8Float32, DType::I8, DType::F32),
            (Quantization::Int8Bfloat16, DType::I8, DType::BF16),
        ];
        for (q, wd, bd) in cases {
            let cw = convert_tensor(wn, &w, Some(q));
            assert_eq!(cw.data.dtype(), wd, "{q:?} weight");
            assert_eq!(cw.scale.is_some(), wd == DType::I8, "{q:?} scale");
            assert_eq!(
                convert_tensor(bn, &b, Some(q)).data.dtype(),
                bd,
                "{q:?} bias"
            );
            assert_eq!(
                convert_tensor("encoder/num_heads", &s, Some(q)).data,
                s.data
            );
            assert_eq!(Quantization::from_name(q.name()), Some(q));
        }
        // The scale bookkeeping of the streamed writer agrees with the conversion.
        for q in Quantization::ALL.map(Some).into_iter().chain([None]) {
            for (n, t) in [(wn, &w), (bn, &b), (wn, &quantize_int8(&w))] {
                let c = convert_tensor(n, t, q);
                assert_eq!(plan(n, t, q).has_scale(t), c.scale.is_some(), "{q:?} {n}");
            }
        }
        // No quantization keeps everything.
        assert!(matches!(convert_tensor(wn, &w, None), Cow::Borrowed(_)));
        // An int8 source dequantises for a float target.
        let q8 = quantize_int8(&w);
        let back = convert_tensor(wn, &q8, Some(Quantization::Float32));
        assert_eq!(back.data.dtype(), DType::F32);
        assert!(back.scale.is_none());
        assert_eq!(back.to_f32(), q8.to_f32());
    }

    #[test]
    fn aliases_point_to_the_first_equal_variable() {
        let a = f32t(vec![2], vec![1.0, 2.0]);
        let b = f32t(vec![2], vec![3.0, 2.0]);
        let zero = Tensor {
            shape: vec![],
            data: TensorData::I8(vec![0]),
            scale: None,
        };
        let vars = [
            ("a", &a),
            ("b", &b),
            ("c", &a),
            ("d", &a),
            ("s1", &zero),
            ("s2", &zero),
        ];
        // Scalars are never aliased; c and d both point to a.
        assert_eq!(
            find_aliases(&vars),
            vec![("c".into(), "a".into()), ("d".into(), "a".into())]
        );
    }
}
