//! Shared helpers for the workspace's tests: where the fixtures are, and the
//! models the fetch script installed.
#![deny(missing_docs)]

use std::path::PathBuf;

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
}

/// The installed model `name` (`$VKWHISPER_CACHE` or `~/.cache/vkwhisper`),
/// or `None` with a message when it is absent locally. Tests never download:
/// in CI (`CI=true`) a missing model is a failure, since `.ci/run` fetches it.
pub fn model_dir(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("VKWHISPER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vkwhisper")))?;
    let dir = cache.join("models").join(name);
    if dir.join("model.bin").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "model {name} missing at {}: run scripts/fetch-models.sh",
        dir.display()
    );
    eprintln!("skipping: model {name} not installed (run scripts/fetch-models.sh)");
    None
}

/// The installed Silero VAD model (`<cache>/vad/silero_vad_v6.onnx`), or
/// `None` with a message when it is absent locally; a failure under
/// `CI=true`, like [`model_dir`].
pub fn vad_model() -> Option<PathBuf> {
    let cache = std::env::var_os("VKWHISPER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vkwhisper")))?;
    let file = cache.join("vad").join("silero_vad_v6.onnx");
    if file.is_file() {
        return Some(file);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Silero VAD model missing at {}: run scripts/fetch-models.sh vad",
        file.display()
    );
    eprintln!("skipping: Silero VAD model not installed (run scripts/fetch-models.sh vad)");
    None
}
