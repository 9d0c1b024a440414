//! The transcript sinks. Text sinks stream (each segment is written and
//! flushed as soon as it arrives, so `tail -f` and pipes see live output);
//! JSON needs the whole transcript for its top-level `text` and so buffers.

use std::io::{self, Write};

use serde::Serialize;
use vkw_segments::{Segment, TranscriptionInfo, Word};

use crate::subtitles::{cues, SubtitleOptions, WordCues};
use crate::timestamp::{format_timestamp, round_ms};
use crate::Sink;

/// Plain text: one stripped segment text per line (openai-whisper `WriteTXT`).
pub(crate) struct TxtSink<W: Write> {
    out: W,
}

impl<W: Write> TxtSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write> Sink for TxtSink<W> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        writeln!(self.out, "{}", seg.text.trim())?;
        self.out.flush()
    }

    fn finish(&mut self, _info: &TranscriptionInfo) -> io::Result<()> {
        self.out.flush()
    }
}

/// Which cue syntax a [`SubtitleSink`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubtitleKind {
    /// SubRip: numbered cues, `HH:MM:SS,mmm`.
    Srt,
    /// WebVTT: `WEBVTT` header, `MM:SS.mmm` (hours only when needed).
    Vtt,
}

/// SRT and VTT share everything but the header, the cue numbers and the
/// timestamp style, as in openai-whisper's `SubtitlesWriter`.
pub(crate) struct SubtitleSink<W: Write> {
    out: W,
    kind: SubtitleKind,
    /// Number of cues written so far (SRT numbers them from 1).
    cues: usize,
    /// Whether the VTT header is out; written lazily so that a transcript with
    /// no segments still gets one (at finish) but never two.
    header_done: bool,
    /// Line options for segments with words.
    options: SubtitleOptions,
    /// Cue layout from words, carried across segments.
    words: WordCues,
}

impl<W: Write> SubtitleSink<W> {
    pub(crate) fn new(out: W, kind: SubtitleKind, options: SubtitleOptions) -> Self {
        Self {
            out,
            kind,
            cues: 0,
            header_done: kind == SubtitleKind::Srt,
            options,
            words: WordCues::new(&options),
        }
    }

    fn timestamp(&self, t: f64) -> String {
        match self.kind {
            SubtitleKind::Srt => format_timestamp(t, true, ','),
            SubtitleKind::Vtt => format_timestamp(t, false, '.'),
        }
    }

    fn cue(&mut self, start: f64, end: f64, text: &str) -> io::Result<()> {
        self.cues += 1;
        if self.kind == SubtitleKind::Srt {
            writeln!(self.out, "{}", self.cues)?;
        }
        // "-->" inside the text would be read as a cue timing line.
        writeln!(
            self.out,
            "{} --> {}\n{}\n",
            self.timestamp(start),
            self.timestamp(end),
            text.replace("-->", "->")
        )
    }

    /// Cues of one group of words (see `subtitles.rs`).
    fn word_cues(&mut self, words: &[Word]) -> io::Result<()> {
        let same = |a: f64, b: f64| self.timestamp(a) == self.timestamp(b);
        for c in cues(words, self.options.highlight_words, &same) {
            self.cue(c.start, c.end, &c.text)?;
        }
        Ok(())
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            self.out.write_all(b"WEBVTT\n\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for SubtitleSink<W> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.header()?;
        match &seg.words {
            // Word timestamps: cues laid out from the words, as
            // openai-whisper does whenever its result has words.
            Some(words) => {
                let mut done = Vec::new();
                self.words.segment(words, &mut done);
                done.extend(self.words.end_segment());
                for group in done {
                    self.word_cues(&group)?;
                }
            }
            None => self.cue(seg.start, seg.end, seg.text.trim())?,
        }
        self.out.flush()
    }

    fn finish(&mut self, _info: &TranscriptionInfo) -> io::Result<()> {
        self.header()?;
        if let Some(group) = self.words.finish() {
            self.word_cues(&group)?;
        }
        self.out.flush()
    }
}

/// Tab-separated `start\tend\ttext` with integer milliseconds
/// (openai-whisper `WriteTSV`), convenient for spreadsheets and scripts.
pub(crate) struct TsvSink<W: Write> {
    out: W,
    header_done: bool,
}

impl<W: Write> TsvSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            header_done: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            self.out.write_all(b"start\tend\ttext\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Sink for TsvSink<W> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.header()?;
        // A tab inside the text would add a column.
        let text = seg.text.trim().replace('\t', " ");
        writeln!(
            self.out,
            "{}\t{}\t{}",
            round_ms(seg.start),
            round_ms(seg.end),
            text
        )?;
        self.out.flush()
    }

    fn finish(&mut self, _info: &TranscriptionInfo) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}

/// LRC lyrics, as whisper.cpp's `--output-lrc` writes them: a `[by:…]` tag,
/// then one `[mm:ss.xx]text` line per segment at its start (centiseconds;
/// minutes keep counting past 59, as LRC has no hours field).
pub(crate) struct LrcSink<W: Write> {
    out: W,
    header_done: bool,
}

impl<W: Write> LrcSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            header_done: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            self.out.write_all(b"[by:vkwhisper]\n")?;
        }
        Ok(())
    }
}

/// `mm:ss.xx` of a time in seconds (negative times clamp to zero).
fn lrc_time(seconds: f64) -> String {
    let cs = (seconds.max(0.0) * 100.0).round() as u64;
    format!("{:02}:{:02}.{:02}", cs / 6000, cs / 100 % 60, cs % 100)
}

impl<W: Write> Sink for LrcSink<W> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.header()?;
        // A line break inside the text would start a line without a time.
        let text = seg.text.trim().replace(['\n', '\r'], " ");
        writeln!(self.out, "[{}]{}", lrc_time(seg.start), text)?;
        self.out.flush()
    }

    fn finish(&mut self, _info: &TranscriptionInfo) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}

/// OpenAI `verbose_json` document. Field order is the order of the struct,
/// which serde_json keeps, so the output is stable and diffable.
#[derive(Serialize)]
struct JsonDoc<'a> {
    text: String,
    language: &'a str,
    language_probability: f64,
    duration: f64,
    segments: &'a [JsonSegment],
}

/// One segment of the JSON document; `words` is omitted (not `null`) when the
/// transcription ran without word timestamps, as openai-whisper does.
#[derive(Serialize)]
struct JsonSegment {
    id: usize,
    seek: usize,
    start: f64,
    end: f64,
    text: String,
    tokens: Vec<u32>,
    temperature: f32,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<Word>>,
}

impl From<&Segment> for JsonSegment {
    fn from(s: &Segment) -> Self {
        Self {
            id: s.id,
            seek: s.seek,
            start: s.start,
            end: s.end,
            text: s.text.clone(),
            tokens: s.tokens.clone(),
            temperature: s.temperature,
            avg_logprob: s.avg_logprob,
            compression_ratio: s.compression_ratio,
            no_speech_prob: s.no_speech_prob,
            words: s.words.clone(),
        }
    }
}

/// Buffers segments and writes one JSON document on finish.
pub(crate) struct JsonSink<W: Write> {
    out: W,
    segments: Vec<JsonSegment>,
}

impl<W: Write> JsonSink<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            segments: Vec::new(),
        }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.segments.push(seg.into());
        Ok(())
    }

    fn finish(&mut self, info: &TranscriptionInfo) -> io::Result<()> {
        // Whisper's top-level text is the decode of all tokens, i.e. the
        // segment texts concatenated with their leading spaces.
        let text: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        let doc = JsonDoc {
            text,
            language: &info.language,
            language_probability: info.language_probability,
            duration: info.duration,
            segments: &self.segments,
        };
        serde_json::to_writer(&mut self.out, &doc).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}
