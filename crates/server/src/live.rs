//! Live sessions behind the WebSocket routes (`/v1/realtime`, `/v1/stream`):
//! admission (`--max-sessions`), and one worker thread per session that owns
//! a [`vkwhisper::live::Stream`].
//!
//! The socket's task never decodes: it sends the worker [`Command`]s (audio
//! as it arrives, commit, clear, finish) and gets back one [`Batch`] of
//! events per poll. The worker pushes everything queued before each poll,
//! so a pass always covers all the audio that has arrived and never queues
//! behind itself. Passes are urgent at the engines' shared limiter: a live
//! session goes ahead of the windows of queued file jobs. Dropping the
//! [`Session`] (the connection went away) cancels the pass in flight and
//! ends the thread, freeing the stream at once.

use crate::error::ApiError;
use crate::models::ModelHandle;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use tokio::sync::mpsc as tmpsc;
use vkwhisper::live::{LiveEvent, Stream, StreamOptions};
use vkwhisper::{CancelToken, StreamResampler};

const RATE: f64 = 16_000.0;

/// Live sessions at once: `--max-sessions`.
pub struct Sessions {
    max: usize,
    active: AtomicUsize,
}

/// One admitted session; dropping it frees the place.
pub struct SessionPermit {
    sessions: Arc<Sessions>,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        self.sessions.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sessions {
    /// At most `max` live sessions.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            active: AtomicUsize::new(0),
        })
    }

    /// A place for one more session, or 429.
    pub fn admit(self: &Arc<Self>) -> Result<SessionPermit, ApiError> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        let permit = SessionPermit {
            sessions: self.clone(),
        };
        if now > self.max {
            drop(permit);
            return Err(ApiError::sessions_full(self.max));
        }
        Ok(permit)
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }
}

/// What the socket's task asks of the worker.
pub enum Command {
    /// Samples in [-1, 1) at the session's input rate, and when the
    /// socket received them (commits are timed from there, so a wait in
    /// this channel counts).
    Audio(Vec<f32>, Instant),
    /// End the current utterance now and decode it (a manual commit).
    Commit,
    /// Drop the current utterance's audio.
    Clear,
    /// From now on the input is at this rate (Hz).
    Rate(u32),
    /// Close the stream (after finishing the current one) and start anew
    /// with these options and this model.
    Restart(Box<StreamOptions>, ModelHandle),
    /// The end of the input: decode everything, then stop.
    Finish,
}

/// One poll's events. `lag_s` of a committed event is the wall time from
/// the arrival at the server of its last word's audio to the commit.
pub struct Batch {
    /// The events, each with its lag when it commits words.
    pub events: Vec<(LiveEvent, Option<f64>)>,
    /// How old the newest audio this poll covered is: the time the pass
    /// took plus any wait for a turn, seconds.
    pub behind_s: f64,
    /// Seconds of audio received so far (16 kHz clock).
    pub audio_s: f64,
    /// The batch ends with a `Commit`'s final pass (later commands are in
    /// later batches).
    pub committed: bool,
}

/// What the worker reports.
pub enum Output {
    /// Events of one poll (possibly empty).
    Batch(Batch),
    /// The stream failed (the session can go on for the protocol's sake,
    /// but the worker has stopped).
    Failed(String),
    /// `Finish` is done: every event was sent.
    Finished,
}

/// A running session's handle: the command channel and the output.
pub struct Session {
    tx: mpsc::Sender<Command>,
    /// The worker's output.
    pub rx: tmpsc::UnboundedReceiver<Output>,
    cancel: CancelToken,
    _permit: SessionPermit,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Stops a pass in flight at its next decoder step.
        self.cancel.cancel();
    }
}

impl Session {
    /// Start the worker thread; the stream is made from `opts` and `model`
    /// at input rate `rate`.
    pub fn start(
        permit: SessionPermit,
        opts: StreamOptions,
        model: ModelHandle,
        rate: u32,
    ) -> Result<Self, ApiError> {
        let cancel = CancelToken::new();
        let (tx, cmd_rx) = mpsc::channel();
        let (out_tx, rx) = tmpsc::unbounded_channel();
        let worker = Worker::new(opts, model, rate, cancel.clone(), out_tx)?;
        std::thread::Builder::new()
            .name("vkwhisper-live".into())
            .spawn(move || worker.run(cmd_rx))
            .map_err(|e| ApiError::internal(format!("cannot start a live session: {e}")))?;
        Ok(Self {
            tx,
            rx,
            cancel,
            _permit: permit,
        })
    }

    /// Send a command (ignored once the worker has stopped).
    pub fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }
}

/// The thread's state.
struct Worker {
    stream: Stream,
    model: ModelHandle,
    resampler: Option<StreamResampler>,
    /// The input rate, Hz.
    rate: u32,
    cancel: CancelToken,
    out: tmpsc::UnboundedSender<Output>,
    /// (stream samples after a chunk, when it arrived): to time commits.
    arrivals: VecDeque<(u64, Instant)>,
    /// Samples pushed into the current stream.
    pushed: u64,
    /// Utterance numbers of earlier streams (after a restart), so numbers
    /// stay unique within the session.
    base: u64,
    next_base: u64,
}

fn make_stream(
    mut opts: StreamOptions,
    model: &ModelHandle,
    cancel: &CancelToken,
) -> Result<Stream, ApiError> {
    opts.cancel = Some(cancel.clone());
    model
        .engine()
        .stream(opts)
        .map_err(|e| ApiError::from_engine(&e))
}

fn resampler(rate: u32) -> Result<Option<StreamResampler>, ApiError> {
    if rate == 16_000 {
        return Ok(None);
    }
    StreamResampler::new(rate)
        .map(Some)
        .map_err(|e| ApiError::invalid("sample_rate", format!("{rate} Hz: {e}")))
}

impl Worker {
    fn new(
        opts: StreamOptions,
        model: ModelHandle,
        rate: u32,
        cancel: CancelToken,
        out: tmpsc::UnboundedSender<Output>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            stream: make_stream(opts, &model, &cancel)?,
            model,
            resampler: resampler(rate)?,
            rate,
            cancel,
            out,
            arrivals: VecDeque::new(),
            pushed: 0,
            base: 0,
            next_base: 0,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        // A closed channel is the connection gone: stop at once.
        while let Ok(first) = rx.recv() {
            let mut events = Vec::new();
            let mut cmd = Some(first);
            let mut finish = false;
            let mut committed = false;
            let mut r = Ok(());
            // Everything already queued, in order, before decoding; a
            // commit ends the batch so that its events are told apart.
            while let Some(c) = cmd.take() {
                finish = matches!(c, Command::Finish);
                committed = matches!(c, Command::Commit);
                r = self.apply(c, &mut events);
                if r.is_err() || finish || committed {
                    break;
                }
                cmd = rx.try_recv().ok();
            }
            let started = Instant::now();
            if r.is_ok() && !finish {
                r = self.poll(&mut events);
            }
            let batch = Batch {
                events,
                behind_s: started.elapsed().as_secs_f64(),
                audio_s: self.pushed as f64 / RATE,
                committed,
            };
            if self.out.send(Output::Batch(batch)).is_err() || self.cancel.is_cancelled() {
                return;
            }
            if let Err(e) = r {
                let _ = self.out.send(Output::Failed(e));
                return;
            }
            if finish {
                let _ = self.out.send(Output::Finished);
                return;
            }
        }
    }

    /// One command; events go to `events`.
    fn apply(
        &mut self,
        c: Command,
        events: &mut Vec<(LiveEvent, Option<f64>)>,
    ) -> Result<(), String> {
        match c {
            Command::Audio(samples, at) => {
                let samples = match &mut self.resampler {
                    Some(r) => r.push(&samples)?,
                    None => samples,
                };
                self.push(&samples, at, events)
            }
            Command::Commit => self.with_sink(events, |s, sink| s.flush(sink)),
            Command::Clear => {
                self.stream.clear();
                Ok(())
            }
            Command::Rate(rate) => {
                self.flush_resampler(events)?;
                self.rate = rate;
                self.resampler = resampler(rate).map_err(|e| e.message)?;
                Ok(())
            }
            Command::Restart(opts, model) => {
                self.flush_resampler(events)?;
                // The resampler starts afresh with the new stream.
                self.resampler = resampler(self.rate).map_err(|e| e.message)?;
                self.with_sink(events, |s, sink| s.finish(sink))?;
                self.stream = make_stream(*opts, &model, &self.cancel).map_err(|e| e.message)?;
                self.model = model;
                self.base = self.next_base;
                self.pushed = 0;
                self.arrivals.clear();
                Ok(())
            }
            Command::Finish => {
                self.flush_resampler(events)?;
                self.with_sink(events, |s, sink| s.finish(sink))
            }
        }
    }

    fn flush_resampler(
        &mut self,
        events: &mut Vec<(LiveEvent, Option<f64>)>,
    ) -> Result<(), String> {
        if let Some(r) = self.resampler.take() {
            let tail = r.finish()?;
            self.push(&tail, Instant::now(), events)?;
        }
        Ok(())
    }

    /// Push 16 kHz samples; a long burst (a client sending faster than
    /// real time) is decoded as it goes, so no pass sees more than the
    /// stream's buffer cap.
    fn push(
        &mut self,
        samples: &[f32],
        at: Instant,
        events: &mut Vec<(LiveEvent, Option<f64>)>,
    ) -> Result<(), String> {
        for piece in samples.chunks(16_000 * 5) {
            self.with_sink(events, |s, sink| s.push(piece, sink))?;
            self.pushed += piece.len() as u64;
            self.arrivals.push_back((self.pushed, at));
            if self.stream.buffered() >= 25.0 {
                self.poll(events)?;
            }
        }
        // Commits are never older than the 30 s buffer: forget the rest.
        let keep_from = self.pushed.saturating_sub(16_000 * 60);
        while self.arrivals.len() > 1 && self.arrivals[0].0 < keep_from {
            self.arrivals.pop_front();
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<(LiveEvent, Option<f64>)>) -> Result<(), String> {
        self.with_sink(events, |s, sink| s.poll(sink))
    }

    /// When the sample at `t` seconds arrived (the chunk that held it).
    fn arrival(&self, t: f64) -> Option<Instant> {
        let sample = (t * RATE) as u64;
        self.arrivals
            .iter()
            .find(|(end, _)| *end >= sample)
            .or(self.arrivals.back())
            .map(|(_, at)| *at)
    }

    /// Run `f` on the stream with a sink that collects the events, their
    /// utterance numbers made session-wide and commits timed.
    fn with_sink(
        &mut self,
        events: &mut Vec<(LiveEvent, Option<f64>)>,
        f: impl FnOnce(&mut Stream, &mut dyn vkwhisper::live::LiveSink) -> vkwhisper::Result<()>,
    ) -> Result<(), String> {
        let mut got: Vec<LiveEvent> = Vec::new();
        let r = f(&mut self.stream, &mut |e: &LiveEvent| {
            got.push(e.clone());
            ControlFlow::Continue(())
        });
        for mut e in got {
            let lag = match &e {
                LiveEvent::Committed { words, .. } => words
                    .last()
                    .and_then(|w| self.arrival(w.end))
                    .map(|at| at.elapsed().as_secs_f64()),
                _ => None,
            };
            let n = utterance_of(&mut e);
            *n += self.base;
            self.next_base = self.next_base.max(*n + 1);
            events.push((e, lag));
        }
        r.map_err(|e| e.to_string())
    }
}

/// The utterance number of any event.
fn utterance_of(e: &mut LiveEvent) -> &mut u64 {
    match e {
        LiveEvent::SpeechStarted { utterance, .. }
        | LiveEvent::SpeechStopped { utterance, .. }
        | LiveEvent::Committed { utterance, .. }
        | LiveEvent::Tentative { utterance, .. }
        | LiveEvent::UtteranceEnd { utterance, .. } => utterance,
    }
}
