//! Models from the Hugging Face hub (faster-whisper's source), through
//! hf-hub's blocking ureq client. The hub's own cache layout is used only as
//! scratch inside our staging directory: the files are moved out of it into
//! a flat model directory, so nothing is stored twice.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;

use crate::cache::{missing_files, models_dir_in, Staging};
use crate::models::ModelSpec;
use crate::{HubError, Progress};

/// Files a CTranslate2 Whisper directory needs (the vocabulary is either
/// `vocabulary.txt` or `vocabulary.json`, depending on the converter).
const REQUIRED: &[&str] = &["config.json", "model.bin", "tokenizer.json"];
/// Files fetched when the repository has them.
const OPTIONAL: &[&str] = &["preprocessor_config.json"];
const VOCABULARIES: &[&str] = &["vocabulary.txt", "vocabulary.json"];

/// Forwards hf-hub's progress calls to the caller's callback.
struct Forward<'a> {
    cb: &'a mut dyn FnMut(Progress),
    file: String,
    done: u64,
    total: Option<u64>,
}

impl hf_hub::api::Progress for Forward<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = Some(size as u64);
        self.done = 0;
        self.report();
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        self.report();
    }

    fn finish(&mut self) {}
}

impl Forward<'_> {
    fn report(&mut self) {
        (self.cb)(Progress::Download {
            file: self.file.clone(),
            done: self.done,
            total: self.total,
        });
    }
}

/// Which files to fetch, given the repository's file list.
pub(crate) fn files_to_fetch(repo_files: &[String]) -> Result<Vec<&'static str>, String> {
    let has = |f: &str| repo_files.iter().any(|r| r == f);
    let mut files: Vec<&'static str> = Vec::new();
    for f in REQUIRED {
        if !has(f) {
            return Err(format!("the repository has no {f}"));
        }
        files.push(f);
    }
    match VOCABULARIES.iter().find(|v| has(v)) {
        Some(v) => files.push(v),
        None => return Err("the repository has no vocabulary.txt or vocabulary.json".into()),
    }
    files.extend(OPTIONAL.iter().filter(|f| has(f)));
    Ok(files)
}

/// Downloads `spec.hf_repo` into `<cache>/models/<name>`. `endpoint`
/// overrides the hub URL (else `$HF_ENDPOINT` or huggingface.co).
pub(crate) fn pull_repo(
    cache: &Path,
    spec: &ModelSpec,
    endpoint: Option<&str>,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    let models = models_dir_in(cache);
    let dest = models.join(spec.name);
    let staging = Staging::new(&models, spec.name)?;
    let hf_err = |detail: String| HubError::HfHub {
        repo: spec.hf_repo.to_string(),
        detail,
    };
    // from_env: HF_ENDPOINT and the token saved by `huggingface-cli login`;
    // HF_TOKEN, the variable huggingface_hub also reads, wins over the file.
    let mut builder = ApiBuilder::from_env()
        .with_progress(false)
        .with_retries(2)
        .with_cache_dir(staging.path().join("hf"));
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e.to_string());
    }
    if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(|e| hf_err(e.to_string()))?;
    let repo = api.model(spec.hf_repo.to_string());
    progress(Progress::Resolving {
        what: spec.hf_repo.to_string(),
    });
    let info = repo.info().map_err(|e| hf_err(e.to_string()))?;
    let names: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let files = files_to_fetch(&names).map_err(hf_err)?;
    let out = staging.path().join("model");
    std::fs::create_dir_all(&out).map_err(HubError::io(&out))?;
    for file in files {
        let fwd = Forward {
            cb: &mut *progress,
            file: file.to_string(),
            done: 0,
            total: None,
        };
        let pointer = repo
            .download_with_progress(file, fwd)
            .map_err(|e| hf_err(format!("{file}: {e}")))?;
        // The snapshot entry is a symlink to the blob; move the blob itself.
        let blob = std::fs::canonicalize(&pointer).map_err(HubError::io(&pointer))?;
        let target = out.join(file);
        std::fs::rename(&blob, &target).map_err(HubError::io(&target))?;
    }
    let missing = missing_files(&out);
    if !missing.is_empty() {
        return Err(hf_err(format!(
            "incomplete download, missing {}",
            missing.join(", ")
        )));
    }
    staging.commit("model", &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn picks_vocabulary_and_optional_files() {
        let repo = names(&[
            ".gitattributes",
            "README.md",
            "config.json",
            "model.bin",
            "tokenizer.json",
            "vocabulary.json",
            "preprocessor_config.json",
        ]);
        assert_eq!(
            files_to_fetch(&repo).expect("complete"),
            vec![
                "config.json",
                "model.bin",
                "tokenizer.json",
                "vocabulary.json",
                "preprocessor_config.json"
            ]
        );
        let repo = names(&[
            "config.json",
            "model.bin",
            "tokenizer.json",
            "vocabulary.txt",
        ]);
        assert_eq!(files_to_fetch(&repo).expect("complete").len(), 4);
        let repo = names(&["config.json", "model.bin", "tokenizer.json"]);
        assert!(files_to_fetch(&repo)
            .expect_err("no vocab")
            .contains("vocabulary"));
        let repo = names(&["config.json", "tokenizer.json", "vocabulary.txt"]);
        assert!(files_to_fetch(&repo)
            .expect_err("no model")
            .contains("model.bin"));
    }

    #[test]
    fn unreachable_hub_fails_cleanly() {
        let t = tempfile::tempdir().expect("tempdir");
        let spec = crate::find_model("tiny").expect("known");
        // Port 1 on loopback refuses at once: no network is touched.
        let err = pull_repo(t.path(), spec, Some("http://127.0.0.1:1"), &mut |_| {})
            .expect_err("nothing listens there");
        let msg = err.to_string();
        assert!(matches!(err, HubError::HfHub { .. }), "{msg}");
        assert!(!msg.contains('\n') && msg.contains("HF_ENDPOINT"), "{msg}");
        // No staging directory or partial model is left behind.
        let left: Vec<_> = std::fs::read_dir(t.path().join("models"))
            .expect("models dir")
            .collect();
        assert!(left.is_empty());
    }
}
