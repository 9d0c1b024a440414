//! Atomic output files: a sink writes into a temporary file next to its
//! destination and the file is renamed into place only when the transcript is
//! complete. A crash, an error or an early drop leaves no partial transcript
//! (and no temporary file) behind, and an older complete file stays intact
//! until the new one replaces it in one step.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;
use vkw_segments::{Segment, TranscriptionInfo};

use crate::{sink_over, OutputFormat, Sink, SubtitleOptions, WriterError};

/// Temporary files of outputs still being written, so an interrupted program
/// (Ctrl-C) can remove them: a signal ends the process without running drops.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves the list usable.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Delete the temporary files of every output not yet finished. For a
/// binary's interrupt handler, just before it exits; finished outputs and
/// older complete files are untouched.
pub fn remove_pending_outputs() {
    for path in pending().drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// A [`Sink`] writing `<dir>/<stem>.<ext>` atomically.
///
/// The destination appears only when [`Sink::finish`] succeeds. Dropping the
/// sink before that (or a failing `finish`) deletes the temporary file.
pub struct AtomicFileSink {
    /// The format sink, writing into a clone of the temp file's handle.
    /// `None` once finished.
    inner: Option<Box<dyn Sink + Send>>,
    /// The temporary file; deleted on drop unless persisted.
    temp: Option<NamedTempFile>,
    dest: PathBuf,
}

impl AtomicFileSink {
    /// Starts writing `format` destined for `dest`. The temporary file is
    /// created in `dest`'s directory so the final rename stays on one
    /// filesystem (a cross-device rename would not be atomic).
    pub fn create(dest: &Path, format: OutputFormat) -> Result<Self, WriterError> {
        Self::create_with(dest, format, &SubtitleOptions::default())
    }

    /// [`AtomicFileSink::create`] with the srt/vtt line options.
    pub fn create_with(
        dest: &Path,
        format: OutputFormat,
        subtitles: &SubtitleOptions,
    ) -> Result<Self, WriterError> {
        let io_err = |source| WriterError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .ok_or_else(|| WriterError::NoStem {
                path: dest.to_path_buf(),
            })?
            .to_string_lossy();
        let mut builder = tempfile::Builder::new();
        let prefix = format!(".{name}.");
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile defaults to 0600; a transcript should get the usual
        // umask-derived mode like any other file the user creates.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder.tempfile_in(dir).map_err(io_err)?;
        let handle: File = temp.as_file().try_clone().map_err(io_err)?;
        pending().push(temp.path().to_path_buf());
        Ok(Self {
            inner: Some(sink_over(format, BufWriter::new(handle), subtitles)),
            temp: Some(temp),
            dest: dest.to_path_buf(),
        })
    }

    /// Where the file will be (or was) written.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    fn finished() -> io::Error {
        io::Error::other("output already finished")
    }
}

impl Drop for AtomicFileSink {
    fn drop(&mut self) {
        // The temporary file is gone now (persisted, or deleted with `temp`).
        if let Some(temp) = &self.temp {
            let path = temp.path().to_path_buf();
            pending().retain(|p| *p != path);
        }
    }
}

impl Sink for AtomicFileSink {
    fn segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.inner.as_mut().ok_or_else(Self::finished)?.segment(seg)
    }

    fn finish(&mut self, info: &TranscriptionInfo) -> io::Result<()> {
        let mut inner = self.inner.take().ok_or_else(Self::finished)?;
        let temp = self.temp.take().ok_or_else(Self::finished)?;
        let temp_path = temp.path().to_path_buf();
        pending().retain(|p| *p != temp_path);
        // On any error below `temp` is dropped, which deletes the file.
        inner.finish(info)?;
        // Close our clone of the handle before the rename (Windows refuses to
        // rename files with foreign open handles in some modes).
        drop(inner);
        temp.as_file().sync_all()?;
        temp.persist(&self.dest).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The path openai-whisper would write: `dir/<input file stem>.<ext>`.
pub fn output_path(
    dir: &Path,
    input_path: &Path,
    format: OutputFormat,
) -> Result<PathBuf, WriterError> {
    let stem = input_path.file_stem().ok_or_else(|| WriterError::NoStem {
        path: input_path.to_path_buf(),
    })?;
    let mut name = stem.to_os_string();
    name.push(".");
    name.push(format.extension());
    Ok(dir.join(name))
}

/// Opens `dir/<input stem>.<ext>` for atomic writing, creating `dir` if
/// needed (as openai-whisper's CLI does for `--output_dir`).
pub fn open_output(
    dir: &Path,
    input_path: &Path,
    format: OutputFormat,
) -> Result<AtomicFileSink, WriterError> {
    open_output_with(dir, input_path, format, &SubtitleOptions::default())
}

/// [`open_output`] with the srt/vtt line options.
pub fn open_output_with(
    dir: &Path,
    input_path: &Path,
    format: OutputFormat,
    subtitles: &SubtitleOptions,
) -> Result<AtomicFileSink, WriterError> {
    std::fs::create_dir_all(dir).map_err(|source| WriterError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    AtomicFileSink::create_with(&output_path(dir, input_path, format)?, format, subtitles)
}

/// Opens one atomic output per format, boxed for use in a
/// [`MultiSink`](crate::MultiSink).
pub fn open_outputs(
    dir: &Path,
    input_path: &Path,
    formats: &[OutputFormat],
) -> Result<Vec<Box<dyn Sink + Send>>, WriterError> {
    open_outputs_with(dir, input_path, formats, &SubtitleOptions::default())
}

/// [`open_outputs`] with the srt/vtt line options.
pub fn open_outputs_with(
    dir: &Path,
    input_path: &Path,
    formats: &[OutputFormat],
    subtitles: &SubtitleOptions,
) -> Result<Vec<Box<dyn Sink + Send>>, WriterError> {
    formats
        .iter()
        .map(|&f| {
            open_output_with(dir, input_path, f, subtitles)
                .map(|s| Box::new(s) as Box<dyn Sink + Send>)
        })
        .collect()
}
