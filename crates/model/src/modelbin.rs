//! The `model.bin` reader (spec §2): every binary version 1–6, every dtype,
//! aliases. Memory-mapped for parsing; each tensor is copied once into an
//! aligned buffer of its own stored dtype (payloads are unaligned in the file,
//! spec §2.1), after which the mapping is dropped.

use crate::error::ModelError;
use crate::tensor::{DType, Tensor, TensorData};
use crate::text::quote;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The newest binary version this reader understands.
pub const MAX_BINARY_VERSION: u32 = 6;

/// The parsed contents of a `model.bin`.
#[derive(Debug, Clone)]
pub struct ModelBin {
    /// Where it was read from.
    pub path: PathBuf,
    /// Binary format version (1–6).
    pub binary_version: u32,
    /// Spec name ("WhisperSpec"; empty for version 1).
    pub spec_name: String,
    /// Spec revision (1 for version 1 files).
    pub spec_revision: u32,
    /// Variables by name; aliases point to the same tensor.
    vars: BTreeMap<String, Arc<Tensor>>,
    /// Alias name → target name, as stored.
    pub aliases: Vec<(String, String)>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: &str) -> ModelError {
        ModelError::Corrupt {
            path: self.path.to_path_buf(),
            msg: format!(
                "unexpected end of file at byte {} while reading {what}",
                self.pos
            ),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String, ModelError> {
        let n = self.u16(what)? as usize;
        if n == 0 {
            return Err(ModelError::Corrupt {
                path: self.path.to_path_buf(),
                msg: format!("zero-length string at byte {} ({what})", self.pos - 2),
            });
        }
        let b = self.take(n, what)?;
        // The last byte is a NUL terminator (spec §2.1).
        Ok(String::from_utf8_lossy(&b[..n - 1]).into_owned())
    }
}

impl ModelBin {
    /// Read and parse a model.bin file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only and dropped before this function
        // returns; every tensor is copied out of it.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, &map)
    }

    /// Parse model.bin bytes (`path` is used in error messages).
    pub fn parse(path: &Path, buf: &[u8]) -> Result<Self, ModelError> {
        let mut c = Cursor { buf, pos: 0, path };
        let corrupt = |msg: String| ModelError::Corrupt {
            path: path.to_path_buf(),
            msg,
        };
        let binary_version = c.u32("the binary version")?;
        if binary_version == 0 || binary_version > MAX_BINARY_VERSION {
            return Err(if binary_version > 1000 {
                corrupt(format!(
                    "not a CTranslate2 model.bin (header value {binary_version:#x})"
                ))
            } else {
                ModelError::Unsupported {
                    path: path.to_path_buf(),
                    msg: format!(
                        "model.bin binary version {binary_version} is newer than this vkwhisper supports ({MAX_BINARY_VERSION}): update vkwhisper"
                    ),
                }
            });
        }
        let (spec_name, spec_revision) = if binary_version >= 2 {
            let name = c.string("the spec name")?;
            let rev = c.u32("the spec revision")?;
            (name, rev)
        } else {
            (String::new(), 1)
        };
        if binary_version >= 2 && spec_name != "WhisperSpec" {
            // A name that is not an identifier is a damaged length or
            // damaged bytes, not another model type.
            if !spec_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(corrupt(format!(
                    "unreadable spec name {}",
                    quote(&spec_name)
                )));
            }
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                msg: format!(
                    "spec {} is not a Whisper model (expected \"WhisperSpec\"); convert a Whisper checkpoint with ct2-transformers-converter or vkwhisper convert",
                    quote(&spec_name)
                ),
            });
        }
        let num_vars = c.u32("the variable count")? as usize;
        let mut vars: BTreeMap<String, Arc<Tensor>> = BTreeMap::new();
        for _ in 0..num_vars {
            let name = c.string("a variable name")?;
            let q = quote(&name);
            let rank = c.u8(&format!("the rank of {q}"))? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32(&format!("the shape of {q}"))? as usize);
            }
            let numel = shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .ok_or_else(|| corrupt(format!("variable {q} has an impossible shape")))?;
            let (dtype, nbytes) = if binary_version >= 4 {
                let id = c.u8(&format!("the dtype of {q}"))?;
                let dtype = DType::from_id(id)
                    .ok_or_else(|| corrupt(format!("variable {q} has unknown dtype id {id}")))?;
                let nbytes = c.u32(&format!("the size of {q}"))? as usize;
                if numel.checked_mul(dtype.size()) != Some(nbytes) {
                    return Err(corrupt(format!(
                        "variable {q}: invalid payload size {nbytes} for shape {} of {}",
                        show_shape(&shape),
                        dtype.name()
                    )));
                }
                (dtype, nbytes)
            } else {
                let item = c.u8(&format!("the item size of {q}"))?;
                let count = c.u32(&format!("the element count of {q}"))? as usize;
                let dtype = match item {
                    4 => DType::F32,
                    2 => DType::I16,
                    1 => DType::I8,
                    _ => return Err(corrupt(format!("variable {q} has item size {item}"))),
                };
                if count != numel {
                    return Err(corrupt(format!(
                        "variable {q}: {count} elements for shape {}",
                        show_shape(&shape)
                    )));
                }
                (dtype, count * item as usize)
            };
            let payload = c.take(nbytes, &format!("the data of {q}"))?;
            if vars.contains_key(&name) {
                // CTranslate2 would keep one of the two silently; which one
                // the file meant is unknowable.
                return Err(corrupt(format!("variable {q} is stored twice")));
            }
            let data = TensorData::from_le_bytes(dtype, payload);
            vars.insert(
                name,
                Arc::new(Tensor {
                    shape,
                    data,
                    scale: None,
                }),
            );
        }
        let mut aliases: Vec<(String, String)> = Vec::new();
        if binary_version >= 3 {
            let n = c.u32("the alias count")? as usize;
            let mut seen = std::collections::HashSet::new();
            for _ in 0..n {
                let a = c.string("an alias name")?;
                let t = c.string("an alias target")?;
                if vars.contains_key(&a) || !seen.insert(a.clone()) {
                    return Err(corrupt(format!(
                        "alias {} names a variable that already exists",
                        quote(&a)
                    )));
                }
                aliases.push((a, t));
            }
        }
        if c.pos != buf.len() {
            return Err(corrupt(format!(
                "{} unexpected trailing bytes after the alias table",
                buf.len() - c.pos
            )));
        }
        Self::assemble(
            path,
            binary_version,
            spec_name,
            spec_revision,
            vars,
            aliases,
        )
    }

    /// Build a model from variables made elsewhere (e.g. mapped from a
    /// Hugging Face checkpoint), as if read from a version-6 file at `path`:
    /// `<name>_scale` variables are attached and aliases resolved (spec §2.5).
    pub fn from_variables(
        path: &Path,
        spec_name: &str,
        spec_revision: u32,
        variables: Vec<(String, Tensor)>,
        aliases: Vec<(String, String)>,
    ) -> Result<Self, ModelError> {
        let vars = variables
            .into_iter()
            .map(|(n, t)| (n, Arc::new(t)))
            .collect();
        Self::assemble(
            path,
            MAX_BINARY_VERSION,
            spec_name.to_string(),
            spec_revision,
            vars,
            aliases,
        )
    }

    fn assemble(
        path: &Path,
        binary_version: u32,
        spec_name: String,
        spec_revision: u32,
        mut vars: BTreeMap<String, Arc<Tensor>>,
        aliases: Vec<(String, String)>,
    ) -> Result<Self, ModelError> {
        attach_scales(&mut vars);
        // Aliases (spec §2.5): `A → T` also gives `A_scale → T_scale`.
        for (a, t) in &aliases {
            let target = vars.get(t).cloned().ok_or_else(|| ModelError::Corrupt {
                path: path.to_path_buf(),
                msg: format!("alias {} points to missing variable {}", quote(a), quote(t)),
            })?;
            vars.insert(a.clone(), target);
            if let Some(ts) = vars.get(&format!("{t}_scale")).cloned() {
                vars.insert(format!("{a}_scale"), ts);
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            binary_version,
            spec_name,
            spec_revision,
            vars,
            aliases,
        })
    }

    /// The variables as stored, sorted by name: aliases (and the `_scale`
    /// names they imply) are left out, `<name>_scale` variables are included.
    pub fn stored_variables(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        let skip: std::collections::HashSet<String> = self
            .aliases
            .iter()
            .flat_map(|(a, _)| [a.clone(), format!("{a}_scale")])
            .collect();
        self.vars
            .iter()
            .filter(move |(n, _)| !skip.contains(n.as_str()))
            .map(|(n, t)| (n.as_str(), t.as_ref()))
    }

    /// A variable by name, or an error naming the file and the variable.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.vars
            .get(name)
            .map(|t| t.as_ref())
            .ok_or_else(|| ModelError::MissingVariable {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// A shared handle to a variable, for backends that keep weights alive
    /// without copying them.
    pub fn get_arc(&self, name: &str) -> Result<Arc<Tensor>, ModelError> {
        self.vars
            .get(name)
            .cloned()
            .ok_or_else(|| ModelError::MissingVariable {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// A variable by name, if present.
    pub fn try_get(&self, name: &str) -> Option<&Tensor> {
        self.vars.get(name).map(|t| t.as_ref())
    }

    /// A variable, checked against an expected shape.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor, ModelError> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(ModelError::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                found: t.shape.clone(),
                expected: format!("{shape:?}"),
            });
        }
        Ok(t)
    }

    /// All variable names (aliases included), sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(|s| s.as_str())
    }

    /// Whether a variable exists.
    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// Check the values the forward pass will read: no NaN or infinity in
    /// any float tensor or quantisation scale (the error names the first such
    /// variable in name order), no zero scale, and one scale per row for
    /// int8 weights (a scalar for int16). Tensors are scanned in parallel;
    /// aliases are scanned once.
    pub fn check_values(&self) -> Result<(), ModelError> {
        use rayon::prelude::*;
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<(&str, &Tensor)> = self
            .vars
            .iter()
            .filter(|(_, t)| seen.insert(Arc::as_ptr(t)))
            .map(|(n, t)| (n.as_str(), t.as_ref()))
            .collect();
        if let Some((name, what)) = distinct
            .par_iter()
            .find_map_first(|&(n, t)| t.non_finite().map(|w| (n, w)))
        {
            return Err(ModelError::NonFinite {
                path: self.path.clone(),
                name: name.to_string(),
                what,
            });
        }
        for (name, t) in distinct {
            let Some(scale) = &t.scale else { continue };
            let rows = t.rows_cols().0;
            let ok_len = match t.data.dtype() {
                DType::I8 => scale.len() == rows || scale.len() == 1,
                _ => scale.len() == 1,
            };
            let corrupt = |msg: &str| ModelError::Corrupt {
                path: self.path.clone(),
                msg: format!("variable {}: {msg}", quote(&format!("{name}_scale"))),
            };
            if !ok_len {
                return Err(corrupt(&format!(
                    "{} scales for a {} weight of {rows} rows",
                    scale.len(),
                    t.data.dtype().name()
                )));
            }
            if scale.contains(&0.0) {
                return Err(corrupt("a quantisation scale is zero"));
            }
        }
        Ok(())
    }

    /// Bytes held by all distinct tensors.
    pub fn resident_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.vars
            .values()
            .filter(|t| seen.insert(Arc::as_ptr(t)))
            .map(|t| t.data.len() * t.data.dtype().size())
            .sum()
    }
}

/// A shape for an error message: at most 8 dimensions are listed (a rank
/// read from a damaged file can be 255).
fn show_shape(shape: &[usize]) -> String {
    if shape.len() <= 8 {
        format!("{shape:?}")
    } else {
        format!("{:?} (rank {})", &shape[..8], shape.len())
    }
}

/// Give every quantised weight its `<name>_scale` (spec §2.6); int16 scales
/// are scalars, int8 scales one per row.
fn attach_scales(vars: &mut BTreeMap<String, Arc<Tensor>>) {
    let scaled: Vec<(String, Vec<f32>)> = vars
        .iter()
        .filter_map(|(name, t)| {
            let base = name.strip_suffix("_scale")?;
            vars.get(base)?;
            Some((base.to_string(), t.to_f32()))
        })
        .collect();
    for (base, scale) in scaled {
        if let Some(t) = vars.get_mut(&base) {
            if matches!(t.data.dtype(), DType::I8 | DType::I16) {
                Arc::make_mut(t).scale = Some(scale);
            }
        }
    }
}
