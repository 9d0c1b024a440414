//! Transcript sinks: txt, srt, vtt, tsv and json (OpenAI `verbose_json`),
//! written the way openai-whisper's `--output_format` writers write them.
//!
//! Decoding produces [`Segment`]s one window at a time; a [`Sink`] takes
//! them as they come (the text formats write and flush each one at once, so
//! long files show progress) and [`Sink::finish`] completes the file with the
//! [`TranscriptionInfo`] that is only known at the end. [`open_output`] puts a
//! sink behind an atomic file write so an interrupted run never leaves a
//! truncated transcript that looks finished.
#![deny(missing_docs)]

mod atomic;
mod formats;
mod subtitles;
mod timestamp;

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

use vkw_segments::{ControlFlow, Segment, SegmentSink, TranscriptionInfo};

pub use atomic::{
    open_output, open_output_with, open_outputs, open_outputs_with, output_path,
    remove_pending_outputs, AtomicFileSink,
};
pub use subtitles::SubtitleOptions;
pub use timestamp::{console_line, format_timestamp};

use formats::{JsonSink, LrcSink, SubtitleKind, SubtitleSink, TsvSink, TxtSink};

/// Errors from parsing format names and opening output files.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// A format name that is not one of the supported ones.
    #[error(
        "unknown output format {value:?}: valid formats are txt, srt, vtt, tsv, json, lrc, all"
    )]
    UnknownFormat {
        /// The name as given.
        value: String,
    },
    /// An empty format list (e.g. `--output-format ""`).
    #[error("no output format given: valid formats are txt, srt, vtt, tsv, json, lrc, all")]
    NoFormat,
    /// The input path has no file name to derive the output name from.
    #[error("cannot name the output for {path:?}: the input path has no file name")]
    NoStem {
        /// The input path.
        path: PathBuf,
    },
    /// The output directory exists as something other than a directory.
    #[error("cannot write into {path:?}: it is a file, not a directory")]
    NotADirectory {
        /// The path given as the directory.
        path: PathBuf,
    },
    /// Creating the output directory or temporary file failed.
    #[error("cannot write {path:?}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// An output file format, named as openai-whisper's `--output_format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// One stripped segment text per line.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// Tab-separated start/end (ms) and text.
    Tsv,
    /// OpenAI `verbose_json`.
    Json,
    /// LRC lyrics (`[mm:ss.xx]text`, as whisper.cpp's `--output-lrc` writes
    /// it). Not part of `all`, which is openai-whisper's five.
    Lrc,
}

impl OutputFormat {
    /// Every format, in the order `all` expands to.
    pub const ALL: [OutputFormat; 5] = [
        OutputFormat::Txt,
        OutputFormat::Vtt,
        OutputFormat::Srt,
        OutputFormat::Tsv,
        OutputFormat::Json,
    ];

    /// Every format a name can select (`all` plus the extras).
    pub const NAMED: [OutputFormat; 6] = [
        OutputFormat::Txt,
        OutputFormat::Vtt,
        OutputFormat::Srt,
        OutputFormat::Tsv,
        OutputFormat::Json,
        OutputFormat::Lrc,
    ];

    /// File extension (and format name), without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Txt => "txt",
            OutputFormat::Srt => "srt",
            OutputFormat::Vtt => "vtt",
            OutputFormat::Tsv => "tsv",
            OutputFormat::Json => "json",
            OutputFormat::Lrc => "lrc",
        }
    }

    /// Whether the sink writes each segment as it arrives (all but JSON,
    /// whose top-level `text` needs the whole transcript).
    pub fn is_streaming(self) -> bool {
        self != OutputFormat::Json
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for OutputFormat {
    type Err = WriterError;

    /// Parses one format name (case-insensitive, surrounding spaces ignored).
    /// `all` is not a single format: use [`parse_formats`] for it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        OutputFormat::NAMED
            .into_iter()
            .find(|f| f.extension() == name)
            .ok_or_else(|| WriterError::UnknownFormat {
                value: s.to_string(),
            })
    }
}

/// Parses a comma-separated format list such as `"srt,json"`; `all` expands
/// to every format. Duplicates are dropped, first occurrence order is kept,
/// so each file is written once.
pub fn parse_formats(list: &str) -> Result<Vec<OutputFormat>, WriterError> {
    let mut out: Vec<OutputFormat> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let formats: Vec<OutputFormat> = if item.eq_ignore_ascii_case("all") {
            OutputFormat::ALL.to_vec()
        } else {
            vec![item.parse()?]
        };
        for f in formats {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if out.is_empty() {
        return Err(WriterError::NoFormat);
    }
    Ok(out)
}

/// A consumer of transcript segments.
///
/// Call [`Sink::write_segment`] for each segment in order, then [`Sink::finish`]
/// once. A sink flushes its writer in `finish`, so I/O errors surface there
/// rather than being lost when the writer is dropped.
pub trait Sink {
    /// Takes the next segment.
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()>;
    /// Completes the output with facts known only at the end.
    fn finish(&mut self, info: &TranscriptionInfo) -> io::Result<()>;
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        (**self).write_segment(seg)
    }

    fn finish(&mut self, info: &TranscriptionInfo) -> io::Result<()> {
        (**self).finish(info)
    }
}

/// Fans segments out to several sinks (e.g. `--output-format all`).
/// Every sink gets every call; the first error is returned after all sinks
/// have been tried, so one failing file does not starve the others.
///
/// It is also the writers' [`SegmentSink`]: a transcription streams straight
/// into it, a write error stops decoding (the sink answers `Break` and keeps
/// the error), and [`Sink::finish`] completes the files — or returns that
/// error, leaving no file half-written.
#[derive(Default)]
pub struct MultiSink {
    sinks: Vec<Box<dyn Sink + Send>>,
    error: Option<io::Error>,
}

impl MultiSink {
    /// Combines the given sinks.
    pub fn new(sinks: Vec<Box<dyn Sink + Send>>) -> Self {
        Self { sinks, error: None }
    }

    /// The write error that stopped decoding, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Adds one more sink.
    pub fn push(&mut self, sink: Box<dyn Sink + Send>) {
        self.sinks.push(sink);
    }
}

impl Sink for MultiSink {
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        let mut first = Ok(());
        for s in &mut self.sinks {
            let r = s.write_segment(seg);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    fn finish(&mut self, info: &TranscriptionInfo) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut first = Ok(());
        for s in &mut self.sinks {
            let r = s.finish(info);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl SegmentSink for MultiSink {
    fn segment(&mut self, seg: &Segment) -> ControlFlow<()> {
        if self.error.is_some() {
            return ControlFlow::Break(());
        }
        match Sink::write_segment(self, seg) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

/// Builds the sink for `format` over any writer (stdout, a file, a buffer).
pub fn writer_for(format: OutputFormat, out: Box<dyn Write + Send>) -> Box<dyn Sink + Send> {
    sink_over(format, out, &SubtitleOptions::default())
}

/// [`writer_for`] with the srt/vtt line options (used when segments carry
/// words).
pub fn writer_for_with(
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    subtitles: &SubtitleOptions,
) -> Box<dyn Sink + Send> {
    sink_over(format, out, subtitles)
}

/// Generic form of [`writer_for`], used internally so file sinks avoid a
/// second boxing layer.
pub(crate) fn sink_over<W: Write + Send + 'static>(
    format: OutputFormat,
    out: W,
    subtitles: &SubtitleOptions,
) -> Box<dyn Sink + Send> {
    match format {
        OutputFormat::Txt => Box::new(TxtSink::new(out)),
        OutputFormat::Srt => Box::new(SubtitleSink::new(out, SubtitleKind::Srt, *subtitles)),
        OutputFormat::Vtt => Box::new(SubtitleSink::new(out, SubtitleKind::Vtt, *subtitles)),
        OutputFormat::Tsv => Box::new(TsvSink::new(out)),
        OutputFormat::Json => Box::new(JsonSink::new(out)),
        OutputFormat::Lrc => Box::new(LrcSink::new(out)),
    }
}

#[cfg(test)]
mod tests;
