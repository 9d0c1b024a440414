//! The models a server offers: the `--model` ones (loaded at start, kept),
//! every CTranslate2 or transformers Whisper directory under `--models-dir`
//! and every installed model of the cache (loaded on first use, unloaded
//! after `--model-ttl` idle seconds, never while in use), and aliases
//! (`whisper-1` → the default model unless `--alias` says otherwise).
//! Requests never download: an absent model is a 404.

use crate::error::ApiError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vkwhisper::{Engine, EngineConfig};

/// Where the models come from.
#[derive(Debug, Clone)]
pub struct ModelsConfig {
    /// `--model` entries, already resolved to (id, directory); the first is
    /// the default.
    pub pinned: Vec<(String, PathBuf)>,
    /// `--models-dir`.
    pub models_dir: Option<PathBuf>,
    /// The model cache.
    pub cache: PathBuf,
    /// `--alias NAME=MODEL`.
    pub aliases: Vec<(String, String)>,
    /// Idle time before an on-demand model is unloaded.
    pub ttl: Duration,
}

/// A loaded (or loading) model.
struct Slot {
    dir: PathBuf,
    engine: tokio::sync::OnceCell<Engine>,
    users: AtomicUsize,
    last_used: Mutex<Instant>,
    pinned: bool,
}

/// The registry.
pub struct Registry {
    config: ModelsConfig,
    engine_config: EngineConfig,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    created: u64,
}

/// A model in use by one request; dropping it marks the model idle.
pub struct ModelHandle {
    slot: Arc<Slot>,
    /// The canonical id.
    pub id: String,
}

impl ModelHandle {
    /// The engine.
    pub fn engine(&self) -> &Engine {
        // A handle exists only for a loaded slot.
        self.slot
            .engine
            .get()
            .expect("a handle is made after the engine is loaded")
    }
}

impl Drop for ModelHandle {
    fn drop(&mut self) {
        *self
            .slot
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.slot.users.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A listed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its id in requests.
    pub id: String,
    /// Its directory (aliases: their target's).
    pub dir: PathBuf,
    /// Whether it is loaded now.
    pub loaded: bool,
}

impl Registry {
    /// A registry loading engines with `engine_config`.
    pub fn new(config: ModelsConfig, engine_config: EngineConfig) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut slots = HashMap::new();
        for (id, dir) in &config.pinned {
            slots.insert(id.clone(), Arc::new(Slot::new(dir.clone(), true)));
        }
        Self {
            config,
            engine_config,
            slots: Mutex::new(slots),
            created,
        }
    }

    /// When the server started (the `created` of every listed model).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// The default model's id (the first `--model`).
    pub fn default_id(&self) -> Option<&str> {
        self.config.pinned.first().map(|(id, _)| id.as_str())
    }

    /// Every model a request can name, aliases included, sorted by id.
    pub fn list(&self) -> Vec<Listed> {
        let loaded = |id: &str| self.lock().get(id).is_some_and(|s| s.engine.initialized());
        let mut found: Vec<(String, PathBuf)> = self.config.pinned.clone();
        found.extend(self.discovered());
        for (alias, target) in self.aliases() {
            if let Some((_, dir)) = found.iter().find(|(id, _)| *id == target).cloned() {
                found.push((alias, dir));
            }
        }
        let mut out: Vec<Listed> = Vec::new();
        for (id, dir) in found {
            if !out.iter().any(|l| l.id == id) {
                let loaded = loaded(&id);
                out.push(Listed { id, dir, loaded });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Aliases, with `whisper-1` → the default model unless configured.
    fn aliases(&self) -> Vec<(String, String)> {
        let mut a = self.config.aliases.clone();
        if let Some(d) = self.default_id() {
            if !a.iter().any(|(n, _)| n == "whisper-1") {
                a.push(("whisper-1".into(), d.to_string()));
            }
        }
        a
    }

    /// Model directories under `--models-dir` and the cache's installed models.
    fn discovered(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        if let Some(root) = &self.config.models_dir {
            if let Ok(entries) = std::fs::read_dir(root) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() && vkwhisper::models::is_installed(&p) {
                        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                            out.push((name.to_string(), p.clone()));
                        }
                    }
                }
            }
        }
        for entry in vkwhisper::models::list_in(&self.config.cache) {
            if let Some(path) = entry.path {
                out.push((entry.spec.name.to_string(), path));
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The directory and canonical id a request's `model` names.
    pub fn resolve(&self, requested: &str) -> Result<(String, PathBuf), ApiError> {
        let id = self
            .aliases()
            .into_iter()
            .find(|(n, _)| n == requested)
            .map_or_else(|| requested.to_string(), |(_, t)| t);
        if let Some(s) = self.lock().get(&id) {
            return Ok((id, s.dir.clone()));
        }
        self.discovered()
            .into_iter()
            .find(|(n, _)| *n == id)
            .ok_or_else(|| ApiError::model_not_found(requested))
    }

    /// The engine for `requested`, loading it if needed (on a blocking
    /// thread; concurrent requests for one model wait for one load).
    pub async fn get(&self, requested: &str) -> Result<ModelHandle, ApiError> {
        let (id, dir) = self.resolve(requested)?;
        let slot = {
            let mut slots = self.lock();
            slots
                .entry(id.clone())
                .or_insert_with(|| Arc::new(Slot::new(dir.clone(), false)))
                .clone()
        };
        slot.users.fetch_add(1, Ordering::SeqCst);
        let handle = ModelHandle {
            slot: slot.clone(),
            id: id.clone(),
        };
        let config = self.engine_config.clone();
        let loaded = slot
            .engine
            .get_or_try_init(|| async move {
                let d = dir.clone();
                tokio::task::spawn_blocking(move || Engine::load(&d, &config))
                    .await
                    .map_err(|e| ApiError::internal(format!("model loading panicked: {e}")))?
                    .map_err(|e| ApiError::from_engine(&e))
            })
            .await;
        match loaded {
            Ok(_) => Ok(handle),
            Err(e) => {
                drop(handle);
                // A failed load is not cached: the files may be fixed.
                let mut slots = self.lock();
                if slots
                    .get(&id)
                    .is_some_and(|s| !s.pinned && !s.engine.initialized())
                {
                    slots.remove(&id);
                }
                Err(e)
            }
        }
    }

    /// Load the pinned models now (at start); `Err` names the first failure.
    pub async fn preload(&self) -> Result<(), String> {
        for (id, _) in self.config.pinned.clone() {
            let h = self
                .get(&id)
                .await
                .map_err(|e| format!("{id}: {}", e.message))?;
            drop(h);
        }
        Ok(())
    }

    /// Unload the on-demand models idle for longer than the TTL; returns
    /// how many were unloaded.
    pub fn sweep(&self) -> usize {
        let ttl = self.config.ttl;
        let mut slots = self.lock();
        let before = slots.len();
        slots.retain(|_, s| {
            s.pinned
                || s.users.load(Ordering::SeqCst) > 0
                || !s.engine.initialized()
                || s.last_used
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .elapsed()
                    < ttl
        });
        before - slots.len()
    }

    /// Loaded models now.
    pub fn loaded_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| s.engine.initialized())
            .count()
    }
}

impl Slot {
    fn new(dir: PathBuf, pinned: bool) -> Self {
        Self {
            dir,
            engine: tokio::sync::OnceCell::new(),
            users: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            pinned,
        }
    }
}

/// The id of a `--model` argument: a known name as is, a directory by its
/// last component.
pub fn id_of(arg: &str, dir: &Path) -> String {
    if Path::new(arg).is_dir() {
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(arg)
            .to_string()
    } else {
        arg.to_string()
    }
}
