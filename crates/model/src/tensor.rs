//! In-memory tensors of a model.bin, kept in their stored (compact) dtype.

use half::{bf16, f16};

/// Element types of model.bin (spec §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// Quantised int8 (with a per-row `_scale`) or a small integer attribute.
    I8,
    /// Quantised int16 (with a scalar `_scale`) or an integer attribute.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    /// The dtype for a model.bin dtype id (binary version ≥ 4).
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// The model.bin dtype id.
    pub fn id(self) -> u8 {
        match self {
            Self::F32 => 0,
            Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 => 3,
            Self::F16 => 4,
            Self::BF16 => 5,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    /// Lower-case name as CTranslate2 spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }
}

/// Owned, aligned element storage.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// float32 elements.
    F32(Vec<f32>),
    /// int8 elements.
    I8(Vec<i8>),
    /// int16 elements.
    I16(Vec<i16>),
    /// int32 elements.
    I32(Vec<i32>),
    /// float16 elements.
    F16(Vec<f16>),
    /// bfloat16 elements.
    BF16(Vec<bf16>),
}

impl TensorData {
    /// Decode little-endian bytes of `dtype` into owned, aligned elements.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Self {
        fn conv<T, const N: usize>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        }
        match dtype {
            DType::F32 => Self::F32(conv(bytes, f32::from_le_bytes)),
            DType::I8 => Self::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::I16 => Self::I16(conv(bytes, i16::from_le_bytes)),
            DType::I32 => Self::I32(conv(bytes, i32::from_le_bytes)),
            DType::F16 => Self::F16(conv(bytes, |a| f16::from_bits(u16::from_le_bytes(a)))),
            DType::BF16 => Self::BF16(conv(bytes, |a| bf16::from_bits(u16::from_le_bytes(a)))),
        }
    }

    /// Little-endian bytes (for writing model.bin).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Self::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
            Self::BF16(v) => v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        }
    }

    /// The dtype of these elements.
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(_) => DType::F32,
            Self::I8(_) => DType::I8,
            Self::I16(_) => DType::I16,
            Self::I32(_) => DType::I32,
            Self::F16(_) => DType::F16,
            Self::BF16(_) => DType::BF16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F16(v) => v.len(),
            Self::BF16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One model variable: shape, data and (for quantised weights) its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Row-major shape, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements in their stored dtype.
    pub data: TensorData,
    /// Quantisation scale (`<name>_scale`): per row for int8, scalar for int16.
    pub scale: Option<Vec<f32>>,
}

/// A borrowed view of a 2-D weight matrix `[rows, cols]` in its stored type,
/// ready for a matmul kernel (`y = x · Wᵀ`).
#[derive(Debug, Clone, Copy)]
pub enum WeightView<'a> {
    /// float32 weights.
    F32(&'a [f32]),
    /// float16 weights.
    F16(&'a [f16]),
    /// bfloat16 weights.
    BF16(&'a [bf16]),
    /// int8 weights with one scale per row (`W ≈ q / scale`, spec §2.6).
    I8 {
        /// Quantised values.
        data: &'a [i8],
        /// Per-row scales.
        scale: &'a [f32],
    },
}

impl Tensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Rows (dim 0) and columns (product of the other dims) of a weight.
    pub fn rows_cols(&self) -> (usize, usize) {
        let rows = self.shape.first().copied().unwrap_or(1);
        let cols = self.numel().checked_div(rows).unwrap_or(0);
        (rows, cols)
    }

    /// The value of a scalar integer attribute (e.g. `num_heads`).
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.numel() != 1 {
            return None;
        }
        Some(match &self.data {
            TensorData::I8(v) => i64::from(v[0]),
            TensorData::I16(v) => i64::from(v[0]),
            TensorData::I32(v) => i64::from(v[0]),
            TensorData::F32(v) => v[0] as i64,
            TensorData::F16(v) => v[0].to_f32() as i64,
            TensorData::BF16(v) => v[0].to_f32() as i64,
        })
    }

    /// A weight view for the matmul kernels. int16 weights have no direct
    /// kernel and are dequantised by [`Tensor::to_f32`] at load instead.
    pub fn view(&self) -> Option<WeightView<'_>> {
        Some(match &self.data {
            TensorData::F32(v) => WeightView::F32(v),
            TensorData::F16(v) => WeightView::F16(v),
            TensorData::BF16(v) => WeightView::BF16(v),
            TensorData::I8(v) => WeightView::I8 {
                data: v,
                scale: self.scale.as_deref()?,
            },
            TensorData::I16(_) | TensorData::I32(_) => return None,
        })
    }

    /// Whether any value (or quantisation scale) is NaN or infinite:
    /// `Some("NaN")` or `Some("infinite")`, `None` for a finite tensor.
    /// Integer tensors are always finite. Large tensors are scanned in
    /// parallel, on the bit patterns (an all-ones exponent), which the
    /// compiler vectorises.
    pub fn non_finite(&self) -> Option<&'static str> {
        use rayon::prelude::*;
        fn bad_bits<T: Sync>(v: &[T], exp: u32, bits: impl Fn(&T) -> u32 + Sync) -> bool {
            // No early exit inside a block, so the loop vectorises.
            v.par_chunks(1 << 16)
                .any(|c| c.iter().fold(false, |acc, x| acc | (bits(x) & exp == exp)))
        }
        let any = match &self.data {
            TensorData::F32(v) => bad_bits(v, 0x7f80_0000, |x| x.to_bits()),
            TensorData::F16(v) => bad_bits(v, 0x7c00, |x| u32::from(x.to_bits())),
            TensorData::BF16(v) => bad_bits(v, 0x7f80, |x| u32::from(x.to_bits())),
            TensorData::I8(_) | TensorData::I16(_) | TensorData::I32(_) => false,
        } || self
            .scale
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| !x.is_finite()));
        if !any {
            return None;
        }
        // Rare: say which kind (a second, slow pass).
        let nan = match &self.data {
            TensorData::F32(v) => v.iter().any(|x| x.is_nan()),
            TensorData::F16(v) => v.iter().any(|x| x.is_nan()),
            TensorData::BF16(v) => v.iter().any(|x| x.is_nan()),
            _ => false,
        } || self
            .scale
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x.is_nan()));
        Some(if nan { "NaN" } else { "infinite" })
    }

    /// Dequantise / widen to float32 (spec §2.6: divide by the scale).
    pub fn to_f32(&self) -> Vec<f32> {
        let (rows, cols) = self.rows_cols();
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::I8(v) => match &self.scale {
                Some(s) if s.len() == rows && rows > 0 => v
                    .chunks(cols.max(1))
                    .zip(s)
                    .flat_map(|(row, &sc)| row.iter().map(move |&q| f32::from(q) / sc))
                    .collect(),
                Some(s) if s.len() == 1 => v.iter().map(|&q| f32::from(q) / s[0]).collect(),
                _ => v.iter().map(|&q| f32::from(q)).collect(),
            },
            TensorData::I16(v) => {
                // Old int16 models without a saved scale use a global scale of 1000.
                let sc = self
                    .scale
                    .as_ref()
                    .and_then(|s| s.first().copied())
                    .unwrap_or(1000.0);
                v.iter().map(|&q| f32::from(q) / sc).collect()
            }
            TensorData::I32(v) => v.iter().map(|&q| q as f32).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_dequantises_by_dividing_per_row() {
        let t = Tensor {
            shape: vec![2, 2],
            data: TensorData::I8(vec![127, -64, 10, 20]),
            scale: Some(vec![127.0, 10.0]),
        };
        assert_eq!(t.to_f32(), vec![1.0, -64.0 / 127.0, 1.0, 2.0]);
    }

    #[test]
    fn non_finite_values_are_found_in_every_float_type() {
        let f = |data: TensorData| Tensor {
            shape: vec![data.len()],
            data,
            scale: None,
        };
        let mut v = vec![0.5f32; 200_000];
        assert_eq!(f(TensorData::F32(v.clone())).non_finite(), None);
        v[123_457] = f32::NAN;
        assert_eq!(f(TensorData::F32(v.clone())).non_finite(), Some("NaN"));
        v[123_457] = f32::NEG_INFINITY;
        assert_eq!(f(TensorData::F32(v)).non_finite(), Some("infinite"));
        let h = vec![f16::ONE, f16::MAX, f16::INFINITY];
        assert_eq!(f(TensorData::F16(h)).non_finite(), Some("infinite"));
        let b = vec![bf16::ONE, bf16::NAN];
        assert_eq!(f(TensorData::BF16(b)).non_finite(), Some("NaN"));
        let q = Tensor {
            shape: vec![1, 2],
            data: TensorData::I8(vec![1, 2]),
            scale: Some(vec![f32::INFINITY]),
        };
        assert_eq!(q.non_finite(), Some("infinite"));
    }

    #[test]
    fn bytes_round_trip_every_dtype() {
        for d in [
            DType::F32,
            DType::I8,
            DType::I16,
            DType::I32,
            DType::F16,
            DType::BF16,
        ] {
            let bytes: Vec<u8> = (0..(8 * d.size()) as u8).collect();
            let t = TensorData::from_le_bytes(d, &bytes);
            assert_eq!(t.dtype(), d);
            assert_eq!(t.len(), 8);
            assert_eq!(t.to_le_bytes(), bytes);
        }
    }
}
