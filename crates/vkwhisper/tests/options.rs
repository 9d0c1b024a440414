//! Behaviour of options without golden outputs, on the real tiny.en model:
//! clip_timestamps, a forced prefix, max_new_tokens.

mod common;

use vkwhisper::{parse_clip_timestamps, DecodeOptions, Segment, TranscribeOptions};

fn run(decoding: DecodeOptions) -> Option<Vec<Segment>> {
    let engine = common::engine("tiny.en")?;
    let wav = vkw_testkit::fixtures().join("data/jfk/jfk.wav");
    let audio = vkwhisper::decode_audio(&wav).unwrap();
    let mut segs = Vec::new();
    engine
        .transcribe(audio, &TranscribeOptions::new(decoding), &mut segs)
        .unwrap();
    Some(segs)
}

#[test]
fn clip_timestamps_limit_the_windows() {
    let opts = DecodeOptions {
        clip_timestamps: parse_clip_timestamps("1.5,6").unwrap(),
        ..Default::default()
    };
    let Some(segs) = run(opts) else { return };
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
    let opts = DecodeOptions {
        prefix: Some("And so my".into()),
        ..Default::default()
    };
    let Some(segs) = run(opts) else { return };
    let dir = vkw_testkit::model_dir("tiny.en").unwrap();
    let tk = vkw_model::WhisperModel::load(&dir).unwrap().tokenizer;
    let p = tk.encode(" And so my").unwrap();
    let first = &segs[0].tokens;
    assert_eq!(first[0], tk.special.timestamp_begin);
    assert_eq!(&first[1..1 + p.len()], p.as_slice());
    assert!(segs[0].text.starts_with(" And so my"));
}

#[test]
fn max_new_tokens_caps_each_window() {
    let opts = DecodeOptions {
        max_new_tokens: Some(6),
        temperatures: vec![0.0],
        ..Default::default()
    };
    let Some(segs) = run(opts) else { return };
    let mut per_seek = std::collections::BTreeMap::new();
    for s in &segs {
        *per_seek.entry(s.seek).or_insert(0) += s.tokens.len();
    }
    assert!(per_seek.values().all(|&n| n <= 6), "{per_seek:?}");
}
