//! `vkwhisper export-ggml` (hidden): write a model directory as a
//! whisper.cpp model file, so that the device check runs whisper.cpp on the
//! same weights as vkwhisper (its anchor for issue 14; whisper.cpp cannot
//! read CTranslate2 models). The file format is documented in
//! `vkw_model::ggml`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use vkw_model::ggml::{write_ggml, GgmlError, GgmlFloat};
use vkw_model::WhisperModel;

#[derive(Args, Debug)]
pub struct ExportGgmlArgs {
    /// Model directory (CTranslate2 or transformers).
    #[arg(value_name = "MODEL_DIR")]
    pub model: PathBuf,

    /// Output file (whisper.cpp's `ggml-*.bin`).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Matrix type: float16 or float32.
    #[arg(long, default_value = "float16")]
    pub dtype: String,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: ExportGgmlArgs) -> Result<ExitCode> {
    let float = match a.dtype.as_str() {
        "float16" => GgmlFloat::F16,
        "float32" => GgmlFloat::F32,
        other => bail!("unknown dtype '{other}': use float16 or float32"),
    };
    if a.output.exists() && !a.force {
        bail!("{} exists (use --force to replace it)", a.output.display());
    }
    let model = WhisperModel::load(&a.model)?;
    // whisper.cpp's converter stores the text tokens and <|endoftext|>; it
    // names the later special tokens itself from the vocabulary size.
    let eot = model.tokenizer.special.eot as usize;
    let tokens = &model.tokenizer.vocabulary()[..=eot.min(model.tokenizer.vocab_size() - 1)];
    let filters = vkw_audio::mel::mel_filters(model.hparams.n_mels);
    // Written beside OUT as `<OUT>.partial` and renamed, so a failure
    // leaves no partial file (a killed run's is overwritten by the next).
    let mut tmp = a.output.clone().into_os_string();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp)
        .map_err(GgmlError::Write)
        .and_then(|file| {
            let mut w = std::io::BufWriter::new(file);
            let n = write_ggml(
                &mut w,
                &model.weights,
                &model.hparams,
                tokens,
                &filters,
                float,
            )?;
            w.flush()?;
            Ok(n)
        });
    let n = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(match e {
                GgmlError::Write(e) => anyhow!("cannot write {}: {e}", a.output.display()),
                GgmlError::Model(e) => e.into(),
            });
        }
    };
    std::fs::rename(&tmp, &a.output)
        .with_context(|| format!("cannot move {} into place", tmp.display()))?;
    eprintln!(
        "wrote {} ({:.1} MB, {}, {} tokens stored)",
        a.output.display(),
        n as f64 / 1e6,
        a.dtype,
        tokens.len()
    );
    Ok(ExitCode::SUCCESS)
}
