//! Atomic output files: a sink writes into a temporary file next to its
//! destination and the file is renamed into place only when the transcript is
//! complete. An error or an early drop leaves no partial transcript (and no
//! temporary file) behind, an interrupted program removes its temporary files
//! in its signal handler ([`remove_pending_outputs`]), and an older complete
//! file stays intact until the new one replaces it in one step.
//!
//! A process killed outright (SIGKILL, a power cut) cannot clean up. Its
//! temporary files are named `.<file>.vkw<pid>.<random>.tmp`, so the next
//! sink created for the same file recognises them as ours and removes those
//! whose process is gone (see [`remove_stale_temps`]).

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

/// The start of our temporary files' names for destination `name`; the
/// writing process's id follows, then a dot.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.vkw")
}

const TEMP_SUFFIX: &str = ".tmp";

/// Remove, in `dir`, the temporary files an earlier run left for the
/// destination `name` when that run's process no longer exists (it was
/// killed before it could clean up). Only names of our own pattern
/// (`.<name>.vkw<pid>.<random>.tmp`) are touched, never those of a process
/// that is still running; errors are ignored (another run may remove the
/// same file at the same time).
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|r| r.ends_with(TEMP_SUFFIX))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && process_gone(pid, &entry) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the process that wrote `entry` has ended. On Linux `/proc` says
/// so exactly (a reused pid only keeps the file); elsewhere, without a
/// portable check, a file untouched for a day is taken as abandoned.
fn process_gone(pid: u32, entry: &std::fs::DirEntry) -> bool {
    if cfg!(target_os = "linux") {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
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
        remove_stale_temps(dir, &name);
        let mut builder = tempfile::Builder::new();
        let prefix = format!("{}{}.", temp_prefix(&name), std::process::id());
        builder.prefix(&prefix).suffix(TEMP_SUFFIX);
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
    fn write_segment(&mut self, seg: &Segment) -> io::Result<()> {
        self.inner
            .as_mut()
            .ok_or_else(Self::finished)?
            .write_segment(seg)
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
    // create_dir_all on a file reports "File exists", which reads as if the
    // output file were the problem.
    if dir.exists() && !dir.is_dir() {
        return Err(WriterError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
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

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn stale_temps_of_dead_processes_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // pid 0 is never a user process; our own pid is alive.
        let dead = d.join(".talk.srt.vkw0.abc123.tmp");
        let mine = d.join(format!(".talk.srt.vkw{}.def456.tmp", std::process::id()));
        let other_file = d.join(".talk.vtt.vkw0.abc123.tmp");
        let not_ours = d.join(".talk.srt.xyz.tmp");
        for p in [&dead, &mine, &other_file, &not_ours] {
            std::fs::write(p, b"partial").unwrap();
        }
        let mut sink = AtomicFileSink::create(&d.join("talk.srt"), OutputFormat::Srt).unwrap();
        assert!(!dead.exists(), "a dead process's temp file is removed");
        assert!(mine.exists() && other_file.exists() && not_ours.exists());
        sink.finish(&TranscriptionInfo {
            language: "en".into(),
            language_probability: 1.0,
            duration: 1.0,
            duration_after_vad: 1.0,
            all_language_probs: None,
        })
        .unwrap();
        let names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"talk.srt".to_string()), "{names:?}");
    }

    #[test]
    fn an_output_directory_that_is_a_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"keep me").unwrap();
        let e = open_output(&file, Path::new("talk.wav"), OutputFormat::Srt)
            .err()
            .expect("a file is no output directory");
        assert!(matches!(e, WriterError::NotADirectory { .. }), "{e:?}");
        assert!(e.to_string().contains("is a file, not a directory"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }
}
