//! `vkwhisper models list|pull|path`.

use anyhow::Result;
use clap::Subcommand;
use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use vkwhisper::models::Progress;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Show known model names and which are installed.
    List,
    /// Download models into the cache (e.g. `tiny.en`, `base`, `large-v3`; `vad` for Silero VAD).
    Pull {
        /// Model names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print the cache directory, or the directory of a model.
    Path {
        /// A model name.
        name: Option<String>,
    },
}

pub fn run(cmd: ModelsCommand) -> Result<ExitCode> {
    match cmd {
        ModelsCommand::List => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<18} {:<10} source", "NAME", "INSTALLED")?;
            for entry in vkwhisper::models::list() {
                let installed = match entry.size {
                    Some(bytes) if entry.path.is_some() => format!("{:.0} MB", bytes as f64 / 1e6),
                    _ if entry.path.is_some() => "yes".to_string(),
                    _ => "-".to_string(),
                };
                let source = if entry.spec.pypi.is_some() {
                    format!("{} (also PyPI)", entry.spec.hf_repo)
                } else {
                    entry.spec.hf_repo.to_string()
                };
                writeln!(out, "{:<18} {:<10} {}", entry.spec.name, installed, source)?;
            }
            writeln!(out, "\ncache: {}", vkwhisper::models::cache_dir().display())?;
        }
        ModelsCommand::Pull { names } => {
            for name in names {
                let path = if name == "vad" {
                    vkwhisper::models::pull_vad_into(&vkwhisper::models::cache_dir(), &mut |p| {
                        report(&p)
                    })?
                } else {
                    pull_model(&name)?
                };
                println!("{name}: {}", path.display());
            }
        }
        ModelsCommand::Path { name } => match name {
            None => println!("{}", vkwhisper::models::cache_dir().display()),
            Some(n) => println!("{}", vkwhisper::models::resolve(&n)?.dir.display()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Download a model with progress on stderr.
pub fn pull_model(name: &str) -> Result<std::path::PathBuf> {
    let path = vkwhisper::models::pull(name, &mut |p| report(&p))?;
    Ok(path)
}

/// Print a download progress event on stderr: on a terminal one line
/// rewritten in place; otherwise (a log, CI) a line at the start and at each
/// quarter of the file (each 100 MB when the size is unknown), so a log
/// holds a few lines and no carriage returns.
pub fn report(p: &Progress) {
    match p {
        Progress::Resolving { what } => eprintln!("vkwhisper: looking up {what}"),
        Progress::Download { file, done, total } => {
            let mb = *done as f64 / 1e6;
            let of = match total {
                Some(t) if *t > 0 => format!(" / {:.1} MB", *t as f64 / 1e6),
                _ => " MB".into(),
            };
            let finished = *total == Some(*done);
            if std::io::stderr().is_terminal() {
                eprint!("\r  {file}: {mb:.1}{of}");
                if finished {
                    eprintln!();
                }
            } else if log_step(file, *done, *total) || finished {
                eprintln!("  {file}: {mb:.1}{of}");
            }
        }
        Progress::Extracting { file } => eprintln!("  extracting {file}"),
        Progress::Verifying { file } => eprintln!("  verifying {file}"),
        Progress::Installed { path } => eprintln!("vkwhisper: installed {}", path.display()),
    }
}

/// Whether a download's progress reached a new step worth a log line (a
/// quarter of the file, or 100 MB when its size is unknown) since the last
/// line printed for that file.
fn log_step(file: &str, done: u64, total: Option<u64>) -> bool {
    static LAST: Mutex<Option<(String, u64)>> = Mutex::new(None);
    let step = match total {
        Some(t) if t > 0 => (done.saturating_mul(4) / t).min(4),
        _ => done / 100_000_000,
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match last.as_ref() {
        Some((f, s)) if f == file && *s >= step && done > 0 => false,
        _ => {
            *last = Some((file.to_string(), step));
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_step;

    #[test]
    fn a_log_gets_a_few_progress_lines() {
        let total = 40_000_000u64;
        let printed = (0..=4000u64)
            .map(|i| i * 10_000)
            .filter(|&d| log_step("model.bin", d, Some(total)) || d == total)
            .count();
        // The start, each quarter, the end (the last quarter is the end).
        assert_eq!(printed, 5);
        let unknown = (0..=300u64)
            .filter(|&i| log_step("x", i * 1_000_000, None))
            .count();
        assert_eq!(unknown, 4);
    }
}
