//! The VAD regression inputs of the fuzzing work (`tests/fixtures/fuzz/vad_onnx`,
//! listed in `tests/fixtures/fuzz/MANIFEST.tsv`): typed one-line errors
//! through both entry points; and the real model still loads.

use vkw_testkit::{fixtures, vad_model};
use vkw_vad::{SileroVad, VadError};

#[test]
fn vad_regressions_are_one_line_errors() {
    let manifest = std::fs::read_to_string(fixtures().join("fuzz/MANIFEST.tsv")).unwrap();
    let cases: Vec<Vec<&str>> = manifest
        .lines()
        .filter(|l| l.starts_with("vad_onnx/"))
        .map(|l| l.split('\t').collect())
        .collect();
    assert!(cases.len() >= 2);
    for c in cases {
        let path = fixtures().join("fuzz").join(c[0]);
        let bytes = std::fs::read(&path).unwrap();
        let e = SileroVad::from_onnx_bytes(&bytes).unwrap_err();
        assert!(matches!(e, VadError::Format(_)), "{}: {e:?}", c[0]);
        let msg = e.to_string();
        assert!(msg.contains(c[2]), "{}: {msg}", c[0]);
        assert!(
            !msg.chars().any(char::is_control) && msg.len() < 400,
            "{msg:?}"
        );
        // Through the file: the error names it.
        let e = SileroVad::load(&path).unwrap_err();
        assert!(matches!(e, VadError::File { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
    }
}

#[test]
fn the_real_model_still_loads() {
    let Some(p) = vad_model() else { return };
    SileroVad::load(&p).unwrap();
}
