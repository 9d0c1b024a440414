//! `GET /metrics` in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Counters since the server started.
#[derive(Default)]
pub struct Metrics {
    by_status: Mutex<BTreeMap<(String, u16), u64>>,
    /// Audio seconds transcribed (completed requests), in milliseconds.
    audio_ms: AtomicU64,
    /// Processing seconds of completed requests, in milliseconds.
    busy_ms: AtomicU64,
    completed: AtomicU64,
}

/// The gauges read at scrape time.
pub struct Gauges {
    /// Requests waiting for an active slot.
    pub queued: usize,
    /// Requests being transcribed.
    pub in_flight: usize,
    /// Windows decoding now / waiting for their turn.
    pub windows: (usize, usize),
    /// Loaded models.
    pub models_loaded: usize,
    /// Live sessions open.
    pub live_sessions: usize,
    /// 1 when ready.
    pub ready: bool,
}

impl Metrics {
    /// Count a finished request.
    pub fn request(&self, route: &str, status: u16) {
        let mut m = self
            .by_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *m.entry((route.to_string(), status)).or_insert(0) += 1;
    }

    /// Count a completed transcription.
    pub fn finished_audio(&self, audio_s: f64, busy_s: f64) {
        self.audio_ms
            .fetch_add((audio_s * 1000.0) as u64, Ordering::Relaxed);
        self.busy_ms
            .fetch_add((busy_s * 1000.0) as u64, Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "vkwhisper_queue_depth",
            "Requests waiting for a transcription slot.",
            g.queued as f64,
        );
        gauge(
            "vkwhisper_in_flight",
            "Requests being transcribed.",
            g.in_flight as f64,
        );
        gauge(
            "vkwhisper_windows_decoding",
            "30 s windows decoding now.",
            g.windows.0 as f64,
        );
        gauge(
            "vkwhisper_windows_waiting",
            "Windows waiting for their turn.",
            g.windows.1 as f64,
        );
        gauge(
            "vkwhisper_models_loaded",
            "Models loaded.",
            g.models_loaded as f64,
        );
        gauge(
            "vkwhisper_live_sessions",
            "Live transcription sessions open (WebSocket).",
            g.live_sessions as f64,
        );
        gauge(
            "vkwhisper_ready",
            "1 once the default models are loaded.",
            f64::from(u8::from(g.ready)),
        );
        gauge(
            "vkwhisper_resident_memory_bytes",
            "Resident set size.",
            rss_bytes() as f64,
        );
        let audio = self.audio_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let busy = self.busy_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let rtf = if audio > 0.0 { busy / audio } else { 0.0 };
        gauge(
            "vkwhisper_real_time_factor",
            "Processing time over audio time of the completed transcriptions (lower is faster).",
            rtf,
        );
        let _ = writeln!(
            out,
            "# HELP vkwhisper_audio_seconds_total Audio transcribed.\n# TYPE vkwhisper_audio_seconds_total counter\nvkwhisper_audio_seconds_total {audio}"
        );
        let _ = writeln!(
            out,
            "# HELP vkwhisper_processing_seconds_total Time spent transcribing.\n# TYPE vkwhisper_processing_seconds_total counter\nvkwhisper_processing_seconds_total {busy}"
        );
        let _ = writeln!(
            out,
            "# HELP vkwhisper_requests_total Requests by route and status.\n# TYPE vkwhisper_requests_total counter"
        );
        for ((route, status), n) in self
            .by_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "vkwhisper_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}

/// Resident set size in bytes (Linux `/proc/self/status`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
