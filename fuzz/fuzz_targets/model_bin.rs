//! model.bin bytes → the parser, the shape inference and the load-time
//! value checks of `vkw_model` (what `WhisperModel::load` runs on it).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use vkw_model::{HParams, ModelBin};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/model.bin");
    let m = match ModelBin::parse(path, data) {
        Ok(m) => m,
        Err(e) => return common::check_error(&e),
    };
    let _ = m.stored_variables().count();
    let _ = m.resident_bytes();
    match HParams::infer(&m) {
        Ok(hp) => {
            if let Err(e) = hp.check_runnable(path) {
                common::check_error(&e);
            }
        }
        Err(e) => common::check_error(&e),
    }
    if let Err(e) = m.check_values() {
        common::check_error(&e);
    }
});
