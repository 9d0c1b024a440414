//! Behaviour of options without golden outputs, on the real tiny.en model:
//! clip_timestamps, a forced prefix, max_new_tokens.

use std::path::PathBuf;
use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_decode::{parse_clip_timestamps, TranscribeOptions, Transcriber};
use vkw_model::WhisperModel;
use vkw_segments::Segment;
use vkw_testkit::model_dir;

fn run(opts: &TranscribeOptions) -> Option<(Arc<WhisperModel>, Vec<Segment>)> {
    let model = Arc::new(WhisperModel::load(model_dir("tiny.en")?).unwrap());
    let backend = CpuBackend::new(model.clone(), 2).unwrap();
    let wav = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/data/jfk/jfk.wav"
    ));
    let samples = vkw_audio::load_audio(&wav).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let mut segs = Vec::new();
    Transcriber::new(&backend, &model)
        .transcribe(&mel.data, 80, mel.n_frames, 11.0, opts, &mut |s| {
            segs.push(s.clone())
        })
        .unwrap();
    Some((model, segs))
}

#[test]
fn clip_timestamps_limit_the_windows() {
    let opts = TranscribeOptions {
        clip_timestamps: parse_clip_timestamps("1.5,6").unwrap(),
        ..Default::default()
    };
    let Some((_, segs)) = run(&opts) else { return };
    assert!(!segs.is_empty());
    // Windows start inside the clip; FW does not clamp timestamps to the clip
    // end, so a final timestamp may lie a little past it.
    assert!(
        segs.iter()
            .all(|s| (150..600).contains(&s.seek) && s.start >= 1.5),
        "{segs:?}"
    );
    assert!(
        !segs.iter().any(|s| s.text.contains("for your country")),
        "{segs:?}"
    );
}

#[test]
fn prefix_is_forced_and_returned() {
    let opts = TranscribeOptions {
        prefix: Some("And so my".into()),
        ..Default::default()
    };
    let Some((model, segs)) = run(&opts) else {
        return;
    };
    let tk = &model.tokenizer;
    let p = tk.encode(" And so my").unwrap();
    let first = &segs[0].tokens;
    assert_eq!(first[0], tk.special.timestamp_begin);
    assert_eq!(&first[1..1 + p.len()], p.as_slice());
    assert!(segs[0].text.starts_with(" And so my"));
}

#[test]
fn max_new_tokens_caps_each_window() {
    let opts = TranscribeOptions {
        max_new_tokens: Some(6),
        temperatures: vec![0.0],
        ..Default::default()
    };
    let Some((_, segs)) = run(&opts) else { return };
    let mut per_seek = std::collections::BTreeMap::new();
    for s in &segs {
        *per_seek.entry(s.seek).or_insert(0) += s.tokens.len();
    }
    assert!(per_seek.values().all(|&n| n <= 6), "{per_seek:?}");
}
