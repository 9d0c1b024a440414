//! A minimal reader for the float32 initializers of an ONNX file (spec §8.1).
//!
//! ONNX files are protobuf messages. Only the path to the weights is walked:
//! `ModelProto.graph` (field 7) → `GraphProto.initializer` (field 5, repeated)
//! → `TensorProto` with `dims` (1), `data_type` (2), `float_data` (4), `name`
//! (8) and `raw_data` (9). Every other field is skipped by its wire type, so
//! the reader needs no schema and no protobuf crate. Every length is checked
//! against the bytes that remain: a truncated or corrupt file is an error,
//! never a panic.

use std::collections::HashMap;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: u64 = 1;

/// A float32 initializer: its shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions as stored (`[]` for a scalar).
    pub dims: Vec<usize>,
    /// `product(dims)` values.
    pub data: Vec<f32>,
}

/// What is wrong with the bytes, for [`crate::VadError::Format`].
pub type FormatError = String;

/// A name read from the file, for an error message: escaped (`{:?}`) and
/// at most 80 characters, so that every error stays one short line.
pub(crate) fn quote(name: &str) -> String {
    let mut s: String = name.chars().take(80).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// One protobuf field value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the (field number, value) pairs of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, FormatError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or("a varint runs past the end of its message")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a varint is longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("a field's length runs past the end of its message")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, FormatError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "field length overflows")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            t => return Err(format!("unsupported protobuf wire type {t}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// Parses one `TensorProto`; `None` for tensors that are not float32 (the
/// Silero graph also stores a few integer constants).
fn tensor(msg: &[u8]) -> Result<Option<(String, Tensor)>, FormatError> {
    let mut dims = Vec::new();
    let mut data_type = 0;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut floats = Vec::new();
    let mut f = Fields::new(msg);
    while let Some((field, value)) = f.next_field()? {
        match (field, value) {
            (1, Value::Varint(d)) => dims.push(d),
            (1, Value::Bytes(packed)) => {
                let mut p = Fields::new(packed);
                while p.pos < packed.len() {
                    dims.push(p.varint()?);
                }
            }
            (2, Value::Varint(t)) => data_type = t,
            (4, Value::Bytes(packed)) => floats.extend(
                packed
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            (8, Value::Bytes(n)) => {
                name = String::from_utf8(n.to_vec()).map_err(|_| "a tensor name is not UTF-8")?
            }
            (9, Value::Bytes(r)) => raw = Some(r),
            _ => {}
        }
    }
    if data_type != FLOAT {
        return Ok(None);
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| format!("tensor {}: dimension {d} too large", quote(&name)))
        })
        .collect::<Result<_, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("tensor {}: its shape overflows", quote(&name)))?;
    let data: Vec<f32> = match raw {
        Some(r) => r
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        None => floats,
    };
    if data.len() != count {
        return Err(format!(
            "tensor {}: its shape needs {count} values, the file holds {}",
            quote(&name),
            data.len()
        ));
    }
    Ok(Some((name, Tensor { dims, data })))
}

/// All float32 initializers of the ONNX model in `bytes`, by name.
pub fn read_initializers(bytes: &[u8]) -> Result<HashMap<String, Tensor>, FormatError> {
    let mut out = HashMap::new();
    let mut model = Fields::new(bytes);
    let mut saw_graph = false;
    while let Some((field, value)) = model.next_field()? {
        let (7, Value::Bytes(graph)) = (field, value) else {
            continue;
        };
        saw_graph = true;
        let mut g = Fields::new(graph);
        while let Some((gf, gv)) = g.next_field()? {
            if let (5, Value::Bytes(t)) = (gf, gv) {
                if let Some((name, tensor)) = tensor(t)? {
                    out.insert(name, tensor);
                }
            }
        }
    }
    if !saw_graph {
        return Err("no graph in the file (not an ONNX model)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(field: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// A model with one float tensor `[2, 3]` (packed dims, raw data) and
    /// one int64 tensor that must be skipped.
    fn tiny_model() -> Vec<u8> {
        let mut t = Vec::new();
        let mut dims = Vec::new();
        varint(2, &mut dims);
        varint(3, &mut dims);
        bytes_field(1, &dims, &mut t);
        varint(2 << 3, &mut t);
        varint(FLOAT, &mut t);
        bytes_field(8, b"w", &mut t);
        let raw: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        bytes_field(9, &raw, &mut t);
        let mut ints = Vec::new();
        varint(2 << 3, &mut ints);
        varint(7, &mut ints);
        bytes_field(8, b"i", &mut ints);
        let mut graph = Vec::new();
        bytes_field(1, b"node-bytes-ignored", &mut graph);
        bytes_field(5, &t, &mut graph);
        bytes_field(5, &ints, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        bytes_field(7, &graph, &mut model);
        model
    }

    #[test]
    fn reads_float_initializers() {
        let m = read_initializers(&tiny_model()).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["w"].dims, vec![2, 3]);
        assert_eq!(m["w"].data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let m = tiny_model();
        for cut in 1..m.len() {
            // Every prefix either fails cleanly or (where it happens to end on a
            // field boundary) parses; nothing panics.
            let _ = read_initializers(&m[..cut]);
        }
        assert!(read_initializers(&m[..m.len() - 3]).is_err());
        assert!(read_initializers(b"").is_err());
    }
}
