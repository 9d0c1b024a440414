//! `vkwhisper serve`: the OpenAI-compatible server (crates/server).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vkw_server::ServerConfig;
use vkwhisper::{ComputeType, Device, EngineConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 for every interface, e.g. in a container).
    #[arg(long, default_value = "127.0.0.1", env = "VKWHISPER_HOST")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 8000, env = "VKWHISPER_PORT")]
    port: u16,
    /// A model to load at start and keep (name, pulled on first use, or directory); repeat for more. The first is the default (and `whisper-1`).
    #[arg(
        short,
        long = "model",
        value_name = "NAME|DIR",
        env = "VKWHISPER_MODEL",
        value_delimiter = ','
    )]
    models: Vec<String>,
    /// Offer every model directory inside DIR too (loaded on first use).
    #[arg(long, value_name = "DIR", env = "VKWHISPER_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Another name for a model, e.g. `whisper-1=base`; repeatable.
    #[arg(long = "alias", value_name = "NAME=MODEL")]
    aliases: Vec<String>,
    /// 30 s windows decoded at once across all requests (the rest take turns).
    #[arg(long, default_value_t = 2, env = "VKWHISPER_WORKERS")]
    workers: usize,
    /// Requests waiting beyond the running ones before answering 429.
    #[arg(long, default_value_t = 32, env = "VKWHISPER_QUEUE")]
    queue: usize,
    /// Upload limit in MiB (OpenAI's is 25).
    #[arg(long, default_value_t = 25, env = "VKWHISPER_MAX_UPLOAD_MB")]
    max_upload_mb: u64,
    /// Require `Authorization: Bearer KEY` on /v1/*.
    #[arg(long, env = "VKWHISPER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Seconds an on-demand model stays loaded while idle.
    #[arg(long, default_value_t = 300, env = "VKWHISPER_MODEL_TTL")]
    model_ttl: u64,
    /// After SIGTERM/Ctrl-C, seconds the requests in flight may take before exiting.
    #[arg(long, default_value_t = 120, env = "VKWHISPER_SHUTDOWN_GRACE")]
    shutdown_grace: u64,
    /// Live transcription sessions (WebSockets /v1/realtime and /v1/stream) open at once; more get 429.
    #[arg(long, default_value_t = 4, env = "VKWHISPER_MAX_SESSIONS")]
    max_sessions: usize,
    /// A live session ends after this many seconds (its text is finished first).
    #[arg(long, default_value_t = 3600, env = "VKWHISPER_MAX_SESSION_SECONDS")]
    max_session_seconds: u64,
    /// Device: auto, cpu, vulkan or vulkan:N.
    #[arg(long, default_value = "auto", env = "VKWHISPER_DEVICE")]
    device: Device,
    /// CPU threads (0 = all cores).
    #[arg(short, long, default_value_t = 0)]
    threads: usize,
    /// CTranslate2 compute type (default, auto, int8, float16, float32, ...).
    #[arg(long, default_value = "default")]
    compute_type: String,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let ct: ComputeType = a.compute_type.parse().map_err(|_| {
        anyhow::anyhow!(
            "--compute-type '{}' is unknown: use {}",
            a.compute_type,
            ComputeType::NAMES.join(", ")
        )
    })?;
    if a.workers == 0 || a.workers > 256 {
        bail!("--workers must be between 1 and 256");
    }
    if a.max_sessions > 10_000 {
        bail!("--max-sessions must be at most 10000 (0 turns live sessions off)");
    }
    if a.max_session_seconds == 0 || a.max_session_seconds > 7 * 24 * 3600 {
        bail!("--max-session-seconds must be between 1 and 604800");
    }
    if a.max_upload_mb == 0 || a.max_upload_mb > 4096 {
        bail!("--max-upload-mb must be between 1 and 4096");
    }
    let mut aliases = Vec::new();
    for al in &a.aliases {
        let (n, m) = al
            .split_once('=')
            .filter(|(n, m)| !n.is_empty() && !m.is_empty())
            .with_context(|| format!("--alias '{al}' is not NAME=MODEL"))?;
        aliases.push((n.trim().to_string(), m.trim().to_string()));
    }
    // An explicit Vulkan request fails here, before any download.
    vkwhisper::devices::vulkan_adapters()
        .map(|_| ())
        .or_else(|e| {
            if matches!(a.device, Device::Vulkan(_)) {
                Err(e)
            } else {
                Ok(())
            }
        })
        .map_err(|e| anyhow::anyhow!("{e} (or use --device cpu)"))?;
    let names = if a.models.is_empty() {
        vec!["tiny.en".to_string()]
    } else {
        a.models.clone()
    };
    let mut models = Vec::new();
    for name in &names {
        let dir = model_dir(name)?;
        let id = vkw_server::models::id_of(name, &dir);
        models.push((id, dir));
    }
    let config = ServerConfig {
        models,
        models_dir: a.models_dir.clone(),
        cache: vkwhisper::models::cache_dir(),
        aliases,
        workers: a.workers,
        queue: a.queue,
        max_upload: a.max_upload_mb * 1024 * 1024,
        api_key: a.api_key.clone().filter(|k| !k.is_empty()),
        model_ttl: Duration::from_secs(a.model_ttl),
        shutdown_grace: Duration::from_secs(a.shutdown_grace),
        max_sessions: a.max_sessions,
        max_session: Duration::from_secs(a.max_session_seconds),
        engine: EngineConfig::default()
            .with_device(a.device)
            .with_threads(a.threads)
            .with_compute_type(ct),
    };
    let addr = SocketAddr::new(a.host, a.port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vkwhisper-http")
        .build()
        .context("cannot start the server's runtime")?;
    rt.block_on(vkw_server::serve(config, addr, |bound| {
        eprintln!(
            "vkwhisper serve: listening on http://{bound} (model {}; the web page is at /)",
            names[0]
        );
    }))
    .with_context(|| format!("cannot serve on {addr}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The directory of a `--model`, pulled into the cache once if it is a known
/// name that is not installed yet.
fn model_dir(name: &str) -> Result<PathBuf> {
    let r = vkwhisper::models::resolve(name)?;
    if r.installed {
        return Ok(r.dir);
    }
    match r.spec {
        Some(spec) => {
            eprintln!(
                "vkwhisper: model '{}' is not installed yet; downloading it to {} (once)",
                spec.name,
                r.dir.display()
            );
            crate::models::pull_model(spec.name)
        }
        None => Ok(r.require_installed()?.to_path_buf()),
    }
}
