//! `vkwhisper serve`: an OpenAI-compatible speech-to-text server.
//!
//! [`app`] builds the whole HTTP surface as an axum `Router` over an
//! [`AppState`], so tests drive it without a socket; [`serve`] binds it,
//! loads the default models in the background (`/health` answers 503 until
//! then) and shuts down gracefully on SIGTERM or Ctrl-C (stops accepting,
//! lets requests in flight finish). Inference runs on blocking threads
//! outside the async runtime (see [`jobs`]); models are shared engines
//! ([`models`]); every error is OpenAI's JSON shape ([`error`]).
#![deny(missing_docs)]
// Proving the server's futures `Send` walks through wgpu-core's types (an
// engine may hold a Vulkan backend); in a debug build that walk passes the
// default limit of 128 (E0275), in release it does not.
#![recursion_limit = "256"]

pub mod error;
pub mod formats;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod models;
mod realtime;
pub mod request;
mod routes;
mod ws;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use vkwhisper::{EngineConfig, Limiter};

pub use routes::app;

/// Everything `vkwhisper serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `--model` entries resolved to (id, directory); the first is the default.
    pub models: Vec<(String, PathBuf)>,
    /// `--models-dir`: every model directory inside is offered.
    pub models_dir: Option<PathBuf>,
    /// The model cache (its installed models are offered too).
    pub cache: PathBuf,
    /// `--alias NAME=MODEL`.
    pub aliases: Vec<(String, String)>,
    /// Windows decoding at once across all requests and models.
    pub workers: usize,
    /// Requests waiting beyond the running ones before 429.
    pub queue: usize,
    /// Body limit in bytes.
    pub max_upload: u64,
    /// `--api-key`: required as `Authorization: Bearer KEY` on `/v1/*`.
    pub api_key: Option<String>,
    /// Idle time before an on-demand model is unloaded.
    pub model_ttl: Duration,
    /// Device, threads and compute type of every engine.
    pub engine: EngineConfig,
    /// After SIGTERM, how long requests in flight may take before the
    /// server exits anyway.
    pub shutdown_grace: Duration,
    /// Live sessions (WebSocket) open at once; more are a 429.
    pub max_sessions: usize,
    /// A live session ends (finishing its text) after this long.
    pub max_session: Duration,
}

impl ServerConfig {
    /// Requests holding decoded audio at once: one more than the workers,
    /// so a new request can take turns with the running ones.
    pub fn active_jobs(&self) -> usize {
        self.workers.max(1) + 1
    }
}

/// What every handler shares.
pub struct Shared {
    /// The configuration.
    pub config: ServerConfig,
    /// The models.
    pub registry: models::Registry,
    /// Admission and running jobs.
    pub jobs: Arc<jobs::Jobs>,
    /// Counters.
    pub metrics: Arc<metrics::Metrics>,
    /// Live sessions.
    pub sessions: Arc<live::Sessions>,
    /// The windows-at-once limit shared by every engine.
    pub limit: Arc<Limiter>,
    ready: AtomicBool,
    load_error: Mutex<Option<String>>,
}

/// The state behind [`app`]: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl AppState {
    /// The state of a server with `config` (no model loaded yet).
    pub fn new(config: ServerConfig) -> Self {
        let metrics = Arc::new(metrics::Metrics::default());
        let limit = Arc::new(Limiter::new(config.workers.max(1)));
        let engine = config.engine.clone().with_limit(limit.clone()).offline();
        let registry = models::Registry::new(
            models::ModelsConfig {
                pinned: config.models.clone(),
                models_dir: config.models_dir.clone(),
                cache: config.cache.clone(),
                aliases: config.aliases.clone(),
                ttl: config.model_ttl,
            },
            engine.with_cache_dir(config.cache.clone()),
        );
        let jobs = jobs::Jobs::new(config.active_jobs(), config.queue, metrics.clone());
        let sessions = live::Sessions::new(config.max_sessions);
        Self(Arc::new(Shared {
            config,
            registry,
            jobs,
            metrics,
            sessions,
            limit,
            ready: AtomicBool::new(false),
            load_error: Mutex::new(None),
        }))
    }

    /// Load the default models; `/health` turns 200 when done.
    pub async fn preload(&self) -> Result<(), String> {
        let r = self.0.registry.preload().await;
        match &r {
            Ok(()) => self.0.ready.store(true, Ordering::SeqCst),
            Err(e) => {
                *self
                    .0
                    .load_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e.clone())
            }
        }
        r
    }

    /// Whether the default models are loaded.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    fn load_error(&self) -> Option<String> {
        self.0
            .load_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Bind `addr`, serve until SIGTERM/SIGINT, then let requests in flight
/// finish. `on_ready` is called with the bound address.
pub async fn serve(
    config: ServerConfig,
    addr: std::net::SocketAddr,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let state = AppState::new(config);
    let loader = state.clone();
    tokio::spawn(async move {
        if let Err(e) = loader.preload().await {
            eprintln!("vkwhisper serve: cannot load the model: {e}");
        }
    });
    let sweeper = state.clone();
    tokio::spawn(async move {
        let every =
            (sweeper.0.config.model_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            tokio::time::sleep(every).await;
            sweeper.0.registry.sweep();
        }
    });
    on_ready(bound);
    let grace = state.0.config.shutdown_grace;
    let stopping = Arc::new(tokio::sync::Notify::new());
    let told = stopping.clone();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        told.notify_one();
    });
    // Requests in flight finish; past the grace period the server exits anyway.
    let deadline = async move {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
        eprintln!("vkwhisper serve: the grace period ended with requests still running; exiting");
    };
    tokio::select! {
        r = server => r,
        _ = deadline => Ok(()),
    }
}

/// SIGTERM (Kubernetes, Docker, systemd) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!(
        "vkwhisper serve: shutting down: no new connections; finishing the requests in flight"
    );
}
