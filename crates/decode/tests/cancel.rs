//! Cancellation on the real model: a token cancelled from another thread
//! stops a long-form transcription within one decoder step's work. The
//! backend is wrapped to count its calls, so "within one step" is measured,
//! not timed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use vkw_backend::cpu::{CpuBackend, CpuEncoded, CpuState};
use vkw_backend::{Alignment, Backend, BackendError, LogitsAt};
use vkw_decode::{CancelToken, DecodeError, Pipeline, Request};
use vkw_model::{HParams, WhisperModel};
use vkw_testkit::{fixtures, model_dir};

/// The CPU backend, counting every call.
struct Counting {
    inner: CpuBackend,
    calls: AtomicUsize,
}

impl Counting {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Backend for Counting {
    type Encoded = CpuEncoded;
    type State = CpuState;

    fn hparams(&self) -> &HParams {
        self.inner.hparams()
    }
    fn encode(&self, mel: &[f32], batch: usize) -> Result<CpuEncoded, BackendError> {
        self.tick();
        self.inner.encode(mel, batch)
    }
    fn encoded_to_host(&self, enc: &CpuEncoded) -> Result<Vec<f32>, BackendError> {
        self.inner.encoded_to_host(enc)
    }
    fn start(&self, enc: &CpuEncoded, index: usize) -> Result<CpuState, BackendError> {
        self.tick();
        self.inner.start(enc, index)
    }
    fn start_batch(&self, enc: &CpuEncoded, idx: &[usize]) -> Result<CpuState, BackendError> {
        self.tick();
        self.inner.start_batch(enc, idx)
    }
    fn align(
        &self,
        enc: &CpuEncoded,
        index: usize,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Alignment, BackendError> {
        self.tick();
        self.inner.align(enc, index, tokens, heads)
    }
    fn num_seqs(&self, state: &CpuState) -> usize {
        self.inner.num_seqs(state)
    }
    fn cache_len(&self, state: &CpuState) -> usize {
        self.inner.cache_len(state)
    }
    fn decode(
        &self,
        state: &mut CpuState,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        self.tick();
        self.inner.decode(state, tokens, t, at, logits)
    }
    fn reorder(&self, state: &mut CpuState, origins: &[usize]) -> Result<(), BackendError> {
        self.tick();
        self.inner.reorder(state, origins)
    }
}

#[test]
fn cancel_from_another_thread_stops_within_one_step() {
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let backend = Arc::new(Counting {
        inner: CpuBackend::new(model.clone(), 2).unwrap(),
        calls: AtomicUsize::new(0),
    });
    let audio =
        vkw_audio::load_audio_s16(&fixtures().join("data/longform/ljspeech_LJ001_0001-0032.wav"))
            .unwrap();
    let cancel = CancelToken::new();
    let request = Request {
        cancel: cancel.clone(),
        ..Request::default()
    };
    let mut p = Pipeline::new(backend.clone(), model, audio.into(), request).unwrap();
    // The first window decodes normally.
    assert!(p.step().unwrap().is_some());
    let watcher = {
        let (b, c) = (backend.clone(), cancel.clone());
        std::thread::spawn(move || {
            // Cancel in the middle of the second window's decoding.
            let start = b.calls.load(Ordering::SeqCst);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while b.calls.load(Ordering::SeqCst) < start + 20 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the window never got going"
                );
                std::thread::yield_now();
            }
            let at = b.calls.load(Ordering::SeqCst);
            c.cancel();
            at
        })
    };
    let r = p.step();
    let at_cancel = watcher.join().unwrap();
    let after = backend.calls.load(Ordering::SeqCst) - at_cancel;
    assert!(matches!(r, Err(DecodeError::Cancelled)), "{r:?}");
    // One decoder step's work: the call in flight when the token was set
    // and, at most, the reorder that completes its step.
    assert!(after <= 2, "{after} backend calls after the cancel");
    // A cancelled run stays cancelled.
    assert!(matches!(p.step(), Err(DecodeError::Cancelled)));
}
