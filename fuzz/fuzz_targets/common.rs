//! Shared by the fuzz targets (each includes it with `#[path]`).
#![allow(dead_code)]

use std::fmt::Display;
use std::path::PathBuf;

/// Separates the files of one multi-file input (see make_seeds.py).
pub const SEP: &[u8] = b"\n\xff\xfeVKW-PART\xfe\xff\n";

/// The property every error must have: one line, no control characters,
/// a bounded length.
pub fn check_error(e: &dyn Display) {
    let msg = e.to_string();
    assert!(
        !msg.chars().any(char::is_control),
        "error message with control characters: {msg:?}"
    );
    assert!(
        msg.len() <= 2000,
        "error message of {} bytes: {msg:.300}",
        msg.len()
    );
}

/// The parts of a multi-file input; missing parts are empty.
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out.resize(n, &[]);
    out
}

/// A directory of this process's own for files a target writes (on tmpfs
/// when there is one: each input is written out).
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("vkw-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Write `data` to `dir/name`, or remove the file when `data` is empty
/// (an absent file is a case too).
pub fn put(dir: &std::path::Path, name: &str, data: &[u8]) {
    let p = dir.join(name);
    if data.is_empty() {
        let _ = std::fs::remove_file(p);
    } else {
        std::fs::write(p, data).expect("write scratch file");
    }
}

/// After a successful load, the guarantees `vkw_model::SpecialTokens`
/// documents must hold.
pub fn check_model(m: &vkw_model::WhisperModel) {
    let sp = m.tokenizer.special;
    let v = m.hparams.n_vocab as u64;
    assert_eq!(m.tokenizer.vocab_size() as u64, v);
    assert_eq!(u64::from(sp.eot) + 1, u64::from(sp.sot));
    assert_eq!(
        u64::from(sp.sot) + 1 + sp.num_languages as u64,
        u64::from(sp.translate)
    );
    assert_eq!(sp.translate + 1, sp.transcribe);
    assert_eq!(sp.transcribe + 1, sp.sot_lm);
    assert_eq!(sp.sot_lm + 1, sp.sot_prev);
    assert_eq!(sp.sot_prev + 1, sp.no_speech);
    assert_eq!(sp.no_speech + 1, sp.no_timestamps);
    assert_eq!(sp.no_timestamps + 1, sp.timestamp_begin);
    assert!(sp.timestamp_begin <= sp.timestamp_end);
    assert_eq!(u64::from(sp.timestamp_end) + 1, v);
    let cfg = &m.config;
    for id in cfg
        .lang_ids
        .iter()
        .chain(&cfg.suppress_ids)
        .chain(&cfg.suppress_ids_begin)
    {
        assert!(u64::from(*id) < v);
    }
    for &(l, h) in &m.alignment_heads() {
        assert!(l < m.hparams.decoder_layers && h < m.hparams.decoder_heads);
    }
    assert_eq!(m.hparams.n_audio_ctx, vkw_model::N_AUDIO_CTX);
    // What decoding does with a loaded tokenizer must not panic.
    let tk = &m.tokenizer;
    let _ = tk.sot_sequence(Some("en"), vkw_model::Task::Translate);
    let _ = tk.language_codes();
    let _ = tk.decode_with_timestamps(&[0, sp.eot, sp.timestamp_begin, sp.timestamp_end]);
    let _ = tk.encode(" hello world");
    let _ = tk.non_speech_tokens();
}
