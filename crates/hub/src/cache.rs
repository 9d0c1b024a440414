//! Where models live, which names resolve to which directory, and the atomic
//! install step every download path ends with.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::models::{find_model, known_models, known_names, ModelSpec};
use crate::HubError;

/// The cache root: `$VKWHISPER_CACHE` if set, else
/// `$XDG_CACHE_HOME/vkwhisper`, else the platform cache directory (from the
/// `dirs` crate: `~/.cache` on Linux, `~/Library/Caches` on macOS, ...) plus
/// `vkwhisper`. Models are under `<cache>/models/<name>/`, the VAD model at
/// `<cache>/vad/silero_vad_v6.onnx`.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(
        std::env::var_os("VKWHISPER_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        dirs::cache_dir(),
    )
}

/// [`cache_dir`] without reading the environment, so the precedence rules
/// can be tested without mutating process-global state.
pub(crate) fn cache_dir_from(
    vkwhisper_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    platform: Option<PathBuf>,
) -> PathBuf {
    if let Some(v) = vkwhisper_cache.filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    // XDG says relative values are invalid and must be ignored.
    if let Some(x) = xdg_cache_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return x.join("vkwhisper");
    }
    platform
        // No home directory at all (some containers): a per-user temp dir
        // still works, it just is not kept across reboots.
        .unwrap_or_else(std::env::temp_dir)
        .join("vkwhisper")
}

/// `<cache>/models`.
pub fn models_dir() -> PathBuf {
    models_dir_in(&cache_dir())
}

pub(crate) fn models_dir_in(cache: &Path) -> PathBuf {
    cache.join("models")
}

/// Whether `dir` holds a complete model: `model.bin`, `config.json`,
/// `tokenizer.json` and `vocabulary.txt` or `vocabulary.json`.
pub fn is_installed(dir: &Path) -> bool {
    missing_files(dir).is_empty()
}

/// The required files `dir` lacks, for error messages.
pub(crate) fn missing_files(dir: &Path) -> Vec<&'static str> {
    let mut missing = Vec::new();
    // A transformers Whisper directory (safetensors weights) is loaded as it
    // is; it carries its vocabulary inside tokenizer.json.
    if dir.join("model.safetensors").is_file() || dir.join("model.safetensors.index.json").is_file()
    {
        for f in ["config.json", "tokenizer.json"] {
            if !dir.join(f).is_file() {
                missing.push(f);
            }
        }
        return missing;
    }
    for f in ["model.bin", "config.json", "tokenizer.json"] {
        if !dir.join(f).is_file() {
            missing.push(f);
        }
    }
    if !dir.join("vocabulary.txt").is_file() && !dir.join("vocabulary.json").is_file() {
        missing.push("vocabulary.txt|vocabulary.json");
    }
    missing
}

/// What a model argument resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The model directory (for a known name: its cache directory, which may
    /// not exist yet).
    pub dir: PathBuf,
    /// The known model, when resolved by name.
    pub spec: Option<&'static ModelSpec>,
    /// Whether `dir` holds a complete model now.
    pub installed: bool,
}

impl ResolvedModel {
    /// The directory if the model is complete; otherwise an error telling
    /// the user how to get it.
    pub fn require_installed(&self) -> Result<&Path, HubError> {
        if self.installed {
            return Ok(&self.dir);
        }
        Err(HubError::Incomplete {
            dir: self.dir.clone(),
            missing: missing_files(&self.dir).join(", "),
        })
    }
}

pub(crate) fn unknown(name: &str) -> HubError {
    HubError::UnknownModel {
        name: name.to_string(),
        known: known_names(),
    }
}

/// Resolves a model argument against [`cache_dir`]: see [`resolve_in`].
pub fn resolve(name_or_dir: &str) -> Result<ResolvedModel, HubError> {
    resolve_in(&cache_dir(), name_or_dir)
}

/// Resolves a model argument: an existing directory is used as is (like
/// faster-whisper, a directory wins over a model name); a known name or
/// alias maps to `<cache>/models/<name>`, installed or not; anything else is
/// an error listing the known names.
pub fn resolve_in(cache: &Path, name_or_dir: &str) -> Result<ResolvedModel, HubError> {
    let path = Path::new(name_or_dir);
    if path.is_dir() {
        return Ok(ResolvedModel {
            dir: path.to_path_buf(),
            spec: None,
            installed: is_installed(path),
        });
    }
    if let Some(spec) = find_model(name_or_dir) {
        let dir = models_dir_in(cache).join(spec.name);
        let installed = is_installed(&dir);
        return Ok(ResolvedModel {
            dir,
            spec: Some(spec),
            installed,
        });
    }
    // Something that looks like a path is reported as a missing directory
    // rather than as an unknown name.
    // (One separator is more likely a hub repo id such as `org/model`.)
    let looks_like_path = name_or_dir.starts_with('.')
        || name_or_dir.starts_with('~')
        || path.is_absolute()
        || name_or_dir.matches(std::path::MAIN_SEPARATOR).count() > 1;
    if looks_like_path {
        return Err(HubError::NoSuchDir(path.to_path_buf()));
    }
    Err(unknown(name_or_dir))
}

/// A known model and its state in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// The model.
    pub spec: &'static ModelSpec,
    /// Its cache directory when installed.
    pub path: Option<PathBuf>,
    /// Total size of the installed files in bytes.
    pub size: Option<u64>,
}

/// Every known model with its install state in [`cache_dir`].
pub fn list() -> Vec<ModelEntry> {
    list_in(&cache_dir())
}

/// [`list`] for an explicit cache root.
pub fn list_in(cache: &Path) -> Vec<ModelEntry> {
    let models = models_dir_in(cache);
    known_models()
        .iter()
        .map(|spec| {
            let dir = models.join(spec.name);
            if is_installed(&dir) {
                ModelEntry {
                    spec,
                    size: Some(dir_size(&dir)),
                    path: Some(dir),
                }
            } else {
                ModelEntry {
                    spec,
                    path: None,
                    size: None,
                }
            }
        })
        .collect()
}

/// Sum of the regular files directly in `dir` (model dirs are flat).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Name prefix of staging directories; the leading dot keeps them out of
/// listings and distinct from any model name.
const STAGING_PREFIX: &str = ".partial-";

/// A hidden directory next to the final one where a download is assembled.
/// Dropped without [`Staging::commit`], it is deleted with its contents.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// Creates `<parent>/.partial-<name>-XXXX`, after clearing leftovers of
    /// runs that were killed (older than a day, so a concurrent pull is safe).
    pub(crate) fn new(parent: &Path, name: &str) -> Result<Self, HubError> {
        std::fs::create_dir_all(parent).map_err(HubError::io(parent))?;
        sweep_stale(parent, Duration::from_secs(24 * 3600));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{name}-"))
            .tempdir_in(parent)
            .map_err(HubError::io(parent))?;
        Ok(Self { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves the staged directory `sub` (relative to the staging dir; empty
    /// for the staging dir itself) to `dest` in one rename. An existing
    /// `dest` (an incomplete or outdated copy) is first moved aside and then
    /// deleted, so `dest` is never a mix of old and new files.
    pub(crate) fn commit(self, sub: &str, dest: &Path) -> Result<(), HubError> {
        let src = if sub.is_empty() {
            self.dir.path().to_path_buf()
        } else {
            self.dir.path().join(sub)
        };
        if is_installed(dest) {
            // A concurrent pull finished first; its copy is as good as ours.
            return Ok(());
        }
        let mut aside = self.dir.path().as_os_str().to_os_string();
        aside.push(".old");
        let aside = PathBuf::from(aside);
        if dest.exists() {
            std::fs::rename(dest, &aside).map_err(HubError::io(dest))?;
        }
        let res = std::fs::rename(&src, dest).map_err(HubError::io(dest));
        if res.is_err() && aside.exists() {
            // Put the previous directory back rather than leave nothing.
            let _ = std::fs::rename(&aside, dest);
        }
        if aside.exists() {
            let _ = std::fs::remove_dir_all(&aside);
        }
        res
        // `self.dir` drops here: if `sub` was the whole dir it is gone
        // already (removal of a missing dir is ignored), else the remaining
        // scratch files are deleted.
    }
}

/// Removes staging directories older than `age` (left by killed runs).
fn sweep_stale(parent: &Path, age: Duration) {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|d| d > age);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_model(dir: &Path, vocab: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for f in ["model.bin", "config.json", "tokenizer.json", vocab] {
            std::fs::write(dir.join(f), b"x").expect("write");
        }
    }

    #[test]
    fn cache_dir_precedence() {
        let home = Some(PathBuf::from("/home/u/.cache"));
        assert_eq!(
            cache_dir_from(Some("/c".into()), Some("/x".into()), home.clone()),
            PathBuf::from("/c")
        );
        assert_eq!(
            cache_dir_from(Some("".into()), Some("/x".into()), home.clone()),
            PathBuf::from("/x/vkwhisper")
        );
        assert_eq!(
            cache_dir_from(None, Some("relative".into()), home.clone()),
            PathBuf::from("/home/u/.cache/vkwhisper")
        );
        assert_eq!(
            cache_dir_from(None, None, None),
            std::env::temp_dir().join("vkwhisper")
        );
    }

    #[test]
    fn installed_needs_all_files() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("m");
        assert!(!is_installed(&d));
        touch_model(&d, "vocabulary.json");
        assert!(is_installed(&d));
        std::fs::remove_file(d.join("tokenizer.json")).expect("rm");
        assert!(!is_installed(&d));
        assert_eq!(missing_files(&d), vec!["tokenizer.json"]);
        let d2 = t.path().join("m2");
        touch_model(&d2, "vocabulary.txt");
        assert!(is_installed(&d2));
        std::fs::remove_file(d2.join("vocabulary.txt")).expect("rm");
        assert_eq!(missing_files(&d2), vec!["vocabulary.txt|vocabulary.json"]);
    }

    #[test]
    fn transformers_directories_are_complete_without_model_bin() {
        let t = tempfile::tempdir().expect("tempdir");
        for weights in ["model.safetensors", "model.safetensors.index.json"] {
            let d = t.path().join(weights);
            std::fs::create_dir_all(&d).expect("mkdir");
            for f in [weights, "config.json", "tokenizer.json"] {
                std::fs::write(d.join(f), b"{}").expect("write");
            }
            assert!(is_installed(&d), "{weights}");
            std::fs::remove_file(d.join("tokenizer.json")).expect("rm");
            assert_eq!(missing_files(&d), vec!["tokenizer.json"]);
        }
    }

    #[test]
    fn resolve_names_dirs_and_errors() {
        let t = tempfile::tempdir().expect("tempdir");
        let cache = t.path().join("cache");
        let r = resolve_in(&cache, "turbo").expect("known");
        assert_eq!(r.dir, cache.join("models/large-v3-turbo"));
        assert!(!r.installed);
        assert!(matches!(
            r.require_installed(),
            Err(HubError::Incomplete { .. })
        ));

        touch_model(&cache.join("models/tiny.en"), "vocabulary.txt");
        let r = resolve_in(&cache, "tiny.en").expect("known");
        assert!(r.installed);
        assert_eq!(r.spec.map(|s| s.name), Some("tiny.en"));

        let local = t.path().join("my-model");
        touch_model(&local, "vocabulary.json");
        let arg = local.to_str().expect("utf-8 temp path");
        let r = resolve_in(&cache, arg).expect("dir");
        assert_eq!(
            (r.dir.as_path(), r.spec, r.installed),
            (local.as_path(), None, true)
        );

        let err = resolve_in(&cache, "huge-v9").expect_err("unknown");
        let msg = err.to_string();
        assert!(msg.contains("\"huge-v9\"") && msg.contains("tiny.en") && msg.contains("turbo"));
        assert!(matches!(
            resolve_in(&cache, "./nope/model"),
            Err(HubError::NoSuchDir(_))
        ));
    }

    #[test]
    fn list_reports_installed_sizes() {
        let t = tempfile::tempdir().expect("tempdir");
        touch_model(&t.path().join("models/base"), "vocabulary.json");
        // A staging leftover must not count as installed.
        touch_model(&t.path().join("models/.partial-tiny-abc"), "vocabulary.txt");
        let l = list_in(t.path());
        assert_eq!(l.len(), known_models().len());
        let installed: Vec<_> = l.iter().filter(|e| e.path.is_some()).collect();
        assert_eq!(installed.len(), 1);
        assert_eq!(installed[0].spec.name, "base");
        assert_eq!(installed[0].size, Some(4));
    }

    #[test]
    fn staging_commit_is_all_or_nothing() {
        let t = tempfile::tempdir().expect("tempdir");
        let models = t.path().join("models");
        let dest = models.join("tiny");
        // Dropped staging leaves nothing.
        {
            let s = Staging::new(&models, "tiny").expect("stage");
            touch_model(&s.path().join("out"), "vocabulary.txt");
        }
        assert_eq!(std::fs::read_dir(&models).expect("ls").count(), 0);
        // An incomplete old dir is replaced wholesale.
        std::fs::create_dir_all(&dest).expect("mkdir");
        std::fs::write(dest.join("stale.bin"), b"old").expect("write");
        let s = Staging::new(&models, "tiny").expect("stage");
        touch_model(&s.path().join("out"), "vocabulary.txt");
        std::fs::write(s.path().join("scratch.whl"), b"zip").expect("write");
        s.commit("out", &dest).expect("commit");
        assert!(is_installed(&dest));
        assert!(!dest.join("stale.bin").exists());
        let names: Vec<_> = std::fs::read_dir(&models)
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("tiny")]);
    }
}
