//! Time for live streams: how decoding time is measured, and the virtual
//! clock that feeds a file as if it were live.

use super::{LiveEvent, LiveSink, Stream, RATE};
use crate::Result;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Instant;

impl std::str::FromStr for ComputeClock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wall" => Ok(ComputeClock::Wall),
            "cpu" | "process-cpu" => Ok(ComputeClock::ProcessCpu),
            "zero" | "none" => Ok(ComputeClock::Zero),
            other => Err(format!("'{other}' is not a clock: use wall, cpu or zero")),
        }
    }
}

/// How a stream measures the time its decoding passes take (what they add
/// to `emitted_at`, and what [`run_virtual`] charges to its clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeClock {
    /// Elapsed real time: what a user would see on this machine now,
    /// including any wait for a CPU that other processes hold.
    #[default]
    Wall,
    /// CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`). With one
    /// decoding thread (`threads = 1`) and one stream in the process this
    /// is the pass's compute time on an otherwise idle core: a measure that
    /// other processes' load does not inflate. Falls back to `Wall` where
    /// the clock is unavailable (not Unix).
    ProcessCpu,
    /// Decoding costs nothing: passes run exactly every `min_chunk_s` of
    /// audio, whatever the machine and its load, so the events depend on
    /// the audio and the model only (tests use it).
    Zero,
}

impl ComputeClock {
    /// Seconds on this clock since an arbitrary origin.
    pub fn now(self) -> f64 {
        match self {
            ComputeClock::Wall => wall(),
            ComputeClock::ProcessCpu => process_cpu().unwrap_or_else(wall),
            ComputeClock::Zero => 0.0,
        }
    }
}

fn wall() -> f64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[cfg(unix)]
fn process_cpu() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (r == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(not(unix))]
fn process_cpu() -> Option<f64> {
    None
}

/// Feed `audio` to `stream` as a live source would, on a virtual clock: at
/// clock time `t` the first `t` seconds have arrived; a poll's decoding time
/// (measured on the stream's [`ComputeClock`]) advances the clock, and
/// without work to do the clock moves by `tick_s` (an audio callback's
/// period). Tests, benchmarks and `vkwhisper listen --file` without
/// `--realtime` use it: the events and their `emitted_at` are what a machine
/// of this speed would give live.
pub fn run_virtual(
    stream: &mut Stream,
    audio: &[f32],
    tick_s: f64,
    sink: &mut dyn LiveSink,
) -> Result<()> {
    let tick = tick_s.max(0.001);
    let clock_kind = stream.opts.clock;
    let mut clock = 0.0f64;
    let mut fed = 0usize;
    while fed < audio.len() {
        let avail = ((clock * RATE) as usize).min(audio.len());
        if avail > fed {
            stream.push(&audio[fed..avail], sink)?;
            fed = avail;
        }
        let t0 = clock_kind.now();
        stream.poll(sink)?;
        clock += (clock_kind.now() - t0).max(tick);
    }
    stream.finish(sink)
}

/// What a live run committed, as the live test and harness measure it: the
/// committed text, and per committed word its latency — when it was
/// committed (`emitted_at`, on the stream's clock) minus when it ended in
/// the audio. A [`LiveSink`] by itself, or fed from another sink with
/// [`CommitTally::record`].
#[derive(Debug, Default, Clone)]
pub struct CommitTally {
    /// The committed text, in order.
    pub text: String,
    /// Per committed word, seconds from its end in the audio to its commit.
    pub latencies: Vec<f64>,
}

impl CommitTally {
    /// Count one event (only [`LiveEvent::Committed`] adds anything).
    pub fn record(&mut self, e: &LiveEvent) {
        if let LiveEvent::Committed {
            words,
            text,
            emitted_at,
            ..
        } = e
        {
            self.text.push_str(text);
            self.latencies
                .extend(words.iter().map(|w| emitted_at - w.end));
        }
    }

    /// Words committed.
    pub fn words(&self) -> usize {
        self.latencies.len()
    }
}

impl LiveSink for CommitTally {
    fn event(&mut self, e: &LiveEvent) -> ControlFlow<()> {
        self.record(e);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::LiveWord;

    #[test]
    fn tally_counts_committed_words_only() {
        let word = |text: &str, end: f64| LiveWord {
            text: text.into(),
            start: end - 0.3,
            end,
        };
        let mut tally = CommitTally::default();
        let events = [
            LiveEvent::Tentative {
                text: " maybe".into(),
                emitted_at: 1.0,
                utterance: 0,
            },
            LiveEvent::Committed {
                words: vec![word(" hello", 0.5), word(" there", 0.9)],
                text: " hello there".into(),
                emitted_at: 1.5,
                utterance: 0,
            },
            LiveEvent::UtteranceEnd {
                utterance: 0,
                text: " hello there".into(),
                start: 0.2,
                end: 0.9,
                emitted_at: 1.6,
            },
        ];
        for e in &events {
            assert!(tally.event(e).is_continue());
        }
        assert_eq!(tally.text, " hello there");
        assert_eq!(tally.words(), 2);
        assert!((tally.latencies[0] - 1.0).abs() < 1e-9);
        assert!((tally.latencies[1] - 0.6).abs() < 1e-9);
    }
}
