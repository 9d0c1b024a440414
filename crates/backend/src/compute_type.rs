//! Compute types, named as CTranslate2 names them (`compute_type=`).

use crate::BackendError;
use std::fmt;
use std::str::FromStr;

/// How a backend stores weights and computes, with CTranslate2's names.
///
/// On the CPU (CTranslate2 converts the same way, spec §2.6 "What CT2 does at
/// run time"): the `int8_*` types all run int8 matmuls with float32 for
/// everything else, since float16/bfloat16 arithmetic has no CPU speed
/// advantage; `float16`/`bfloat16` keep the weights in that type (half the
/// memory traffic of float32) and accumulate in float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ComputeType {
    /// The fastest type that keeps faster-whisper's accuracy on this device
    /// (int8 on a CPU with int8 SIMD kernels).
    Auto,
    /// The type the model is stored in (CTranslate2's `default`).
    #[default]
    Default,
    /// int8 weights and activations in the Linear layers, float32 elsewhere.
    Int8,
    /// Same as `Int8` (float32 for the non-quantised layers).
    Int8Float32,
    /// int8 + float16 elsewhere; float32 elsewhere on the CPU.
    Int8Float16,
    /// int8 + bfloat16 elsewhere; float32 elsewhere on the CPU.
    Int8Bfloat16,
    /// int16 weights: not implemented by any backend.
    Int16,
    /// float16 weights, float32 accumulation.
    Float16,
    /// bfloat16 weights, float32 accumulation.
    Bfloat16,
    /// float32 compute (weights widened from their stored type on the fly).
    Float32,
}

impl ComputeType {
    /// Every type, in CTranslate2's spelling.
    pub const NAMES: [&'static str; 10] = [
        "auto",
        "default",
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ];

    /// CTranslate2's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether the Linear layers run on int8.
    pub fn is_int8(self) -> bool {
        matches!(
            self,
            Self::Int8 | Self::Int8Float32 | Self::Int8Float16 | Self::Int8Bfloat16
        )
    }
}

impl fmt::Display for ComputeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ComputeType {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, BackendError> {
        use ComputeType::*;
        const ALL: [ComputeType; 10] = [
            Auto,
            Default,
            Int8,
            Int8Float32,
            Int8Float16,
            Int8Bfloat16,
            Int16,
            Float16,
            Bfloat16,
            Float32,
        ];
        ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            BackendError::Unsupported(format!(
                "compute type '{s}' is unknown: use one of {}",
                Self::NAMES.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ComputeType::NAMES {
            let c: ComputeType = name.parse().unwrap();
            assert_eq!(c.name(), name);
            assert_eq!(c.to_string(), name);
        }
        let err = "int4".parse::<ComputeType>().unwrap_err().to_string();
        assert!(
            err.contains("'int4'") && err.contains("int8_float32"),
            "{err}"
        );
        assert!(ComputeType::Int8Float16.is_int8() && !ComputeType::Float16.is_int8());
    }
}
