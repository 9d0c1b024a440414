//! Exact-output tests for every format, format parsing and atomic files.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;
use vkw_segments::Word;

/// A `Write` whose bytes the test can read after the sink took ownership.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("test buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("test buffer").clone()).expect("utf-8")
    }
}

fn seg(id: usize, start: f64, end: f64, text: &str) -> Segment {
    Segment {
        id,
        seek: 0,
        start,
        end,
        text: text.into(),
        tokens: vec![50363, 400, 50763],
        temperature: 0.0,
        avg_logprob: -0.25,
        compression_ratio: 1.5,
        no_speech_prob: 0.125,
        words: None,
        token_logprobs: None,
    }
}

fn info() -> TranscriptionInfo {
    TranscriptionInfo {
        language: "en".into(),
        language_probability: 1.0,
        duration: 3725.5,
        duration_after_vad: 3725.5,
        all_language_probs: None,
    }
}

fn sample() -> Vec<Segment> {
    vec![
        seg(1, 0.0, 8.0, " And so my fellow Americans,"),
        seg(2, 8.0, 11.0, " ask --> not\twhat "),
        seg(3, 3599.9996, 3725.123, " your country can do for you."),
    ]
}

fn render(format: OutputFormat, segs: &[Segment]) -> String {
    let buf = Shared::default();
    let mut sink = writer_for(format, Box::new(buf.clone()));
    for s in segs {
        sink.write_segment(s).expect("segment");
    }
    sink.finish(&info()).expect("finish");
    buf.text()
}

#[test]
fn txt() {
    assert_eq!(
        render(OutputFormat::Txt, &sample()),
        "And so my fellow Americans,\nask --> not\twhat\nyour country can do for you.\n"
    );
    assert_eq!(render(OutputFormat::Txt, &[]), "");
}

#[test]
fn srt() {
    assert_eq!(
        render(OutputFormat::Srt, &sample()),
        "1\n00:00:00,000 --> 00:00:08,000\nAnd so my fellow Americans,\n\n\
         2\n00:00:08,000 --> 00:00:11,000\nask -> not\twhat\n\n\
         3\n01:00:00,000 --> 01:02:05,123\nyour country can do for you.\n\n"
    );
    assert_eq!(render(OutputFormat::Srt, &[]), "");
}

#[test]
fn vtt() {
    assert_eq!(
        render(OutputFormat::Vtt, &sample()),
        "WEBVTT\n\n\
         00:00.000 --> 00:08.000\nAnd so my fellow Americans,\n\n\
         00:08.000 --> 00:11.000\nask -> not\twhat\n\n\
         01:00:00.000 --> 01:02:05.123\nyour country can do for you.\n\n"
    );
    assert_eq!(render(OutputFormat::Vtt, &[]), "WEBVTT\n\n");
}

#[test]
fn tsv() {
    assert_eq!(
        render(OutputFormat::Tsv, &sample()),
        "start\tend\ttext\n\
         0\t8000\tAnd so my fellow Americans,\n\
         8000\t11000\task --> not what\n\
         3600000\t3725123\tyour country can do for you.\n"
    );
    assert_eq!(render(OutputFormat::Tsv, &[]), "start\tend\ttext\n");
}

#[test]
fn lrc() {
    assert_eq!(
        render(OutputFormat::Lrc, &sample()),
        "[by:vkwhisper]\n\
         [00:00.00]And so my fellow Americans,\n\
         [00:08.00]ask --> not\twhat\n\
         [60:00.00]your country can do for you.\n"
    );
    assert_eq!(render(OutputFormat::Lrc, &[]), "[by:vkwhisper]\n");
    let mut odd = vec![seg(0, 61.239, 62.0, " two\nlines ")];
    odd.push(seg(1, -0.5, 1.0, "x"));
    assert_eq!(
        render(OutputFormat::Lrc, &odd),
        "[by:vkwhisper]\n[01:01.24]two lines\n[00:00.00]x\n"
    );
}

#[test]
fn json() {
    let mut segs = sample();
    segs.truncate(1);
    segs.push(seg(2, 8.0, 11.0, " ask \"not\""));
    segs[1].seek = 800;
    segs[1].temperature = 0.2;
    segs[1].words = Some(vec![
        Word {
            start: 8.0,
            end: 8.5,
            word: " ask".into(),
            probability: 0.75,
        },
        Word {
            start: 8.5,
            end: 11.0,
            word: " \"not\"".into(),
            probability: 0.5,
        },
    ]);
    let expected = concat!(
        r#"{"text":" And so my fellow Americans, ask \"not\"","language":"en","#,
        r#""language_probability":1.0,"duration":3725.5,"segments":["#,
        r#"{"id":1,"seek":0,"start":0.0,"end":8.0,"text":" And so my fellow Americans,","#,
        r#""tokens":[50363,400,50763],"temperature":0.0,"avg_logprob":-0.25,"#,
        r#""compression_ratio":1.5,"no_speech_prob":0.125},"#,
        r#"{"id":2,"seek":800,"start":8.0,"end":11.0,"text":" ask \"not\"","#,
        r#""tokens":[50363,400,50763],"temperature":0.2,"avg_logprob":-0.25,"#,
        r#""compression_ratio":1.5,"no_speech_prob":0.125,"words":["#,
        r#"{"start":8.0,"end":8.5,"word":" ask","probability":0.75},"#,
        r#"{"start":8.5,"end":11.0,"word":" \"not\"","probability":0.5}]}]}"#,
        "\n"
    );
    assert_eq!(render(OutputFormat::Json, &segs), expected);
    // The document parses back and keeps the numbers as numbers.
    let v: serde_json::Value = serde_json::from_str(expected).expect("valid json");
    assert_eq!(v["segments"][1]["words"][0]["probability"], 0.75);
    assert_eq!(
        render(OutputFormat::Json, &[]),
        "{\"text\":\"\",\"language\":\"en\",\"language_probability\":1.0,\"duration\":3725.5,\"segments\":[]}\n"
    );
}

#[test]
fn formats_parse() {
    assert_eq!("srt".parse::<OutputFormat>().ok(), Some(OutputFormat::Srt));
    assert_eq!(
        " JSON ".parse::<OutputFormat>().ok(),
        Some(OutputFormat::Json)
    );
    assert_eq!(
        parse_formats("srt,json").expect("valid"),
        vec![OutputFormat::Srt, OutputFormat::Json]
    );
    assert_eq!(
        parse_formats("json, all").expect("valid"),
        vec![
            OutputFormat::Json,
            OutputFormat::Txt,
            OutputFormat::Vtt,
            OutputFormat::Srt,
            OutputFormat::Tsv
        ]
    );
    for f in OutputFormat::NAMED {
        assert_eq!(f.to_string().parse::<OutputFormat>().ok(), Some(f));
    }
    // lrc is selectable by name but not part of openai-whisper's `all`.
    assert_eq!(
        parse_formats("all,lrc").expect("valid").last(),
        Some(&OutputFormat::Lrc)
    );
    assert!(!OutputFormat::ALL.contains(&OutputFormat::Lrc));
}

#[test]
fn unknown_format_is_a_clear_error() {
    let err = parse_formats("srt,xml").expect_err("xml is unknown");
    let msg = err.to_string();
    assert!(matches!(err, WriterError::UnknownFormat { ref value } if value == "xml"));
    assert!(msg.contains("\"xml\""), "{msg}");
    assert!(msg.contains("txt, srt, vtt, tsv, json, lrc, all"), "{msg}");
    assert!(matches!(parse_formats(" , "), Err(WriterError::NoFormat)));
    assert!("all".parse::<OutputFormat>().is_err());
}

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn atomic_file_appears_only_on_finish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("out");
    let input = std::path::Path::new("/data/audio/jfk.flac");
    let mut sink = open_output(&out_dir, input, OutputFormat::Srt).expect("open");
    assert_eq!(sink.path(), out_dir.join("jfk.srt"));
    for s in sample() {
        sink.write_segment(&s).expect("segment");
    }
    // Only the hidden temp file exists while writing.
    assert!(!out_dir.join("jfk.srt").exists());
    let during = dir_entries(&out_dir);
    assert_eq!(during.len(), 1);
    assert!(during[0].starts_with(".jfk.srt.") && during[0].ends_with(".tmp"));
    sink.finish(&info()).expect("finish");
    assert_eq!(dir_entries(&out_dir), vec!["jfk.srt".to_string()]);
    let written = std::fs::read_to_string(out_dir.join("jfk.srt")).expect("read");
    assert_eq!(written, render(OutputFormat::Srt, &sample()));
    // A second finish is an error, not a silent rewrite.
    assert!(sink.finish(&info()).is_err());
    assert!(sink.write_segment(&sample()[0]).is_err());
}

#[test]
fn atomic_drop_leaves_nothing_and_keeps_old_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("talk.txt");
    std::fs::write(&dest, "old complete transcript\n").expect("seed");
    {
        let mut sink = open_output(
            tmp.path(),
            std::path::Path::new("talk.wav"),
            OutputFormat::Txt,
        )
        .expect("open");
        sink.write_segment(&sample()[0]).expect("segment");
        // Dropped without finish: an interrupted run.
    }
    assert_eq!(dir_entries(tmp.path()), vec!["talk.txt".to_string()]);
    assert_eq!(
        std::fs::read_to_string(&dest).expect("read"),
        "old complete transcript\n"
    );
    // A finished run replaces it.
    let mut sink = open_output(
        tmp.path(),
        std::path::Path::new("talk.wav"),
        OutputFormat::Txt,
    )
    .expect("open");
    sink.write_segment(&sample()[0]).expect("segment");
    sink.finish(&info()).expect("finish");
    assert_eq!(
        std::fs::read_to_string(&dest).expect("read"),
        "And so my fellow Americans,\n"
    );
    assert_eq!(dir_entries(tmp.path()), vec!["talk.txt".to_string()]);
}

#[test]
fn multi_sink_writes_every_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let formats = parse_formats("all").expect("all");
    let mut sink = MultiSink::new(
        open_outputs(tmp.path(), std::path::Path::new("a.b.mp3"), &formats).expect("open"),
    );
    for s in sample() {
        sink.write_segment(&s).expect("segment");
    }
    sink.finish(&info()).expect("finish");
    assert_eq!(
        dir_entries(tmp.path()),
        vec!["a.b.json", "a.b.srt", "a.b.tsv", "a.b.txt", "a.b.vtt"]
    );
    for f in formats {
        let got = std::fs::read_to_string(tmp.path().join(format!("a.b.{f}"))).expect("read");
        assert_eq!(got, render(f, &sample()), "{f}");
    }
}

#[test]
fn output_name_needs_a_stem() {
    assert!(matches!(
        output_path(
            std::path::Path::new("out"),
            std::path::Path::new("/"),
            OutputFormat::Txt
        ),
        Err(WriterError::NoStem { .. })
    ));
}

#[cfg(unix)]
#[test]
fn output_file_gets_the_usual_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    // A file made the ordinary way shows what the umask gives (0o666 & !umask).
    let plain = tmp.path().join("plain");
    std::fs::File::create(&plain).expect("create");
    let mut sink =
        open_output(tmp.path(), std::path::Path::new("x.wav"), OutputFormat::Txt).expect("open");
    sink.finish(&info()).expect("finish");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.path().join("x.txt")), mode(&plain));
}

fn word(word: &str, start: f64, end: f64) -> Word {
    Word {
        start,
        end,
        word: word.into(),
        probability: 0.9,
    }
}

/// Two segments with words, as word timestamps produce them.
fn worded() -> Vec<Segment> {
    let mut a = seg(1, 0.0, 1.0, " Ask not what");
    a.words = Some(vec![
        word(" Ask", 0.0, 0.3),
        word(" not", 0.3, 0.6),
        word(" what", 0.8, 1.0),
    ]);
    let mut b = seg(2, 1.0, 2.0, " your country");
    b.words = Some(vec![word(" your", 1.0, 1.4), word(" country", 1.4, 2.0)]);
    vec![a, b]
}

fn render_with(format: OutputFormat, segs: &[Segment], o: SubtitleOptions) -> String {
    let buf = Shared::default();
    let mut sink = writer_for_with(format, Box::new(buf.clone()), &o);
    for s in segs {
        sink.write_segment(s).expect("segment");
    }
    sink.finish(&info()).expect("finish");
    buf.text()
}

#[test]
fn srt_from_words_breaks_lines_and_cues() {
    // No options: one cue per segment, times from its words.
    assert_eq!(
        render_with(OutputFormat::Srt, &worded(), SubtitleOptions::default()),
        "1\n00:00:00,000 --> 00:00:01,000\nAsk not what\n\n\
         2\n00:00:01,000 --> 00:00:02,000\nyour country\n\n"
    );
    // Width 8: "Ask not" fits, " what" starts a line; segments kept.
    let o = SubtitleOptions {
        max_line_width: Some(8),
        ..Default::default()
    };
    assert_eq!(
        render_with(OutputFormat::Srt, &worded(), o),
        "1\n00:00:00,000 --> 00:00:01,000\nAsk not\nwhat\n\n\
         2\n00:00:01,000 --> 00:00:02,000\nyour\ncountry\n\n"
    );
    // Width and count: cues of two lines across segments.
    let o = SubtitleOptions {
        max_line_width: Some(10),
        max_line_count: Some(2),
        ..Default::default()
    };
    assert_eq!(
        render_with(OutputFormat::Vtt, &worded(), o),
        "WEBVTT\n\n00:00.000 --> 00:01.400\nAsk not\nwhat your\n\n\
         00:01.400 --> 00:02.000\ncountry\n\n"
    );
}

#[test]
fn vtt_highlights_words() {
    let o = SubtitleOptions {
        highlight_words: true,
        ..Default::default()
    };
    let got = render_with(OutputFormat::Vtt, &worded()[..1], o);
    assert_eq!(
        got,
        "WEBVTT\n\n\
         00:00.000 --> 00:00.300\n<u>Ask</u> not what\n\n\
         00:00.300 --> 00:00.600\nAsk <u>not</u> what\n\n\
         00:00.600 --> 00:00.800\nAsk not what\n\n\
         00:00.800 --> 00:01.000\nAsk not <u>what</u>\n\n"
    );
}
