//! Subtitle cues built from word timings, with openai-whisper's writer
//! options `--max_line_width`, `--max_line_count` and `--highlight_words`
//! (its `SubtitlesWriter.iterate_result` behaviour, re-implemented):
//!
//! * Words are laid out on lines of at most `max_line_width` characters
//!   (1000 when not given); a word that does not fit starts a new line.
//! * With both `max_line_width` and `max_line_count`, a cue holds at most
//!   `max_line_count` lines and may span segments; a pause of more than 3 s
//!   between word starts also starts a new cue. With either one missing,
//!   every segment is its own cue ("preserve segments") and lines only
//!   break at the width.
//! * A cue runs from its first word's start to its last word's end.
//! * `highlight_words` writes one cue per word with that word in `<u>…</u>`
//!   (the rest of the cue's text around it), plus a cue with the plain text
//!   over any gap between consecutive words.

use vkw_segments::Word;

/// The srt/vtt options of openai-whisper's CLI. They apply when the
/// segments carry words (word timestamps); without words every segment is
/// one cue, as before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubtitleOptions {
    /// Break lines at this many characters.
    pub max_line_width: Option<usize>,
    /// At most this many lines per cue (only together with `max_line_width`).
    pub max_line_count: Option<usize>,
    /// Underline each word as it is spoken, one cue per word.
    pub highlight_words: bool,
}

/// A cue's text and times (seconds) before formatting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Gap before a word (from the previous word's start) that starts a new cue
/// when cues may span segments.
const LONG_PAUSE: f64 = 3.0;

/// Turns the words of successive segments into cues, keeping the state of
/// the line being filled between segments.
pub(crate) struct WordCues {
    preserve_segments: bool,
    max_width: usize,
    max_count: Option<usize>,
    line_len: usize,
    line_count: usize,
    /// Words of the cue being built; text carries the spaces and the `\n`
    /// of line breaks.
    subtitle: Vec<Word>,
    /// Start of the previous word (the first word's start at first).
    last: Option<f64>,
}

impl WordCues {
    pub(crate) fn new(o: &SubtitleOptions) -> Self {
        Self {
            preserve_segments: o.max_line_count.is_none() || o.max_line_width.is_none(),
            max_width: o.max_line_width.unwrap_or(1000),
            max_count: o.max_line_count,
            line_len: 0,
            line_count: 1,
            subtitle: Vec::new(),
            last: None,
        }
    }

    /// Lay out one segment's words; completed cues' words go to `done`.
    pub(crate) fn segment(&mut self, words: &[Word], done: &mut Vec<Vec<Word>>) {
        for (i, w) in words.iter().enumerate() {
            let mut timing = w.clone();
            let last = *self.last.get_or_insert(w.start);
            let len = timing.word.chars().count();
            let long_pause = !self.preserve_segments && timing.start - last > LONG_PAUSE;
            let has_room = self.line_len + len <= self.max_width;
            let seg_break = i == 0 && !self.subtitle.is_empty() && self.preserve_segments;
            if self.line_len > 0 && has_room && !long_pause && !seg_break {
                // The word continues the line.
                self.line_len += len;
            } else {
                timing.word = timing.word.trim().to_string();
                let full = self
                    .max_count
                    .is_some_and(|m| long_pause || self.line_count >= m);
                if (!self.subtitle.is_empty() && full) || seg_break {
                    done.push(std::mem::take(&mut self.subtitle));
                    self.line_count = 1;
                } else if self.line_len > 0 {
                    self.line_count += 1;
                    timing.word.insert(0, '\n');
                }
                self.line_len = timing.word.trim().chars().count();
            }
            self.subtitle.push(timing);
            self.last = Some(w.start);
        }
    }

    /// After a segment: with segments preserved its cue is complete (the
    /// next segment's first word would break it anyway), so it can be
    /// written now instead of when the next segment arrives.
    pub(crate) fn end_segment(&mut self) -> Option<Vec<Word>> {
        if !self.preserve_segments {
            return None;
        }
        self.line_len = 0;
        self.line_count = 1;
        self.finish()
    }

    /// The last cue's words, if any.
    pub(crate) fn finish(&mut self) -> Option<Vec<Word>> {
        (!self.subtitle.is_empty()).then(|| std::mem::take(&mut self.subtitle))
    }
}

/// The cues of one group of words: one cue, or with `highlight` one per
/// word (and one per gap between words, with the plain text). `same` says
/// whether two times format to the same timestamp (gaps are judged on the
/// formatted times, as openai-whisper does).
pub(crate) fn cues(words: &[Word], highlight: bool, same: &dyn Fn(f64, f64) -> bool) -> Vec<Cue> {
    let (Some(first), Some(last_word)) = (words.first(), words.last()) else {
        return Vec::new();
    };
    let text: String = words.iter().map(|w| w.word.as_str()).collect();
    if !highlight {
        return vec![Cue {
            start: first.start,
            end: last_word.end,
            text,
        }];
    }
    let mut out = Vec::new();
    let mut last = first.start;
    for (i, w) in words.iter().enumerate() {
        if !same(last, w.start) {
            out.push(Cue {
                start: last,
                end: w.start,
                text: text.clone(),
            });
        }
        let marked: String = words
            .iter()
            .enumerate()
            .map(|(j, x)| {
                if j == i {
                    underline(&x.word)
                } else {
                    x.word.clone()
                }
            })
            .collect();
        out.push(Cue {
            start: w.start,
            end: w.end,
            text: marked,
        });
        last = w.end;
    }
    out
}

/// `<u>` around a word, after its leading whitespace (a space or the `\n`
/// of a line break).
fn underline(word: &str) -> String {
    let body = word.trim_start();
    let lead = &word[..word.len() - body.len()];
    format!("{lead}<u>{body}</u>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(word: &str, start: f64, end: f64) -> Word {
        Word {
            start,
            end,
            word: word.into(),
            probability: 0.9,
        }
    }

    fn layout(o: SubtitleOptions, segments: &[Vec<Word>]) -> Vec<String> {
        let mut c = WordCues::new(&o);
        let mut done = Vec::new();
        for s in segments {
            c.segment(s, &mut done);
        }
        done.extend(c.finish());
        done.iter()
            .map(|g| g.iter().map(|x| x.word.as_str()).collect())
            .collect()
    }

    fn two_segments() -> Vec<Vec<Word>> {
        vec![
            vec![
                w(" The", 0.0, 0.2),
                w(" quick", 0.2, 0.5),
                w(" brown", 0.5, 0.8),
            ],
            vec![w(" fox", 0.9, 1.1), w(" jumps.", 1.1, 1.5)],
        ]
    }

    #[test]
    fn without_limits_each_segment_is_one_cue() {
        let got = layout(SubtitleOptions::default(), &two_segments());
        assert_eq!(got, vec!["The quick brown", "fox jumps."]);
    }

    #[test]
    fn width_breaks_lines_within_a_segment() {
        let o = SubtitleOptions {
            max_line_width: Some(10),
            ..Default::default()
        };
        // "The quick" is 9 characters; " brown" would make 15.
        let got = layout(o, &two_segments());
        assert_eq!(got, vec!["The quick\nbrown", "fox jumps."]);
    }

    #[test]
    fn width_and_count_let_cues_span_segments() {
        let o = SubtitleOptions {
            max_line_width: Some(10),
            max_line_count: Some(2),
            ..Default::default()
        };
        let got = layout(o, &two_segments());
        // Lines: "The quick" | "brown fox" | "jumps." → two lines per cue.
        assert_eq!(got, vec!["The quick\nbrown fox", "jumps."]);
        // One line per cue.
        let o = SubtitleOptions {
            max_line_count: Some(1),
            ..o
        };
        assert_eq!(
            layout(o, &two_segments()),
            vec!["The quick", "brown fox", "jumps."]
        );
    }

    #[test]
    fn long_pause_starts_a_new_cue_when_spanning_segments() {
        let o = SubtitleOptions {
            max_line_width: Some(40),
            max_line_count: Some(2),
            ..Default::default()
        };
        let segs = vec![
            vec![w(" Hello", 0.0, 0.5)],
            vec![w(" again", 5.0, 5.5), w(" now", 5.5, 6.0)],
        ];
        assert_eq!(layout(o, &segs), vec!["Hello", "again now"]);
    }

    #[test]
    fn highlighting_underlines_each_word_and_fills_gaps() {
        let words = vec![
            w("Hello", 0.0, 0.5),
            w(" big", 0.7, 0.9),
            w("\nworld", 0.9, 1.2),
        ];
        let same = |a: f64, b: f64| (a - b).abs() < 5e-4;
        let c = cues(&words, true, &same);
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "<u>Hello</u> big\nworld",
                "Hello big\nworld", // the gap 0.5 → 0.7
                "Hello <u>big</u>\nworld",
                "Hello big\n<u>world</u>",
            ]
        );
        assert_eq!((c[1].start, c[1].end), (0.5, 0.7));
        assert_eq!((c[3].start, c[3].end), (0.9, 1.2));
        // Without highlighting: one cue from the first start to the last end.
        let c = cues(&words, false, &same);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].start, c[0].end), (0.0, 1.2));
    }
}
