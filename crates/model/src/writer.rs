//! Writing `model.bin` (binary version 6, spec §2.2) and the int8 quantisation
//! rule of spec §2.6. Used by tests (int8 models, corrupt files) and by model
//! conversion.

use crate::tensor::{DType, Tensor, TensorData};
use std::io::Write;

/// Serialise variables and aliases as a version-6 model.bin.
///
/// Variables are written sorted by name, as CTranslate2's writer does. A
/// tensor's `scale` is written as the variable `<name>_scale` (int8: one per
/// row; int16: a scalar).
pub fn write_model_bin(
    out: &mut impl Write,
    spec_name: &str,
    spec_revision: u32,
    vars: &[(String, Tensor)],
    aliases: &[(String, String)],
) -> std::io::Result<()> {
    let mut all: Vec<(String, Vec<usize>, TensorData)> = Vec::new();
    for (name, t) in vars {
        all.push((name.clone(), t.shape.clone(), t.data.clone()));
        if let Some(s) = &t.scale {
            let shape = if t.data.dtype() == DType::I16 {
                vec![]
            } else {
                vec![s.len()]
            };
            all.push((format!("{name}_scale"), shape, TensorData::F32(s.clone())));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let string = |out: &mut dyn Write, s: &str| -> std::io::Result<()> {
        out.write_all(&((s.len() + 1) as u16).to_le_bytes())?;
        out.write_all(s.as_bytes())?;
        out.write_all(&[0])
    };
    out.write_all(&6u32.to_le_bytes())?;
    string(out, spec_name)?;
    out.write_all(&spec_revision.to_le_bytes())?;
    out.write_all(&(all.len() as u32).to_le_bytes())?;
    for (name, shape, data) in &all {
        string(out, name)?;
        out.write_all(&[shape.len() as u8])?;
        for &d in shape {
            out.write_all(&(d as u32).to_le_bytes())?;
        }
        let bytes = data.to_le_bytes();
        out.write_all(&[data.dtype().id()])?;
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&bytes)?;
    }
    out.write_all(&(aliases.len() as u32).to_le_bytes())?;
    for (a, t) in aliases {
        string(out, a)?;
        string(out, t)?;
    }
    Ok(())
}

/// Quantise a float weight to int8 with one scale per row (spec §2.6):
/// `scale = 127 / max|row|` (127 when the row is all zeros),
/// `q = round_half_even(w · scale)`.
pub fn quantize_int8(t: &Tensor) -> Tensor {
    let (rows, cols) = t.rows_cols();
    let w = t.to_f32();
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let amax = row.iter().fold(0f32, |m, &x| m.max(x.abs()));
        // CTranslate2's converter also keeps the scale finite for tiny
        // nonzero rows: amax is at least 127 / f32::MAX.
        let amax = if amax == 0.0 {
            127.0
        } else {
            amax.max(127.0 / f32::MAX)
        };
        let scale = 127.0 / amax;
        scales.push(scale);
        q.extend(
            row.iter()
                .map(|&x| (x * scale).round_ties_even().clamp(-127.0, 127.0) as i8),
        );
    }
    Tensor {
        shape: t.shape.clone(),
        data: TensorData::I8(q),
        scale: Some(scales),
    }
}

/// Whether a variable name is a quantisable Whisper weight (spec §2.6): the
/// `weight` of a Linear, Conv1D or embedding layer.
pub fn is_quantizable(name: &str) -> bool {
    name.ends_with("/weight") && !name.contains("layer_norm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelBin;
    use std::path::Path;

    #[test]
    fn quantize_rule_matches_spec() {
        let t = Tensor {
            shape: vec![2, 3],
            data: TensorData::F32(vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0]),
            scale: None,
        };
        let q = quantize_int8(&t);
        // An all-zero row gets amax 127, i.e. scale 1 (spec §2.6).
        assert_eq!(q.scale.as_deref(), Some(&[127.0, 1.0][..]));
        assert_eq!(q.data, TensorData::I8(vec![64, -127, 32, 0, 0, 0]));
    }

    #[test]
    fn written_file_parses_back() {
        let w = Tensor {
            shape: vec![2, 2],
            data: TensorData::F16(
                [1.0f32, 2.0, 3.0, 4.0]
                    .iter()
                    .map(|&x| half::f16::from_f32(x))
                    .collect(),
            ),
            scale: None,
        };
        let q = quantize_int8(&w);
        let vars = vec![("a/weight".to_string(), w), ("b/weight".to_string(), q)];
        let mut buf = Vec::new();
        write_model_bin(
            &mut buf,
            "WhisperSpec",
            3,
            &vars,
            &[("c/weight".into(), "b/weight".into())],
        )
        .unwrap();
        let m = ModelBin::parse(Path::new("mem"), &buf).unwrap();
        assert_eq!(m.binary_version, 6);
        assert_eq!(
            m.get("a/weight").unwrap().to_f32(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let c = m.get("c/weight").unwrap();
        assert!(c.scale.is_some());
        assert!(m.contains("c/weight_scale"));
        // Every truncation is an error, never a panic.
        for cut in 0..buf.len() {
            assert!(ModelBin::parse(Path::new("mem"), &buf[..cut]).is_err());
        }
    }

    #[test]
    fn version_1_layout_parses() {
        // binary version 1: no spec name, item size + element count.
        let mut b = Vec::new();
        b.extend(1u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(6u16.to_le_bytes());
        b.extend(b"x/w16\0");
        b.push(1);
        b.extend(2u32.to_le_bytes());
        b.push(2);
        b.extend(2u32.to_le_bytes());
        b.extend(1000i16.to_le_bytes());
        b.extend((-500i16).to_le_bytes());
        let m = ModelBin::parse(Path::new("mem"), &b).unwrap();
        assert_eq!(m.get("x/w16").unwrap().to_f32(), vec![1.0, -0.5]);
    }
}
