//! A CTranslate2 model directory's small files — config.json, the
//! vocabulary (JSON or text) and tokenizer.json — around a fixed, valid
//! one-layer model.bin, through `WhisperModel::load`. A load that succeeds
//! must give the special-token layout `SpecialTokens` documents.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static MODEL_BIN: &[u8] = include_bytes!("../../tests/fixtures/fuzz/tiny-ct2/model.bin");

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = common::scratch_dir("model_dir");
        common::put(&d, "model.bin", MODEL_BIN);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let p = common::parts(data, 3);
    let d = dir();
    common::put(d, "config.json", p[0]);
    // The vocabulary's first byte picks its form.
    let (json, txt): (&[u8], &[u8]) = match p[1].split_first() {
        Some((b'j', rest)) => (rest, &[]),
        Some((_, rest)) => (&[], rest),
        None => (&[], &[]),
    };
    common::put(d, "vocabulary.json", json);
    common::put(d, "vocabulary.txt", txt);
    common::put(d, "tokenizer.json", p[2]);
    match vkw_model::WhisperModel::load(d) {
        Ok(m) => common::check_model(&m),
        Err(e) => common::check_error(&e),
    }
});
