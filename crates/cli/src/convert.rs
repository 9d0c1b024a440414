//! `vkwhisper convert IN OUT`: write a CTranslate2 model directory from a
//! transformers Whisper checkpoint or another CTranslate2 directory
//! (re-quantising), without Python.
//!
//! The output is assembled in a hidden temporary directory next to OUT and
//! renamed into place only when complete and loadable, so an interrupted or
//! failed conversion never leaves a half-written model behind: SIGINT,
//! SIGTERM and SIGHUP remove the temporary directory (main.rs), and after a
//! SIGKILL the next conversion to the same OUT removes what the killed one
//! left (`.OUT.vkwhisper-convert-<pid>`, and restores an OUT that was moved
//! aside to `…-<pid>.old` but not yet replaced).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use vkw_model::convert::{write_ct2_dir, Progress, Quantization};
use vkw_model::WhisperModel;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Source: a transformers Whisper directory (config.json + safetensors), a CTranslate2 directory, or an installed model name.
    #[arg(value_name = "IN")]
    pub input: String,

    /// Output directory for the CTranslate2 model (must not exist unless --force).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,

    /// Weight type, as CTranslate2's converter names them; omitted: keep the source's types.
    #[arg(long, value_parser = Quantization::ALL.map(|q| q.name()))]
    pub quantization: Option<String>,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,

    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The temporary directory of a conversion in progress, for Ctrl-C.
static TEMP_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Remove the temporary directory of an unfinished conversion (called from
/// the signal handler while the conversion may still be writing into it).
pub fn remove_temp_dir() {
    let dir = match TEMP_DIR.lock() {
        Ok(mut t) => t.take(),
        // A panic while the lock was held: the path is still there.
        Err(poisoned) => poisoned.into_inner().take(),
    };
    let Some(dir) = dir else { return };
    // Move it aside first: the conversion creates files by path, so it can
    // add nothing to the directory being removed.
    let doomed = suffixed(&dir, ".removing");
    let target = if std::fs::rename(&dir, &doomed).is_ok() {
        doomed
    } else {
        dir
    };
    for _ in 0..5 {
        if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `path` with `suffix` appended to its last component (not
/// `with_extension`, which would replace the `.vkwhisper-convert-<pid>` part).
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The marker in the names of our temporary directories next to OUT.
const TEMP_MARK: &str = ".vkwhisper-convert-";

/// Remove what a killed conversion to `parent/name` left: temporary
/// directories `.<name>.vkwhisper-convert-<pid>` (and `.removing`) of
/// processes that no longer exist. An OUT moved aside (`….old`) by a
/// conversion killed between its two renames is moved back when OUT is
/// missing, and removed when OUT is there (the replacement completed).
fn remove_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}{TEMP_MARK}");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let out = parent.join(name);
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let (pid, suffix) = rest.split_once('.').unwrap_or((rest, ""));
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || !process_gone(pid, &entry) {
            continue;
        }
        let path = entry.path();
        match suffix {
            "" | "removing" => {
                let _ = std::fs::remove_dir_all(&path);
            }
            "old" if out.symlink_metadata().is_err() => {
                let _ = std::fs::rename(&path, &out);
            }
            "old" => {
                let _ = std::fs::remove_dir_all(&path);
            }
            _ => {}
        }
    }
}

/// Whether process `pid` (which wrote `entry`) has ended: exact on Linux
/// (`/proc`); elsewhere a directory untouched for a day counts as abandoned.
fn process_gone(pid: u32, entry: &std::fs::DirEntry) -> bool {
    if cfg!(target_os = "linux") {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
}

fn set_temp_dir(dir: Option<PathBuf>) {
    if let Ok(mut t) = TEMP_DIR.lock() {
        *t = dir;
    }
}

/// Where the model argument points: an existing directory, or an installed model.
fn source_dir(input: &str) -> Result<PathBuf> {
    let resolved = vkwhisper::models::resolve(input)?;
    Ok(resolved.require_installed()?.to_path_buf())
}

pub fn run(a: ConvertArgs) -> Result<ExitCode> {
    let q = a.quantization.as_deref().map(|n| {
        Quantization::from_name(n).unwrap_or(Quantization::Float32) // clap allows only known names
    });
    let src = source_dir(&a.input)?;
    let out = a.output.clone();
    let name = out
        .file_name()
        .with_context(|| format!("{}: not a directory name", out.display()))?
        .to_string_lossy()
        .to_string();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale(&parent, &name);
    let exists = out.exists() || out.symlink_metadata().is_ok();
    if exists && !a.force {
        bail!(
            "{} already exists; pass --force to replace it",
            out.display()
        );
    }
    if exists {
        if let (Ok(s), Ok(o)) = (src.canonicalize(), out.canonicalize()) {
            if s == o || s.starts_with(&o) {
                bail!(
                    "{} is the source model; write the conversion to another directory",
                    out.display()
                );
            }
        }
    }
    // The input is checked (loaded) before anything is created for OUT.
    let t0 = std::time::Instant::now();
    let model = WhisperModel::load(&src)?;
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    if !a.quiet {
        eprintln!(
            "vkwhisper: converting {} ({:?}, {} variables) to {}{}",
            src.display(),
            model.format,
            model.weights.stored_variables().count(),
            out.display(),
            q.map(|q| format!(" as {}", q.name())).unwrap_or_default()
        );
    }
    let temp = parent.join(format!(".{name}{TEMP_MARK}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    // Registered before it exists, so a signal in between cannot miss it.
    set_temp_dir(Some(temp.clone()));
    std::fs::create_dir(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
    let result = write_and_check(model, &temp, q, a.quiet);
    if let Err(e) = result {
        remove_temp_dir();
        return Err(e);
    }
    replace(&temp, &out)?;
    set_temp_dir(None);
    if !a.quiet {
        eprintln!(
            "vkwhisper: wrote {} in {:.1} s",
            out.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write the model into `temp`, then load the result back as a check.
fn write_and_check(
    model: WhisperModel,
    temp: &Path,
    q: Option<Quantization>,
    quiet: bool,
) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut last_decile = 0;
    let mut progress = |p: Progress| {
        if quiet {
            return;
        }
        let line = format!(
            "  model.bin: {}/{} variables, {:.1} MB ({})",
            p.done,
            p.total,
            p.bytes as f64 / 1e6,
            p.name
        );
        if tty {
            // One line, rewritten per variable.
            eprint!("\r\x1b[2K{line}");
            if p.done == p.total {
                eprintln!();
            }
        } else if p.done * 10 / p.total.max(1) > last_decile || p.done == p.total {
            last_decile = p.done * 10 / p.total.max(1);
            eprintln!("{line}");
        }
    };
    write_ct2_dir(&model, temp, q, &mut progress)?;
    drop(model);
    WhisperModel::load(temp).context("the converted model does not load back")?;
    let _ = std::io::stderr().flush();
    Ok(())
}

/// Move the finished `temp` directory to `out`, replacing an old `out`
/// only after the new one is complete.
fn replace(temp: &Path, out: &Path) -> Result<()> {
    if out.symlink_metadata().is_ok() {
        let old = suffixed(temp, ".old");
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
        if let Err(e) = std::fs::rename(temp, out) {
            let _ = std::fs::rename(&old, out);
            return Err(e).with_context(|| format!("cannot rename into {}", out.display()));
        }
        let removed = if old.is_dir() {
            std::fs::remove_dir_all(&old)
        } else {
            std::fs::remove_file(&old)
        };
        removed.with_context(|| format!("cannot remove the old {}", old.display()))?;
    } else {
        std::fs::rename(temp, out)
            .with_context(|| format!("cannot rename into {}", out.display()))?;
    }
    Ok(())
}
