//! Export to whisper.cpp's model file (`ggml-*.bin`), so that whisper.cpp
//! can run the very weights vkwhisper runs: the device check's whisper.cpp
//! anchor (issue 14) measures it on the same synthetic model as vkwhisper
//! and CTranslate2, since whisper.cpp cannot read CTranslate2 models.
//!
//! The file (all little-endian) is: the magic `0x67676d6c`; eleven `i32`
//! hyper-parameters (vocabulary, audio context, width, heads, layers, text
//! context, width, heads, layers, mel bins, ftype); the mel filterbank
//! (`n_mels`, `n_fft` = 201, then `n_mels·201` `f32`); the vocabulary
//! (count, then per token a `u32` length and its bytes); then the tensors,
//! each `n_dims`, name length and type (`i32`, 0 = f32, 1 = f16), the
//! dimensions fastest first, the name and the data, unpadded. whisper.cpp
//! names the tensors after OpenAI's checkpoint and keeps Q, K and V apart,
//! where CTranslate2 fuses them (spec §3.2): they are split here, and the
//! zero key biases CTranslate2 stores are dropped (whisper.cpp's keys have
//! none). Matrices and convolutions are float16 (ftype 1) or float32
//! (ftype 0); biases, LayerNorms and position tables are always float32.

use crate::{HParams, ModelBin, ModelError, Tensor};
use half::f16;
use std::io::Write;
use std::ops::Range;

/// The magic number that opens a ggml file ("ggml" as a little-endian u32).
pub const MAGIC: u32 = 0x6767_6d6c;

/// Frequency bins of the mel filterbank rows (n_fft / 2 + 1 for n_fft 400).
pub const N_FFT_BINS: usize = 201;

/// What the big matrices are stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlFloat {
    /// ftype 0: every tensor float32.
    F32,
    /// ftype 1: matrices and convolutions float16.
    F16,
}

impl GgmlFloat {
    fn ftype(self) -> i32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
        }
    }
}

/// How a tensor is stored: matrices (and convolutions) in the file's
/// float type, the rest float32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Matrix,
    Vector,
}

/// One tensor of the ggml file and where its values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// whisper.cpp's name.
    name: String,
    /// The CTranslate2 variable.
    source: String,
    /// The rows of `source` (first dimension) it takes; the whole tensor if
    /// `None`.
    rows: Option<Range<usize>>,
    /// Dimensions, fastest first (ggml's `ne`).
    ne: Vec<usize>,
    kind: Kind,
}

/// Builds the tensor list: whisper.cpp's names on CTranslate2's variables.
struct Entries {
    d: usize,
    v: Vec<Entry>,
}

impl Entries {
    /// One tensor; matrices (and convolutions) are those with two or more
    /// dimensions other than biases and position tables.
    fn put(&mut self, name: String, source: String, rows: Option<Range<usize>>, ne: Vec<usize>) {
        let kind = if ne.len() >= 2 && !name.ends_with("bias") && !name.contains("positional") {
            Kind::Matrix
        } else {
            Kind::Vector
        };
        self.v.push(Entry {
            name,
            source,
            rows,
            ne,
            kind,
        });
    }

    /// A linear layer `[o, i]` (its rows `rows` of `from`), with its bias
    /// unless it is a key projection.
    fn linear(&mut self, to: &str, from: &str, rows: Option<Range<usize>>, (o, i): (usize, usize)) {
        let bias = !to.ends_with(".key");
        self.put(
            format!("{to}.weight"),
            format!("{from}/weight"),
            rows.clone(),
            vec![i, o],
        );
        if bias {
            self.put(format!("{to}.bias"), format!("{from}/bias"), rows, vec![o]);
        }
    }

    /// The `k`-th `d`-row block of a fused projection (spec §3.2: Q, K, V).
    fn part(&self, k: usize) -> Option<Range<usize>> {
        Some(k * self.d..(k + 1) * self.d)
    }

    fn norm(&mut self, to: &str, from: &str) {
        let d = self.d;
        self.put(
            format!("{to}.weight"),
            format!("{from}/gamma"),
            None,
            vec![d],
        );
        self.put(format!("{to}.bias"), format!("{from}/beta"), None, vec![d]);
    }

    /// The FFN and self-attention, which both sides' layers have.
    fn block(&mut self, to: &str, from: &str, ffn: usize) {
        let d = self.d;
        self.norm(&format!("{to}.mlp_ln"), &format!("{from}/ffn/layer_norm"));
        self.linear(
            &format!("{to}.mlp.0"),
            &format!("{from}/ffn/linear_0"),
            None,
            (ffn, d),
        );
        self.linear(
            &format!("{to}.mlp.2"),
            &format!("{from}/ffn/linear_1"),
            None,
            (d, ffn),
        );
        self.norm(
            &format!("{to}.attn_ln"),
            &format!("{from}/self_attention/layer_norm"),
        );
        let qkv = format!("{from}/self_attention/linear_0");
        for (k, name) in ["query", "key", "value"].into_iter().enumerate() {
            self.linear(&format!("{to}.attn.{name}"), &qkv, self.part(k), (d, d));
        }
        self.linear(
            &format!("{to}.attn.out"),
            &format!("{from}/self_attention/linear_1"),
            None,
            (d, d),
        );
    }
}

/// Every tensor whisper.cpp's loader creates, mapped onto the CTranslate2
/// variables (spec §3.2): 11 + 15 per encoder layer + 24 per decoder layer.
fn entries(hp: &HParams) -> Vec<Entry> {
    let d = hp.d_model;
    let mut e = Entries { d, v: Vec::new() };
    let s = String::from;
    e.put(
        s("encoder.positional_embedding"),
        s("encoder/position_encodings/encodings"),
        None,
        vec![d, hp.n_audio_ctx],
    );
    for (i, inputs) in [(1, hp.n_mels), (2, d)] {
        e.put(
            format!("encoder.conv{i}.weight"),
            format!("encoder/conv{i}/weight"),
            None,
            vec![3, inputs, d],
        );
        e.put(
            format!("encoder.conv{i}.bias"),
            format!("encoder/conv{i}/bias"),
            None,
            vec![1, d],
        );
    }
    e.norm("encoder.ln_post", "encoder/layer_norm");
    for l in 0..hp.encoder_layers {
        e.block(
            &format!("encoder.blocks.{l}"),
            &format!("encoder/layer_{l}"),
            hp.d_ffn,
        );
    }
    e.put(
        s("decoder.positional_embedding"),
        s("decoder/position_encodings/encodings"),
        None,
        vec![d, hp.n_text_ctx],
    );
    e.put(
        s("decoder.token_embedding.weight"),
        s("decoder/embeddings/weight"),
        None,
        vec![d, hp.n_vocab],
    );
    e.norm("decoder.ln", "decoder/layer_norm");
    for l in 0..hp.decoder_layers {
        let (to, from) = (format!("decoder.blocks.{l}"), format!("decoder/layer_{l}"));
        e.block(&to, &from, hp.d_ffn);
        e.norm(
            &format!("{to}.cross_attn_ln"),
            &format!("{from}/attention/layer_norm"),
        );
        let x = format!("{to}.cross_attn");
        e.linear(
            &format!("{x}.query"),
            &format!("{from}/attention/linear_0"),
            None,
            (d, d),
        );
        let kv = format!("{from}/attention/linear_1");
        e.linear(&format!("{x}.key"), &kv, e.part(0), (d, d));
        e.linear(&format!("{x}.value"), &kv, e.part(1), (d, d));
        e.linear(
            &format!("{x}.out"),
            &format!("{from}/attention/linear_2"),
            None,
            (d, d),
        );
    }
    e.v
}

/// GPT-2's byte-level alphabet reversed: the byte each vocabulary character
/// stands for (printable Latin-1 stands for itself, the other 68 bytes are
/// U+0100 onwards, in byte order).
fn byte_of_char() -> std::collections::HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 0u32;
    (0..=255u8)
        .map(|b| {
            let c = if printable(b) {
                char::from(b)
            } else {
                next += 1;
                char::from_u32(255 + next).unwrap_or(char::REPLACEMENT_CHARACTER)
            };
            (c, b)
        })
        .collect()
}

/// The bytes a vocabulary string stands for (characters outside the
/// byte-level alphabet, as in special tokens, are kept as UTF-8).
fn token_bytes(token: &str, map: &std::collections::HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match map.get(&c) {
            Some(&b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// Why an export failed: the model (named by its file), or writing the
/// output, which the caller names (`write_ggml` only sees a writer).
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    /// The model lacks something the file needs.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Writing the output failed.
    #[error("cannot write the whisper.cpp file: {0}")]
    Write(#[from] std::io::Error),
}

fn bad(m: &ModelBin, msg: String) -> GgmlError {
    GgmlError::Model(ModelError::Unsupported {
        path: m.path.clone(),
        msg,
    })
}

/// Write `m` as a whisper.cpp model file.
///
/// `tokens` are the vocabulary strings whisper.cpp stores (its converter
/// stores the text tokens and `<|endoftext|>`; it names the special tokens
/// after them itself), `mel_filters` the `[n_mels, 201]` filterbank
/// (whisper.cpp computes its spectrogram with the file's). Returns the
/// bytes written. The values are converted tensor by tensor, so a
/// large-v3 needs one matrix's worth of memory beyond the model.
pub fn write_ggml(
    out: &mut impl Write,
    m: &ModelBin,
    hp: &HParams,
    tokens: &[String],
    mel_filters: &[f32],
    float: GgmlFloat,
) -> Result<u64, GgmlError> {
    if hp.encoder_heads != hp.decoder_heads {
        return Err(bad(
            m,
            "whisper.cpp needs the same number of heads on both sides".into(),
        ));
    }
    if hp.encoder_layers == 0 || hp.decoder_layers == 0 {
        return Err(bad(m, "whisper.cpp needs layers on both sides".into()));
    }
    if mel_filters.len() != hp.n_mels * N_FFT_BINS {
        return Err(bad(
            m,
            format!(
                "the mel filterbank has {} values, expected {} x {N_FFT_BINS}",
                mel_filters.len(),
                hp.n_mels
            ),
        ));
    }
    let mut w = Counter { out, n: 0 };
    let i32s = |w: &mut Counter<_>, v: &[usize]| -> std::io::Result<()> {
        for &x in v {
            let x = i32::try_from(x).map_err(|_| std::io::Error::other("value beyond i32"))?;
            w.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    };
    w.write_all(&MAGIC.to_le_bytes())?;
    i32s(
        &mut w,
        &[
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.d_model,
            hp.encoder_heads,
            hp.encoder_layers,
            hp.n_text_ctx,
            hp.d_model,
            hp.decoder_heads,
            hp.decoder_layers,
            hp.n_mels,
        ],
    )?;
    w.write_all(&float.ftype().to_le_bytes())?;
    i32s(&mut w, &[hp.n_mels, N_FFT_BINS])?;
    for x in mel_filters {
        w.write_all(&x.to_le_bytes())?;
    }
    let map = byte_of_char();
    i32s(&mut w, &[tokens.len()])?;
    for t in tokens {
        let b = token_bytes(t, &map);
        w.write_all(&(b.len() as u32).to_le_bytes())?;
        w.write_all(&b)?;
    }
    for e in entries(hp) {
        let t = m.get(&e.source)?;
        let values = slice_rows(m, &e, t)?;
        let numel: usize = e.ne.iter().product();
        if values.len() != numel {
            return Err(ModelError::ShapeMismatch {
                path: m.path.clone(),
                name: e.source.clone(),
                found: t.shape.clone(),
                expected: format!("{numel} values for whisper.cpp's {}", e.name),
            }
            .into());
        }
        let half = e.kind == Kind::Matrix && float == GgmlFloat::F16;
        i32s(&mut w, &[e.ne.len(), e.name.len(), usize::from(half)])?;
        i32s(&mut w, &e.ne)?;
        w.write_all(e.name.as_bytes())?;
        let bytes: Vec<u8> = if half {
            values
                .iter()
                .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                .collect()
        } else {
            values.iter().flat_map(|&x| x.to_le_bytes()).collect()
        };
        w.write_all(&bytes)?;
    }
    Ok(w.n)
}

/// The values of `e` as float32: the whole tensor, or its rows `e.rows`.
fn slice_rows(m: &ModelBin, e: &Entry, t: &Tensor) -> Result<Vec<f32>, ModelError> {
    let all = t.to_f32();
    let Some(r) = &e.rows else {
        return Ok(all);
    };
    let rows = t.shape.first().copied().unwrap_or(0);
    if r.end > rows || rows == 0 {
        return Err(ModelError::ShapeMismatch {
            path: m.path.clone(),
            name: e.source.clone(),
            found: t.shape.clone(),
            expected: format!("at least {} rows", r.end),
        });
    }
    let width = all.len() / rows;
    Ok(all[r.start * width..r.end * width].to_vec())
}

/// Counts the bytes written through it.
struct Counter<'a, W: Write> {
    out: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.out.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorData;

    /// A two-layer model of width 8 whose every value says where it is, so
    /// a misplaced row shows.
    fn model() -> (ModelBin, HParams) {
        let (d, f, mels, vocab) = (8, 32, 4, 51864);
        let mut vars: Vec<(String, Tensor)> = Vec::new();
        let mut next = 0f32;
        let mut put = |name: &str, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| {
                    next += 1.0;
                    next
                })
                .collect();
            vars.push((
                name.to_string(),
                Tensor {
                    shape: shape.to_vec(),
                    data: TensorData::F32(v),
                    scale: None,
                },
            ));
        };
        put("encoder/conv1/weight", &[d, mels, 3]);
        put("encoder/conv1/bias", &[d]);
        put("encoder/conv2/weight", &[d, d, 3]);
        put("encoder/conv2/bias", &[d]);
        put("encoder/position_encodings/encodings", &[1500, d]);
        put("decoder/position_encodings/encodings", &[448, d]);
        put("decoder/embeddings/weight", &[vocab, d]);
        for side in ["encoder", "decoder"] {
            put(&format!("{side}/layer_norm/gamma"), &[d]);
            put(&format!("{side}/layer_norm/beta"), &[d]);
            for l in 0..2 {
                let p = format!("{side}/layer_{l}");
                let mut lin = |n: &str, o: usize, i: usize| {
                    put(&format!("{p}/{n}/weight"), &[o, i]);
                    put(&format!("{p}/{n}/bias"), &[o]);
                };
                lin("self_attention/linear_0", 3 * d, d);
                lin("self_attention/linear_1", d, d);
                lin("ffn/linear_0", f, d);
                lin("ffn/linear_1", d, f);
                if side == "decoder" {
                    lin("attention/linear_0", d, d);
                    lin("attention/linear_1", 2 * d, d);
                    lin("attention/linear_2", d, d);
                }
                let norms: &[&str] = if side == "decoder" {
                    &["self_attention", "ffn", "attention"]
                } else {
                    &["self_attention", "ffn"]
                };
                for n in norms {
                    put(&format!("{p}/{n}/layer_norm/gamma"), &[d]);
                    put(&format!("{p}/{n}/layer_norm/beta"), &[d]);
                }
            }
        }
        for side in ["encoder", "decoder"] {
            vars.push((
                format!("{side}/num_heads"),
                Tensor {
                    shape: vec![],
                    data: TensorData::I16(vec![2]),
                    scale: None,
                },
            ));
        }
        let m = ModelBin::from_variables(
            std::path::Path::new("model.bin"),
            "WhisperSpec",
            3,
            vars,
            vec![],
        )
        .expect("model");
        let hp = HParams::infer(&m).expect("hparams");
        (m, hp)
    }

    /// What a reader of the file sees: header values, filterbank, tokens
    /// and (name, ne, type, values as f32) per tensor.
    struct Parsed {
        header: Vec<i32>,
        filters: Vec<f32>,
        tokens: Vec<Vec<u8>>,
        tensors: Vec<(String, Vec<usize>, i32, Vec<f32>)>,
    }

    /// Reads the file front to back.
    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (s, rest) = self.0.split_at(n);
            self.0 = rest;
            s
        }
        fn i32(&mut self) -> i32 {
            i32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
        }
        fn f32s(&mut self, n: usize) -> Vec<f32> {
            self.take(4 * n)
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        }
    }

    fn parse(b: &[u8]) -> Parsed {
        let mut c = Cursor(b);
        assert_eq!(c.i32() as u32, MAGIC);
        let header: Vec<i32> = (0..11).map(|_| c.i32()).collect();
        let (n_mel, n_fft) = (c.i32() as usize, c.i32() as usize);
        let filters = c.f32s(n_mel * n_fft);
        let n_tok = c.i32() as usize;
        let tokens = (0..n_tok)
            .map(|_| {
                let len = c.i32() as usize;
                c.take(len).to_vec()
            })
            .collect();
        let mut tensors = Vec::new();
        while !c.0.is_empty() {
            let (dims, len, ty) = (c.i32() as usize, c.i32() as usize, c.i32());
            let ne: Vec<usize> = (0..dims).map(|_| c.i32() as usize).collect();
            let name = String::from_utf8(c.take(len).to_vec()).expect("utf-8 name");
            let n: usize = ne.iter().product();
            let values = if ty == 1 {
                c.take(2 * n)
                    .chunks(2)
                    .map(|h| f16::from_le_bytes([h[0], h[1]]).to_f32())
                    .collect()
            } else {
                c.f32s(n)
            };
            tensors.push((name, ne, ty, values));
        }
        Parsed {
            header,
            filters,
            tokens,
            tensors,
        }
    }

    fn write(float: GgmlFloat) -> (ModelBin, Parsed) {
        let (m, hp) = model();
        let filters: Vec<f32> = (0..hp.n_mels * N_FFT_BINS).map(|i| i as f32).collect();
        let tokens = vec!["Ġthe".to_string(), "Ċ".into(), "<|endoftext|>".into()];
        let mut buf = Vec::new();
        let n = write_ggml(&mut buf, &m, &hp, &tokens, &filters, float).expect("write");
        assert_eq!(n as usize, buf.len());
        let p = parse(&buf);
        assert_eq!(p.filters, filters);
        (m, p)
    }

    #[test]
    fn header_and_vocabulary_are_whisper_cpp_s() {
        let (_, p) = write(GgmlFloat::F16);
        // vocab, audio ctx, width, heads, layers, text ctx, width, heads, layers, mels, ftype
        assert_eq!(p.header, [51864, 1500, 8, 2, 2, 448, 8, 2, 2, 4, 1]);
        // Byte-level characters become their bytes: Ġ is the space, Ċ the newline.
        assert_eq!(
            p.tokens,
            [b" the".to_vec(), b"\n".to_vec(), b"<|endoftext|>".to_vec()]
        );
    }

    #[test]
    fn every_tensor_whisper_cpp_loads_with_its_shape_and_type() {
        let (_, p) = write(GgmlFloat::F16);
        // whisper.cpp's loader: 11 + 15 per encoder layer + 24 per decoder layer.
        assert_eq!(p.tensors.len(), 11 + 15 * 2 + 24 * 2);
        let names: std::collections::HashSet<_> = p.tensors.iter().map(|t| &t.0).collect();
        assert_eq!(names.len(), p.tensors.len(), "a name twice");
        let find = |n: &str| p.tensors.iter().find(|t| t.0 == n).expect(n);
        assert_eq!(find("encoder.conv1.weight").1, [3, 4, 8]);
        assert_eq!(find("encoder.conv1.weight").2, 1);
        assert_eq!(find("encoder.conv2.bias").1, [1, 8]);
        assert_eq!(find("encoder.conv2.bias").2, 0);
        assert_eq!(find("encoder.positional_embedding").1, [8, 1500]);
        assert_eq!(find("encoder.positional_embedding").2, 0);
        assert_eq!(find("decoder.token_embedding.weight").1, [8, 51864]);
        assert_eq!(find("decoder.token_embedding.weight").2, 1);
        assert_eq!(find("encoder.blocks.1.mlp.0.weight").1, [8, 32]);
        assert_eq!(find("encoder.blocks.1.mlp.2.weight").1, [32, 8]);
        assert_eq!(find("decoder.blocks.0.cross_attn_ln.bias").2, 0);
        assert!(p.tensors.iter().all(|t| !t.0.contains("key.bias")));
        let (_, p32) = write(GgmlFloat::F32);
        assert_eq!(p32.header[10], 0);
        assert!(p32.tensors.iter().all(|t| t.2 == 0));
    }

    #[test]
    fn fused_projections_split_into_their_rows() {
        let (m, p) = write(GgmlFloat::F32);
        let find = |n: &str| &p.tensors.iter().find(|t| t.0 == n).expect(n).3;
        let src = |n: &str| m.get(n).expect(n).to_f32();
        let qkv = src("decoder/layer_1/self_attention/linear_0/weight");
        let qkv_b = src("decoder/layer_1/self_attention/linear_0/bias");
        assert_eq!(find("decoder.blocks.1.attn.query.weight"), &qkv[..64]);
        assert_eq!(find("decoder.blocks.1.attn.key.weight"), &qkv[64..128]);
        assert_eq!(find("decoder.blocks.1.attn.value.weight"), &qkv[128..]);
        assert_eq!(find("decoder.blocks.1.attn.value.bias"), &qkv_b[16..]);
        let kv = src("decoder/layer_0/attention/linear_1/weight");
        assert_eq!(find("decoder.blocks.0.cross_attn.key.weight"), &kv[..64]);
        assert_eq!(find("decoder.blocks.0.cross_attn.value.weight"), &kv[64..]);
        assert_eq!(
            find("encoder.blocks.0.mlp_ln.weight"),
            &src("encoder/layer_0/ffn/layer_norm/gamma")
        );
        assert_eq!(
            find("encoder.ln_post.bias"),
            &src("encoder/layer_norm/beta")
        );
    }

    #[test]
    fn a_wrong_filterbank_or_missing_variable_is_an_error() {
        let (m, hp) = model();
        let err = write_ggml(&mut Vec::new(), &m, &hp, &[], &[0.0; 3], GgmlFloat::F16)
            .expect_err("short filterbank");
        assert!(err.to_string().contains("mel filterbank"), "{err}");
        let vars: Vec<(String, Tensor)> = m
            .stored_variables()
            .filter(|(n, _)| *n != "decoder/layer_1/attention/linear_2/weight")
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        let cut = ModelBin::from_variables(&m.path, "WhisperSpec", 3, vars, vec![]).unwrap();
        let filters = vec![0.0; hp.n_mels * N_FFT_BINS];
        let err = write_ggml(&mut Vec::new(), &cut, &hp, &[], &filters, GgmlFloat::F16)
            .expect_err("missing variable");
        assert!(err.to_string().contains("linear_2/weight"), "{err}");
    }
}
