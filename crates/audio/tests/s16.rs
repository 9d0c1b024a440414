//! `load_audio_s16` is `load_audio` in 16 bits: every sample equals
//! `int16 / 32768` of the f32 path, for read-as-is, resampled and compressed
//! inputs.

use std::path::PathBuf;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data")
        .join(rel)
}

#[test]
fn s16_equals_f32_samples() {
    let dir = data("jfk");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("jfk set") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "tsv" || e == "md") {
            continue;
        }
        let f = vkw_audio::load_audio(&path).expect("f32");
        let s = vkw_audio::load_audio_s16(&path).expect("s16");
        assert_eq!(f.len(), s.len(), "{}", path.display());
        assert!(
            f.iter().zip(&s).all(|(&a, &b)| a == f32::from(b) / 32768.0),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 2, "expected several jfk inputs, found {checked}");
}
