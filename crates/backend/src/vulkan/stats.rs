//! Per-step counters of the Vulkan backend (`--timings`): what the host did
//! for each decoder step — dispatches recorded, submits, host waits, bind
//! groups and buffers created, bytes read back, time spent recording and
//! waiting — and, per encoded window, the same plus the memory traffic the
//! kernels' operands imply (each operand counted once: what a kernel must
//! at least read and write).
//!
//! The counters are thread-local ([`tally`]): a step's numbers are the
//! difference of its thread's counters before and after it, so concurrent
//! calls on one backend never mix their counts.

use std::cell::Cell;
use std::fmt;
use std::sync::Mutex;

/// Host-side work counted on the current thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Compute dispatches encoded.
    pub dispatches: u64,
    /// Queue submissions.
    pub submits: u64,
    /// Blocking waits for the device.
    pub waits: u64,
    /// Bind groups created.
    pub bind_groups: u64,
    /// Buffers created.
    pub buffers: u64,
    /// Bytes copied back to the host.
    pub read_bytes: u64,
    /// Nanoseconds spent recording and encoding commands.
    pub record_ns: u64,
    /// Nanoseconds spent blocked on the device.
    pub wait_ns: u64,
    /// GPU nanoseconds of the timed dispatches (`VKW_GPU_PROFILE=1`).
    pub gpu_ns: u64,
    /// Bytes the recorded kernels read and write in device memory, each
    /// operand once (compulsory traffic, counted from the shapes).
    pub traffic: u64,
}

thread_local! {
    static TALLY: Cell<Tally> = const { Cell::new(Tally {
        dispatches: 0, submits: 0, waits: 0, bind_groups: 0, buffers: 0,
        read_bytes: 0, record_ns: 0, wait_ns: 0, gpu_ns: 0, traffic: 0,
    }) };
}

/// This thread's counters so far.
pub fn tally() -> Tally {
    TALLY.with(|t| t.get())
}

/// Add to this thread's counters.
pub(crate) fn count(f: impl FnOnce(&mut Tally)) {
    TALLY.with(|t| {
        let mut v = t.get();
        f(&mut v);
        t.set(v);
    });
}

impl Tally {
    /// Add `o`'s counts.
    pub fn add(&mut self, o: &Tally) {
        self.dispatches += o.dispatches;
        self.submits += o.submits;
        self.waits += o.waits;
        self.bind_groups += o.bind_groups;
        self.buffers += o.buffers;
        self.read_bytes += o.read_bytes;
        self.record_ns += o.record_ns;
        self.wait_ns += o.wait_ns;
        self.gpu_ns += o.gpu_ns;
        self.traffic += o.traffic;
    }

    /// The counts since `earlier` (a snapshot of the same thread).
    pub fn since(&self, earlier: &Tally) -> Tally {
        Tally {
            dispatches: self.dispatches - earlier.dispatches,
            submits: self.submits - earlier.submits,
            waits: self.waits - earlier.waits,
            bind_groups: self.bind_groups - earlier.bind_groups,
            buffers: self.buffers - earlier.buffers,
            read_bytes: self.read_bytes - earlier.read_bytes,
            record_ns: self.record_ns - earlier.record_ns,
            wait_ns: self.wait_ns - earlier.wait_ns,
            gpu_ns: self.gpu_ns - earlier.gpu_ns,
            traffic: self.traffic - earlier.traffic,
        }
    }
}

/// One decoder step (a `decode` call of one token per sequence).
#[derive(Debug, Clone, Copy)]
pub struct StepSample {
    /// Its counts.
    pub tally: Tally,
    /// Sequences in the step.
    pub seqs: usize,
    /// Whether this was the state's first step (allocations are expected).
    pub first: bool,
}

/// One `encode` call.
#[derive(Debug, Clone, Copy)]
pub struct EncodeSample {
    /// Its counts.
    pub tally: Tally,
    /// Windows encoded.
    pub windows: usize,
}

/// Every step's and encode's counts of a backend (shared by all its states).
#[derive(Default)]
pub struct StepLog {
    steps: Mutex<Vec<StepSample>>,
    encodes: Mutex<Vec<EncodeSample>>,
}

impl StepLog {
    /// Record a step.
    pub fn push(&self, s: StepSample) {
        if let Ok(mut v) = self.steps.lock() {
            v.push(s);
        }
    }

    /// Record an encode call.
    pub fn push_encode(&self, s: EncodeSample) {
        if let Ok(mut v) = self.encodes.lock() {
            v.push(s);
        }
    }

    /// The summary so far.
    pub fn stats(&self) -> StepStats {
        StepStats {
            samples: self.steps.lock().map(|v| v.clone()).unwrap_or_default(),
            encodes: self.encodes.lock().map(|v| v.clone()).unwrap_or_default(),
            profile: Vec::new(),
        }
    }
}

/// Per-step counters of a run; `Display` writes one `key=value` line body
/// (mean and p95 per step, and what was created after each state's first
/// step), e.g. for `vkwhisper-steps:`.
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    /// The steps, in order.
    pub samples: Vec<StepSample>,
    /// The encode calls, in order.
    pub encodes: Vec<EncodeSample>,
    /// GPU time per kernel over the whole run (`VKW_GPU_PROFILE=1`):
    /// (kernel, ms, dispatches), largest first.
    pub profile: Vec<(String, f64, u64)>,
}

/// One per-step quantity of a sample.
type Quantity = dyn Fn(&StepSample) -> f64;

/// Mean and 95th percentile of `v`.
fn mean_p95(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1;
    (mean, v[i])
}

impl StepStats {
    /// Mean and p95 of one per-step quantity.
    pub fn summary(&self, f: impl Fn(&StepSample) -> f64) -> (f64, f64) {
        mean_p95(self.samples.iter().map(f).collect())
    }

    /// Per encoded window over all encode calls: (windows, dispatches,
    /// submits, traffic MB). (No time: an encode call does not wait for
    /// the GPU; the decoder's first call does.)
    pub fn encoder_per_window(&self) -> (usize, f64, f64, f64) {
        let n: usize = self.encodes.iter().map(|e| e.windows).sum();
        let mut t = Tally::default();
        for e in &self.encodes {
            t.add(&e.tally);
        }
        let per = |x: u64| x as f64 / n.max(1) as f64;
        (n, per(t.dispatches), per(t.submits), per(t.traffic) / 1e6)
    }

    /// Bind groups and buffers created in steps other than a state's first.
    pub fn created_after_first(&self) -> (u64, u64) {
        self.samples
            .iter()
            .filter(|s| !s.first)
            .fold((0, 0), |(b, u), s| {
                (b + s.tally.bind_groups, u + s.tally.buffers)
            })
    }
}

impl fmt::Display for StepStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "steps={}", self.samples.len())?;
        let rows: [(&str, &Quantity, usize); 9] = [
            ("dispatches", &|s| s.tally.dispatches as f64, 1),
            ("submits", &|s| s.tally.submits as f64, 1),
            ("waits", &|s| s.tally.waits as f64, 1),
            ("bind_groups", &|s| s.tally.bind_groups as f64, 1),
            ("buffers", &|s| s.tally.buffers as f64, 1),
            (
                "readback_kb_per_seq",
                &|s| s.tally.read_bytes as f64 / 1024.0 / s.seqs.max(1) as f64,
                1,
            ),
            ("record_ms", &|s| s.tally.record_ns as f64 / 1e6, 3),
            ("wait_ms", &|s| s.tally.wait_ns as f64 / 1e6, 3),
            ("gpu_ms", &|s| s.tally.gpu_ns as f64 / 1e6, 3),
        ];
        for (name, get, prec) in rows {
            let (mean, p95) = self.summary(get);
            write!(f, " {name}_mean={mean:.prec$} {name}_p95={p95:.prec$}")?;
        }
        let (bg, bufs) = self.created_after_first();
        write!(
            f,
            " bind_groups_after_first={bg} buffers_after_first={bufs}"
        )?;
        if !self.encodes.is_empty() {
            let (n, disp, subs, mb) = self.encoder_per_window();
            write!(
                f,
                " encoder_windows={n} encoder_dispatches_per_window={disp:.1} encoder_submits_per_window={subs:.1} encoder_traffic_mb_per_window={mb:.1}"
            )?;
        }
        for (k, ms, n) in &self.profile {
            write!(f, " gpu[{k}]={ms:.1}ms/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_is_per_thread_and_stats_summarise() {
        let a = tally();
        count(|t| t.dispatches += 3);
        std::thread::spawn(|| count(|t| t.dispatches += 100))
            .join()
            .unwrap();
        assert_eq!(tally().since(&a).dispatches, 3);
        let s = |d, first| StepSample {
            tally: Tally {
                dispatches: d,
                bind_groups: d,
                ..Default::default()
            },
            seqs: 1,
            first,
        };
        let st = StepStats {
            samples: vec![s(10, true), s(2, false), s(4, false)],
            encodes: Vec::new(),
            profile: Vec::new(),
        };
        assert_eq!(
            st.summary(|s| s.tally.dispatches as f64),
            (16.0 / 3.0, 10.0)
        );
        assert_eq!(st.created_after_first(), (6, 0));
        let line = st.to_string();
        assert!(line.starts_with("steps=3 dispatches_mean=5.3"), "{line}");
        assert!(line.ends_with("buffers_after_first=0"), "{line}");
    }
}
