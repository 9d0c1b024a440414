//! `max_concurrent`: how many decoding steps of one engine run at once.
//! Waiters are served first come, first served, and a transcription takes a
//! permit per window (not per call), so concurrent calls take turns at
//! window granularity: a short file is not stuck behind a long one.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use vkw_decode::CancelToken;

#[derive(Default)]
struct State {
    active: usize,
    waiting: VecDeque<u64>,
    /// Urgent waiters (live streams): served before every other waiter.
    urgent: VecDeque<u64>,
    next_ticket: u64,
}

impl State {
    /// Whether `ticket` is next in line: the first urgent waiter, or the
    /// first ordinary one when no urgent waiter is left.
    fn is_next(&self, ticket: u64) -> bool {
        match self.urgent.front() {
            Some(&t) => t == ticket,
            None => self.waiting.front() == Some(&ticket),
        }
    }
}

/// How many decoding steps (windows) may run at once, shared by every call
/// of an engine — or, handed to several engines through
/// [`crate::EngineConfig::with_limit`], by all of them (a server with several
/// models bounds its total work this way). Waiters are served first come,
/// first served; `max == 0` means no limit.
#[derive(Default)]
pub struct Limiter {
    max: usize,
    state: Mutex<State>,
    turn: Condvar,
}

/// A held permit; dropping it lets the next waiter in.
pub struct Permit<'a> {
    limiter: &'a Limiter,
}

impl Limiter {
    /// At most `max` steps at once (0 = no limit).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did (each
        // update is one statement), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a permit; `None` when `cancel` fires while waiting.
    pub fn acquire(&self, cancel: &CancelToken) -> Option<Permit<'_>> {
        self.acquire_with(cancel, false)
    }

    /// Wait for a permit; an `urgent` caller goes ahead of every ordinary
    /// waiter (first come, first served among the urgent ones), so a live
    /// stream's pass never queues behind the windows of file jobs. A step
    /// already running is never interrupted.
    pub fn acquire_with(&self, cancel: &CancelToken, urgent: bool) -> Option<Permit<'_>> {
        let mut s = self.lock();
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        if urgent {
            s.urgent.push_back(ticket);
        } else {
            s.waiting.push_back(ticket);
        }
        loop {
            let free = self.max == 0 || s.active < self.max;
            if free && s.is_next(ticket) {
                if urgent {
                    s.urgent.pop_front();
                } else {
                    s.waiting.pop_front();
                }
                s.active += 1;
                // The next in line may fit too.
                self.turn.notify_all();
                return Some(Permit { limiter: self });
            }
            if cancel.is_cancelled() {
                s.waiting.retain(|&t| t != ticket);
                s.urgent.retain(|&t| t != ticket);
                self.turn.notify_all();
                return None;
            }
            // Wake now and then to notice a cancellation.
            s = self
                .turn
                .wait_timeout(s, Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The limit (0 = none).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Steps decoding now, and calls waiting for a turn.
    pub fn load(&self) -> (usize, usize) {
        let s = self.lock();
        (s.active, s.waiting.len() + s.urgent.len())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.limiter.lock();
        s.active = s.active.saturating_sub(1);
        self.limiter.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn bounds_and_serves_in_order() {
        let l = Arc::new(Limiter::new(2));
        let peak = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (l, peak, now) = (l.clone(), peak.clone(), now.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _p = l.acquire(&CancelToken::new()).unwrap();
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(l.load(), (0, 0));
    }

    #[test]
    fn urgent_waiters_go_first() {
        let l = Arc::new(Limiter::new(1));
        let held = l.acquire(&CancelToken::new()).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let spawn = |name: &'static str, urgent: bool| {
            let (l, order) = (l.clone(), order.clone());
            std::thread::spawn(move || {
                let _p = l.acquire_with(&CancelToken::new(), urgent).unwrap();
                order.lock().unwrap().push(name);
            })
        };
        // An ordinary waiter first, then an urgent one: the urgent one is served first.
        let a = spawn("file", false);
        while l.load().1 < 1 {
            std::thread::yield_now();
        }
        let b = spawn("live", true);
        while l.load().1 < 2 {
            std::thread::yield_now();
        }
        drop(held);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["live", "file"]);
    }

    #[test]
    fn a_cancelled_waiter_leaves_the_queue() {
        let l = Limiter::new(1);
        let held = l.acquire(&CancelToken::new()).unwrap();
        let c = CancelToken::new();
        c.cancel();
        assert!(l.acquire(&c).is_none());
        drop(held);
        assert_eq!(l.load(), (0, 0));
        assert!(l.acquire(&CancelToken::new()).is_some());
    }
}
