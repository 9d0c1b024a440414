//! From the original files (our own decoders and resampler, not FFmpeg's
//! PCM): word error rate per set within 0.3 points of faster-whisper's golden
//! transcripts, both measured against the manifests' reference texts.
//!
//! Every shared set is run from its original files. The sets whose inputs
//! need decoding or resampling (jfk: WAV + 44.1 kHz stereo FLAC + MP3;
//! ljspeech: 22.05 kHz FLAC) are where our decoder and resampler matter; the
//! others are 16 kHz mono 16-bit WAV, read bit-exactly.

mod common;

use vkw_testkit::{fixtures, wer_words as words, word_edits as edits};
use vkwhisper::{from_fn, ControlFlow, TranscribeOptions};

#[test]
fn wer_from_original_files_matches_golden() {
    let Some(engine) = common::engine("tiny.en") else {
        return;
    };
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("golden/tiny.en.float32.beam5.json")).unwrap(),
    )
    .unwrap();
    let opts = TranscribeOptions::default();
    for set in ["jfk", "fw_testdata", "ljspeech", "longform", "espeak"] {
        let manifest =
            std::fs::read_to_string(fixtures().join(format!("data/{set}/manifest.tsv"))).unwrap();
        let (mut ours, mut theirs, mut total) = (0usize, 0usize, 0usize);
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (file, reference) = (cols[0], words(cols[2]));
            let audio =
                vkwhisper::decode_audio(fixtures().join(format!("data/{set}/{file}"))).unwrap();
            let mut text = String::new();
            let mut sink = from_fn(|s| {
                text.push_str(&s.text);
                ControlFlow::Continue(())
            });
            engine.transcribe(audio, &opts, &mut sink).unwrap();
            let gold = golden["files"][format!("{set}/{file}")]["text"]
                .as_str()
                .unwrap();
            ours += edits(&reference, &words(&text));
            theirs += edits(&reference, &words(gold));
            total += reference.len();
        }
        let (wer, gold_wer) = (
            100.0 * ours as f64 / total as f64,
            100.0 * theirs as f64 / total as f64,
        );
        eprintln!("{set}: WER {wer:.2}% (faster-whisper {gold_wer:.2}%) over {total} words");
        assert!(
            (wer - gold_wer).abs() <= 0.3,
            "{set}: WER {wer:.2} vs golden {gold_wer:.2}"
        );
    }
}
