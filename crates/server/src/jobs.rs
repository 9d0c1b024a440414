//! Running transcriptions: admission (a bounded queue, 429 beyond), at most
//! `active` jobs holding decoded audio at a time (FIFO), each on a blocking
//! thread outside the async runtime, streaming its events back; the
//! engines' shared [`vkwhisper::Limiter`] lets `workers` windows decode at
//! once, taking turns window by window, so a short request is not stuck
//! behind a long one. A request whose client goes away is cancelled.

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::models::ModelHandle;
use crate::request::Upload;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use vkwhisper::{CancelToken, Progress, Segment, TranscribeOptions, TranscriptionInfo};

/// What a running job reports.
pub enum Event {
    /// The transcription's facts, before the first segment.
    Begin(TranscriptionInfo),
    /// The segments of one window (or batch of windows).
    Window(Vec<Segment>),
    /// Progress after a window.
    Progress(Progress),
    /// Done.
    End(TranscriptionInfo),
    /// Failed.
    Failed(ApiError),
}

/// Admission and the active slots.
pub struct Jobs {
    active: Arc<Semaphore>,
    in_system: AtomicUsize,
    capacity: usize,
    metrics: Arc<Metrics>,
}

/// A job admitted to the system (queued or running).
pub struct Admitted {
    jobs: Arc<Jobs>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.jobs.in_system.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Cancels its token when dropped (the handler future or the response
/// stream went away before the end).
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Jobs {
    /// `active` jobs at once, `queue` more waiting.
    pub fn new(active: usize, queue: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            active: Arc::new(Semaphore::new(active.max(1))),
            in_system: AtomicUsize::new(0),
            capacity: active.max(1) + queue,
            metrics,
        })
    }

    /// Admit one more job, or 429 when the queue is full.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, ApiError> {
        let now = self.in_system.fetch_add(1, Ordering::SeqCst) + 1;
        let admitted = Admitted { jobs: self.clone() };
        if now > self.capacity {
            drop(admitted);
            return Err(ApiError::queue_full(2));
        }
        Ok(admitted)
    }

    /// Jobs admitted (queued + running).
    pub fn in_system(&self) -> usize {
        self.in_system.load(Ordering::SeqCst)
    }

    /// Jobs running now.
    pub fn running(&self, active_max: usize) -> usize {
        active_max.saturating_sub(self.active.available_permits())
    }

    /// Wait for an active slot (FIFO), then run the job on a blocking
    /// thread; its events arrive on the returned channel. The job stops at
    /// the next decoder step once `cancel` fires or the receiver is dropped.
    pub async fn run(
        self: &Arc<Self>,
        admitted: Admitted,
        model: ModelHandle,
        upload: Upload,
        file_name: String,
        opts: TranscribeOptions,
        cancel: CancelToken,
    ) -> Result<mpsc::Receiver<Event>, ApiError> {
        let permit = self
            .active
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        let (tx, rx) = mpsc::channel(16);
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = (permit, admitted);
            let started = std::time::Instant::now();
            let audio_s = run_job(&model, upload, &file_name, &opts, &cancel, &tx);
            if let Some(s) = audio_s {
                metrics.finished_audio(s, started.elapsed().as_secs_f64());
            }
        });
        Ok(rx)
    }
}

/// Decode the upload and transcribe it, sending events; the audio duration
/// when it completed.
fn run_job(
    model: &ModelHandle,
    upload: Upload,
    file_name: &str,
    opts: &TranscribeOptions,
    cancel: &CancelToken,
    tx: &mpsc::Sender<Event>,
) -> Option<f64> {
    // A dropped receiver (client gone) cancels the job.
    let send = |e: Event| {
        if tx.blocking_send(e).is_err() {
            cancel.cancel();
            false
        } else {
            true
        }
    };
    let fail = |e: ApiError| {
        let _ = tx.blocking_send(Event::Failed(e));
        None
    };
    let ext = std::path::Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_string);
    let audio = match upload {
        Upload::Memory(bytes) => vkwhisper::decode_audio_bytes(bytes, ext.as_deref(), file_name),
        Upload::Spooled(f) => std::fs::read(f.path())
            .map_err(|e| vkwhisper::Error::InvalidOption(format!("cannot read the upload: {e}")))
            .and_then(|b| {
                drop(f);
                vkwhisper::decode_audio_bytes(b, ext.as_deref(), file_name)
            }),
    };
    let audio = match audio {
        Ok(a) if a.duration() > 0.0 => a,
        Ok(_) => {
            return fail(ApiError::invalid(
                "file",
                format!("{file_name}: the audio is empty (no samples decoded)"),
            ))
        }
        Err(e) => return fail(ApiError::invalid("file", e.to_string())),
    };
    let engine = model.engine();
    let mut segments = match engine.segments(audio, opts) {
        Ok(s) => s,
        Err(e) => return fail(ApiError::from_engine(&e)),
    };
    if !send(Event::Begin(segments.info().clone())) {
        return None;
    }
    loop {
        match segments.next_window() {
            Ok(Some(w)) => {
                if !send(Event::Window(w)) || !send(Event::Progress(segments.progress())) {
                    return None;
                }
            }
            Ok(None) => break,
            Err(e) => return fail(ApiError::from_engine(&e)),
        }
    }
    let info = segments.info().clone();
    let duration = info.duration;
    send(Event::End(info)).then_some(duration)
}
