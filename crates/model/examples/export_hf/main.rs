//! Write a CTranslate2 Whisper directory as a Hugging Face transformers
//! checkpoint (safetensors), for testing `--model DIR` and `vkwhisper
//! convert` without Python:
//!
//! ```text
//! cargo run --release -p vkw-model --example export_hf -- CT2_DIR OUT_DIR \
//!     [--dtype float32|float16|bfloat16] [--shards N] [--untied]
//! ```

mod inverse;

use inverse::{export_hf, ExportOptions};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut pos: Vec<PathBuf> = Vec::new();
    let mut opts = ExportOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dtype" => opts.dtype = args.next().unwrap_or_default(),
            "--shards" => opts.shards = args.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            "--untied" => opts.write_proj_out = true,
            _ => pos.push(a.into()),
        }
    }
    let dtype_ok = ["float32", "float16", "bfloat16"].contains(&opts.dtype.as_str());
    if pos.len() != 2 || !dtype_ok || opts.shards == 0 {
        eprintln!("usage: export_hf CT2_DIR OUT_DIR [--dtype float32|float16|bfloat16] [--shards N] [--untied]");
        return ExitCode::from(2);
    }
    match export_hf(&pos[0], &pos[1], &opts) {
        Ok(()) => {
            eprintln!("wrote {}", pos[1].display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
