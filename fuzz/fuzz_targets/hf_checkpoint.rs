//! A transformers Whisper directory — config.json, model.safetensors,
//! generation_config.json, tokenizer.json — through `WhisperModel::load`
//! (the safetensors header, the size checks before allocation, the mapping
//! onto CTranslate2 variables, the vocabulary built from the tokenizer).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::scratch_dir("hf_checkpoint"))
}

fuzz_target!(|data: &[u8]| {
    let p = common::parts(data, 4);
    let d = dir();
    common::put(d, "config.json", p[0]);
    common::put(d, "model.safetensors", p[1]);
    common::put(d, "generation_config.json", p[2]);
    common::put(d, "tokenizer.json", p[3]);
    if p[1].is_empty() {
        // Without weights the directory is not a transformers checkpoint.
        return;
    }
    match vkw_model::WhisperModel::load(d) {
        Ok(m) => common::check_model(&m),
        Err(e) => common::check_error(&e),
    }
});
