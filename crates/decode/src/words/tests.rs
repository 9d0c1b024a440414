//! Unit tests of the §7.4 post-processing.

use super::*;

fn tw(word: &str, tokens: &[u32], start: f64, end: f64) -> TimedWord {
    TimedWord {
        word: word.into(),
        tokens: tokens.to_vec(),
        start,
        end,
        probability: 0.9,
    }
}

fn seg(start: f64, end: f64, tokens: &[u32]) -> WindowSegment {
    WindowSegment {
        start,
        end,
        tokens: tokens.to_vec(),
        words: Vec::new(),
        logprobs: Vec::new(),
    }
}

const EOT: u32 = 100;
const PRE: &str = "\"'“¿([{-";
const APP: &str = "\"'.。,，!！?？:：”)]}、";

#[test]
fn round2_is_pythons_round() {
    assert_eq!(round2(1.005), 1.0); // 1.005 is 1.00499999… as a double
    assert_eq!(round2(0.125), 0.12); // an exact tie goes to even
    assert_eq!(round2(2.675), 2.67);
    assert_eq!(round2(30.0 + 0.58), 30.58);
}

#[test]
fn words_go_to_segments_by_token_count_with_window_offset() {
    // Two segments: tokens [ts, 1, 2, ts] and [ts, 3, ts]; three words,
    // the "," merged into the first word.
    let mut segs = vec![
        seg(30.0, 31.0, &[150, 1, 2, 160]),
        seg(31.0, 32.0, &[160, 3, 170]),
    ];
    let al = vec![
        tw(" Hi", &[1], 0.0, 0.4),
        tw(",", &[2], 0.4, 0.5),
        tw(" there", &[3], 1.0, 1.5),
    ];
    add_word_timestamps(&mut segs, al, 3000, EOT, PRE, APP, 0.0);
    assert_eq!(segs[0].words.len(), 1);
    assert_eq!(segs[0].words[0].word, " Hi,");
    assert_eq!((segs[0].words[0].start, segs[0].words[0].end), (30.0, 30.4));
    assert_eq!(segs[1].words[0].word, " there");
    assert_eq!((segs[1].words[0].start, segs[1].words[0].end), (31.0, 31.5));
    // Segment bounds follow the words when the words are not too long.
    assert_eq!((segs[0].start, segs[0].end), (30.0, 30.4));
    assert_eq!((segs[1].start, segs[1].end), (31.0, 31.5));
}

#[test]
fn long_words_are_cut_at_sentence_ends_and_pauses() {
    // Durations 0.2, 0.2, 3.0 ("." is long): median 0.2, max 0.4.
    let mut segs = vec![seg(0.0, 2.0, &[1, 2, 3])];
    let al = vec![
        tw(" a", &[1], 0.0, 0.2),
        tw(" b", &[2], 0.2, 0.4),
        tw(" c", &[3], 0.4, 3.4),
    ];
    add_word_timestamps(&mut segs, al, 0, EOT, PRE, APP, 0.0);
    // The last word ends more than 0.5 s after the segment: capped to
    // max(start + median, seg.end).
    let w = &segs[0].words;
    assert_eq!(w[2].end, 2.0);
    assert_eq!(segs[0].end, 2.0);

    // After a sentence end, a long word starts max_dur before its end.
    let mut segs = vec![seg(0.0, 10.0, &[1, 2, 3, 4])];
    let al = vec![
        tw(" a", &[1], 0.0, 0.2),
        tw(".", &[2], 0.2, 0.4),
        tw(" b", &[3], 0.4, 0.6),
        tw(" c", &[4], 0.6, 5.0),
    ];
    // "." is appended to " a"; " c" follows " b" (no sentence end): kept.
    add_word_timestamps(&mut segs, al, 0, EOT, PRE, APP, 0.0);
    assert_eq!(segs[0].words[0].word, " a.");
    assert_eq!(segs[0].words.len(), 3);

    let mut segs = vec![seg(0.0, 10.0, &[1, 2, 3])];
    let al = vec![
        tw(" a", &[1], 0.0, 0.2),
        tw("!", &[2], 0.2, 0.4),
        tw(" b", &[3], 0.4, 5.0),
    ];
    add_word_timestamps(&mut segs, al, 0, EOT, PRE, APP, 0.0);
    // " b" after "!" was longer than 0.4: its start moved to 5.0 − 0.4.
    assert_eq!(segs[0].words[1].start, 4.6);
}

#[test]
fn first_word_after_a_pause_is_shortened() {
    // Previous speech ended at 0; the first word spans 5..9 (long), the
    // second 9..9.2; median of (4, 0.2, 0.2) = 0.2 → max 0.4.
    let mut segs = vec![seg(5.0, 9.4, &[1, 2, 3])];
    let al = vec![
        tw(" a", &[1], 5.0, 9.0),
        tw(" b", &[2], 9.0, 9.2),
        tw(" c", &[3], 9.2, 9.4),
    ];
    add_word_timestamps(&mut segs, al, 0, EOT, PRE, APP, 0.0);
    let w = &segs[0].words;
    // (Durations are differences of rounded times, so max_dur is 0.4 ± ε.)
    assert!((w[0].start - 8.6).abs() < 1e-9);
    assert_eq!(w[0].end, 9.0);
    // The word ends before the segment start + 0.5: the segment follows it.
    assert_eq!(segs[0].start, w[0].start);
}

#[test]
fn segments_without_text_get_no_words() {
    let mut segs = vec![seg(0.0, 1.0, &[150, 160])];
    add_word_timestamps(&mut segs, Vec::new(), 0, EOT, PRE, APP, 0.0);
    assert!(segs[0].words.is_empty());
    assert_eq!((segs[0].start, segs[0].end), (0.0, 1.0));
}
