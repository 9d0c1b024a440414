//! `vkwhisper synth-model` (hidden): write a CTranslate2 Whisper model of a
//! real model's shape (tiny … large-v3) with random weights, for measuring
//! the GPU on a machine that has no model (scripts/device-check.sh). The
//! tokenizer files come from an existing model directory, and its
//! vocabulary size is used; the text such a model writes is meaningless.

use anyhow::{bail, Context, Result};
use clap::Args;
use half::f16;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vkw_model::writer::{is_quantizable, quantize_int8, write_model_bin};
use vkw_model::{Tensor, TensorData};

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output directory (created; must not exist unless --force).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Shape of the model: tiny, base, small, medium or large-v3.
    #[arg(long, default_value = "tiny")]
    pub shape: String,

    /// Weight type: float16, float32 or int8.
    #[arg(long, default_value = "float16")]
    pub dtype: String,

    /// Model directory whose config.json, tokenizer.json and vocabulary are copied.
    #[arg(long, value_name = "DIR")]
    pub tokenizer_from: PathBuf,

    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// d_model, heads, layers (each side), mel bins of Whisper's sizes.
fn shape(name: &str) -> Result<(usize, usize, usize, usize)> {
    Ok(match name {
        "tiny" => (384, 6, 4, 80),
        "base" => (512, 8, 6, 80),
        "small" => (768, 12, 12, 80),
        "medium" => (1024, 16, 24, 80),
        "large-v3" => (1280, 20, 32, 128),
        _ => bail!("unknown shape '{name}': use tiny, base, small, medium or large-v3"),
    })
}

/// Adds one variable (name, shape, values) to the model.
type Put<'a> = dyn FnMut(String, &[usize], Vec<f32>) + 'a;

/// xorshift64* values in [-a, a).
struct Rng(u64);

impl Rng {
    fn fill(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                let u =
                    (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
                (u * 2.0 - 1.0) * a
            })
            .collect()
    }
}

pub fn run(a: SynthArgs) -> Result<ExitCode> {
    let (d, heads, layers, mels) = shape(&a.shape)?;
    let float16 = match a.dtype.as_str() {
        "float16" | "int8" => true,
        "float32" => false,
        other => bail!("unknown dtype '{other}': use float16, float32 or int8"),
    };
    let int8 = a.dtype == "int8";
    let vocab = vocab_size(&a.tokenizer_from)?;
    if a.output.exists() {
        if !a.force {
            bail!("{} exists (use --force to replace it)", a.output.display());
        }
        std::fs::remove_dir_all(&a.output)?;
    }
    std::fs::create_dir_all(&a.output)?;
    let mut rng = Rng(a.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut vars: Vec<(String, Tensor)> = Vec::new();
    let mut put = |name: String, shape: &[usize], v: Vec<f32>| {
        let data = if float16 {
            TensorData::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
        } else {
            TensorData::F32(v)
        };
        let t = Tensor {
            shape: shape.to_vec(),
            data,
            scale: None,
        };
        let t = if int8 && is_quantizable(&name) {
            quantize_int8(&t)
        } else {
            t
        };
        vars.push((name, t));
    };
    // Weights scaled by 1/sqrt(fan-in) keep activations of order 1 through
    // the layers; LayerNorm γ = 1, β = 0.
    let mut lin = |put: &mut Put, p: &str, o: usize, i: usize| {
        put(
            format!("{p}/weight"),
            &[o, i],
            rng.fill(o * i, (i as f32).sqrt().recip()),
        );
        put(format!("{p}/bias"), &[o], rng.fill(o, 0.02));
    };
    let ln = |put: &mut Put, p: &str| {
        put(format!("{p}/gamma"), &[d], vec![1.0; d]);
        put(format!("{p}/beta"), &[d], vec![0.0; d]);
    };
    {
        let p = &mut put;
        lin(p, "encoder/conv1", d, mels * 3);
        lin(p, "encoder/conv2", d, d * 3);
        for side in ["encoder", "decoder"] {
            for l in 0..layers {
                let l = format!("{side}/layer_{l}");
                ln(p, &format!("{l}/self_attention/layer_norm"));
                lin(p, &format!("{l}/self_attention/linear_0"), 3 * d, d);
                lin(p, &format!("{l}/self_attention/linear_1"), d, d);
                if side == "decoder" {
                    ln(p, &format!("{l}/attention/layer_norm"));
                    lin(p, &format!("{l}/attention/linear_0"), d, d);
                    lin(p, &format!("{l}/attention/linear_1"), 2 * d, d);
                    lin(p, &format!("{l}/attention/linear_2"), d, d);
                }
                ln(p, &format!("{l}/ffn/layer_norm"));
                lin(p, &format!("{l}/ffn/linear_0"), 4 * d, d);
                lin(p, &format!("{l}/ffn/linear_1"), d, 4 * d);
            }
            ln(p, &format!("{side}/layer_norm"));
        }
    }
    put(
        "encoder/position_encodings/encodings".into(),
        &[1500, d],
        rng.fill(1500 * d, 0.1),
    );
    put(
        "decoder/position_encodings/encodings".into(),
        &[448, d],
        rng.fill(448 * d, 0.1),
    );
    put(
        "decoder/embeddings/weight".into(),
        &[vocab, d],
        rng.fill(vocab * d, 0.1),
    );
    // Conv weights are [out, in, 3].
    for (n, t) in vars.iter_mut() {
        if n.starts_with("encoder/conv") && n.ends_with("/weight") {
            let (o, i3) = t.rows_cols();
            t.shape = vec![o, i3 / 3, 3];
        }
    }
    let heads_t = |h: usize| Tensor {
        shape: vec![],
        data: TensorData::I16(vec![h as i16]),
        scale: None,
    };
    vars.push(("encoder/num_heads".into(), heads_t(heads)));
    vars.push(("decoder/num_heads".into(), heads_t(heads)));
    let aliases = [(
        "decoder/projection/weight".to_string(),
        "decoder/embeddings/weight".to_string(),
    )];
    let path = a.output.join("model.bin");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?,
    );
    write_model_bin(&mut f, "WhisperSpec", 3, &vars, &aliases)?;
    std::io::Write::flush(&mut f)?;
    copy_tokenizer(&a.tokenizer_from, &a.output)?;
    eprintln!(
        "wrote {} ({} shape, {}, vocabulary {vocab})",
        a.output.display(),
        a.shape,
        a.dtype
    );
    Ok(ExitCode::SUCCESS)
}

/// Tokens in the vocabulary file of `dir` (vocabulary.json: an array;
/// vocabulary.txt: one per line).
fn vocab_size(dir: &Path) -> Result<usize> {
    let json = dir.join("vocabulary.json");
    if json.is_file() {
        let v: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&json)?)
            .with_context(|| format!("{} is not a JSON array", json.display()))?;
        return Ok(v.len());
    }
    let txt = dir.join("vocabulary.txt");
    let text = std::fs::read_to_string(&txt).with_context(|| {
        format!(
            "--tokenizer-from {} needs vocabulary.json or vocabulary.txt",
            dir.display()
        )
    })?;
    Ok(text.lines().count())
}

/// Copy config.json, tokenizer.json and the vocabulary file. The source
/// model's alignment heads name its own layers and heads (base's `[4, 2]` is
/// outside tiny's 4 layers), so config.json is copied without them: the
/// loader's default (every head of the second half of the layers) fits any
/// shape.
fn copy_tokenizer(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "config.json" {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let mut v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            if let Some(o) = v.as_object_mut() {
                o.remove("alignment_heads");
            }
            std::fs::write(to.join(name), serde_json::to_string_pretty(&v)?)
                .with_context(|| format!("cannot write {}", to.join(name).display()))?;
        } else if name == "tokenizer.json" || name.starts_with("vocabulary.") {
            std::fs::copy(&p, to.join(name))
                .with_context(|| format!("cannot copy {}", p.display()))?;
        }
    }
    Ok(())
}
