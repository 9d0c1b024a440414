//! The engine as callers share it: concurrent calls get the tokens each gets
//! alone; a transcription can be stopped (cancel token, dropped iterator,
//! a sink's `Break`) without leaving output files behind; progress is
//! reported per window; the language is known before the first segment.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use vkw_testkit::fixtures;
use vkwhisper::output::{open_outputs, MultiSink, OutputFormat};
use vkwhisper::{
    Audio, CancelToken, ControlFlow, DecodeOptions, ErrorKind, Progress, Segment, SegmentSink,
    TranscribeOptions, TranscriptionInfo,
};

const LONGFORM: &str = "data/longform/ljspeech_LJ001_0001-0032.wav";

fn audio(rel: &str) -> Audio<'static> {
    vkwhisper::decode_audio(fixtures().join(rel)).unwrap()
}

fn tokens(segs: &[Segment]) -> Vec<Vec<u32>> {
    segs.iter().map(|s| s.tokens.clone()).collect()
}

#[test]
fn four_threads_on_one_engine_get_what_each_gets_alone() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let files = [
        "data/jfk/jfk.wav",
        "data/ljspeech/LJ001-0002.flac",
        "data/espeak/espeak_03.wav",
        "data/fw_testdata/stereo_diarization.wav",
    ];
    let inputs: Vec<Audio<'static>> = files.iter().map(|f| audio(f)).collect();
    let opts = TranscribeOptions::default();
    let alone: Vec<_> = inputs
        .iter()
        .map(|a| {
            let mut segs = Vec::new();
            engine.transcribe(a.clone(), &opts, &mut segs).unwrap();
            tokens(&segs)
        })
        .collect();
    let together: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|a| {
                let (engine, opts) = (engine.clone(), opts.clone());
                scope.spawn(move || {
                    let mut segs = Vec::new();
                    engine.transcribe(a.clone(), &opts, &mut segs).unwrap();
                    tokens(&segs)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, f) in files.iter().enumerate() {
        assert!(!alone[i].is_empty(), "{f}");
        assert_eq!(together[i], alone[i], "{f}: concurrent vs alone");
    }
}

#[test]
fn a_bounded_engine_takes_turns_and_gets_the_same_tokens() {
    let Some(dir) = vkw_testkit::model_dir("tiny.en") else {
        return;
    };
    let config = vkwhisper::EngineConfig::default()
        .with_device(vkwhisper::Device::Cpu)
        .with_threads(2)
        .with_max_concurrent(1)
        .offline();
    let engine = vkwhisper::Engine::load(dir, &config).unwrap();
    let a = audio("data/jfk/jfk.wav");
    let mut alone = Vec::new();
    engine
        .transcribe(a.clone(), &TranscribeOptions::default(), &mut alone)
        .unwrap();
    let together: Vec<_> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (e, a) = (engine.clone(), a.clone());
                scope.spawn(move || {
                    let mut segs = Vec::new();
                    e.transcribe(a, &TranscribeOptions::default(), &mut segs)
                        .unwrap();
                    tokens(&segs)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(together.iter().all(|t| *t == tokens(&alone)));
    assert_eq!(engine.load_now(), (0, 0));
}

/// Records what a transcription reports, and can stop after `stop_after`
/// segments.
#[derive(Default)]
struct Recorder {
    began: Option<TranscriptionInfo>,
    segments: Vec<Segment>,
    progress: Vec<Progress>,
    stop_after: Option<usize>,
}

impl SegmentSink for Recorder {
    fn begin(&mut self, info: &TranscriptionInfo) -> ControlFlow<()> {
        self.began = Some(info.clone());
        ControlFlow::Continue(())
    }
    fn segment(&mut self, s: &Segment) -> ControlFlow<()> {
        self.segments.push(s.clone());
        match self.stop_after {
            Some(n) if self.segments.len() >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
    fn progress(&mut self, p: Progress) -> ControlFlow<()> {
        self.progress.push(p);
        ControlFlow::Continue(())
    }
}

#[test]
fn progress_is_per_window_monotone_and_ends_at_the_duration() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let a = audio(LONGFORM);
    let duration = a.duration();
    let mut r = Recorder::default();
    let info = engine
        .transcribe(a, &TranscribeOptions::default(), &mut r)
        .unwrap();
    assert_eq!(r.began.as_ref(), Some(&info));
    let seeks: std::collections::BTreeSet<usize> = r.segments.iter().map(|s| s.seek).collect();
    // One report per window (the windows are the distinct seeks here: every
    // window of this file has speech), plus none extra at the end.
    assert_eq!(r.progress.len(), seeks.len(), "{:?}", r.progress);
    assert!(r.progress.len() >= 5);
    assert!(r.progress.windows(2).all(|w| w[0].done_s <= w[1].done_s));
    let last = r.progress.last().unwrap();
    assert_eq!(last.done_s, duration);
    assert_eq!(last.total_s, duration);
    // Batched mode: per batch of windows, also ending at the duration.
    if common::vad_installed() {
        let mut r = Recorder::default();
        engine
            .transcribe(audio(LONGFORM), &TranscribeOptions::batched(2), &mut r)
            .unwrap();
        assert!(r.progress.len() >= 2);
        assert!(r.progress.windows(2).all(|w| w[0].done_s <= w[1].done_s));
        assert_eq!(r.progress.last().unwrap().done_s, duration);
    }
}

#[test]
fn a_sink_answering_break_stops_decoding_and_no_file_is_left() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = open_outputs(
        dir.path(),
        std::path::Path::new("talk.wav"),
        &OutputFormat::ALL,
    )
    .unwrap();
    /// The writers, plus a `Break` after the first segment.
    struct StopEarly {
        files: MultiSink,
        seen: usize,
        progress: usize,
    }
    impl SegmentSink for StopEarly {
        fn segment(&mut self, s: &Segment) -> ControlFlow<()> {
            self.seen += 1;
            self.files.segment(s)?;
            ControlFlow::Break(())
        }
        fn progress(&mut self, _: Progress) -> ControlFlow<()> {
            self.progress += 1;
            ControlFlow::Continue(())
        }
    }
    let mut sink = StopEarly {
        files: MultiSink::new(files),
        seen: 0,
        progress: 0,
    };
    let e = engine
        .transcribe(audio(LONGFORM), &TranscribeOptions::default(), &mut sink)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert_eq!((sink.seen, sink.progress), (1, 0));
    drop(sink);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_cancelled_token_stops_a_long_transcription_and_no_file_is_left() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = open_outputs(
        dir.path(),
        std::path::Path::new("talk.wav"),
        &OutputFormat::ALL,
    )
    .unwrap();
    let cancel = CancelToken::new();
    /// Cancels the token (as another thread would) when the first segment arrives.
    struct CancelOnFirst {
        files: MultiSink,
        cancel: CancelToken,
        segments: Arc<AtomicUsize>,
    }
    impl SegmentSink for CancelOnFirst {
        fn segment(&mut self, s: &Segment) -> ControlFlow<()> {
            self.segments.fetch_add(1, Ordering::SeqCst);
            self.cancel.cancel();
            self.files.segment(s)
        }
    }
    let segments = Arc::new(AtomicUsize::new(0));
    let mut sink = CancelOnFirst {
        files: MultiSink::new(files),
        cancel: cancel.clone(),
        segments: segments.clone(),
    };
    let opts = TranscribeOptions::default().with_cancel(cancel);
    let e = engine
        .transcribe(audio(LONGFORM), &opts, &mut sink)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    // The first window's segments arrive together; nothing after them.
    let first_window = segments.load(Ordering::SeqCst);
    assert!((1..=10).contains(&first_window), "{first_window}");
    drop(sink);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());

    // Cancelled from another thread while decoding.
    let cancel = CancelToken::new();
    let opts = TranscribeOptions::default().with_cancel(cancel.clone());
    let t0 = Instant::now();
    let h = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let mut segs = Vec::new();
            let r = engine.transcribe(audio(LONGFORM), &opts, &mut segs);
            (r, segs.len(), t0.elapsed())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    cancel.cancel();
    let cancelled_at = t0.elapsed();
    let (r, n, ended) = h.join().unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    eprintln!(
        "cancelled at {:.2} s, returned at {:.2} s, {n} segments",
        cancelled_at.as_secs_f64(),
        ended.as_secs_f64()
    );
}

#[test]
fn dropping_the_iterator_after_the_first_segment_stops_decoding() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let a = audio(LONGFORM);
    let total = a.duration();
    let mut segments = engine.segments(a, &TranscribeOptions::default()).unwrap();
    assert_eq!(segments.progress().done_s, 0.0, "nothing decoded yet");
    let first = segments.next().unwrap().unwrap();
    assert_eq!(first.id, 1);
    // Only the first window has been decoded (30 s of 234 s): the rest is
    // decoded only on demand, and dropping the iterator ends it.
    let p = segments.progress();
    assert!(p.done_s <= 30.0 && p.done_s < total, "{p:?}");
    assert!(!segments.is_done());
    drop(segments);
    // The same call consumed fully gives every segment.
    let all: Vec<Segment> = engine
        .segments(audio(LONGFORM), &TranscribeOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(all.len() > 10);
    assert_eq!(all[0], first);
}

#[test]
fn the_language_is_known_before_the_first_segment() {
    let Some(engine) = common::engine("base") else {
        return;
    };
    assert!(engine.info().multilingual);
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("golden/base.float32.beam5.autolang.json"))
            .unwrap(),
    )
    .unwrap();
    let want = &golden["files"]["fw_testdata/multilingual.mp3"];
    let pcm = fixtures().join("golden/pcm/fw_testdata/multilingual.wav");
    let segments = engine
        .segments(
            vkwhisper::decode_audio(pcm).unwrap(),
            &TranscribeOptions::default(),
        )
        .unwrap();
    let info = segments.info().clone();
    assert_eq!(segments.progress().done_s, 0.0);
    assert_eq!(info.language, want["language"].as_str().unwrap());
    assert!(
        (info.language_probability - want["language_probability"].as_f64().unwrap()).abs() < 1e-3
    );
    assert!(info
        .all_language_probs
        .as_ref()
        .is_some_and(|a| a.len() > 50));
    drop(segments);
}

#[test]
fn bad_requests_are_typed_one_line_errors() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let a = audio("data/jfk/jfk.wav");
    for (opts, kind) in [
        (
            TranscribeOptions::new(DecodeOptions {
                beam_size: 100_000,
                ..Default::default()
            }),
            ErrorKind::InvalidOption,
        ),
        (TranscribeOptions::batched(0), ErrorKind::InvalidOption),
        (
            TranscribeOptions::new(DecodeOptions {
                initial_prompt: Some("x".repeat(10)),
                max_new_tokens: Some(448),
                ..Default::default()
            }),
            ErrorKind::InvalidOption,
        ),
    ] {
        let e = engine
            .transcribe(a.clone(), &opts, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(
            !e.to_string().contains("--"),
            "no CLI flags in library errors: {e}"
        );
    }
    // English-only model: language detection is unsupported, as an option error.
    let e = engine
        .detect_language(a, &TranscribeOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidOption, "{e}");
}
