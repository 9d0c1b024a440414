//! A deterministic fake [`Backend`] for unit tests: the logits of a sequence
//! are a pure function of its token history.

use vkw_backend::{Backend, BackendError, LogitsAt};
use vkw_model::HParams;

/// Logits of the next token given the full history (prompt included).
pub(crate) type LogitFn = dyn Fn(&[u32]) -> Vec<f32> + Send + Sync;

pub(crate) struct MockBackend {
    hp: HParams,
    f: Box<LogitFn>,
}

impl MockBackend {
    pub fn new(n_vocab: usize, f: Box<LogitFn>) -> Self {
        Self {
            hp: HParams {
                n_mels: 2,
                d_model: 4,
                d_ffn: 8,
                n_audio_ctx: 4,
                n_text_ctx: 448,
                n_vocab,
                encoder_layers: 1,
                decoder_layers: 1,
                encoder_heads: 1,
                decoder_heads: 1,
            },
            f,
        }
    }
}

impl Backend for MockBackend {
    type Encoded = ();
    type State = Vec<Vec<u32>>;

    fn hparams(&self) -> &HParams {
        &self.hp
    }

    fn encode(&self, _mel: &[f32], _batch: usize) -> Result<(), BackendError> {
        Ok(())
    }

    fn encoded_to_host(&self, _enc: &()) -> Result<Vec<f32>, BackendError> {
        Ok(Vec::new())
    }

    fn start(&self, _enc: &(), _index: usize) -> Result<Self::State, BackendError> {
        Ok(vec![Vec::new()])
    }

    fn start_batch(&self, _enc: &(), indices: &[usize]) -> Result<Self::State, BackendError> {
        Ok(vec![Vec::new(); indices.len()])
    }

    fn align(
        &self,
        _enc: &(),
        _index: usize,
        _tokens: &[u32],
        _heads: &[(usize, usize)],
    ) -> Result<vkw_backend::Alignment, BackendError> {
        Err(BackendError::Unsupported("mock alignment".into()))
    }

    fn num_seqs(&self, state: &Self::State) -> usize {
        state.len()
    }

    fn cache_len(&self, state: &Self::State) -> usize {
        state.first().map_or(0, Vec::len)
    }

    fn decode(
        &self,
        state: &mut Self::State,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        if tokens.len() != state.len() * t {
            return Err(BackendError::Shape("token count".into()));
        }
        logits.clear();
        for (s, seq) in state.iter_mut().enumerate() {
            for i in 0..t {
                seq.push(tokens[s * t + i]);
                let want = match at {
                    LogitsAt::Last => i + 1 == t,
                    LogitsAt::Index(j) => i == j,
                    LogitsAt::All => true,
                };
                if want {
                    logits.extend((self.f)(seq));
                }
            }
        }
        Ok(())
    }

    fn reorder(&self, state: &mut Self::State, origins: &[usize]) -> Result<(), BackendError> {
        let old = std::mem::take(state);
        for &o in origins {
            let seq = old
                .get(o)
                .ok_or_else(|| BackendError::Shape("origin".into()))?;
            state.push(seq.clone());
        }
        Ok(())
    }
}

/// A cheap deterministic hash of a history, for pseudo-random logits.
pub(crate) fn hash(tokens: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &t in tokens {
        h ^= u64::from(t);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Pseudo-random logits in [-4, 4) for `v` tokens, determined by the history.
pub(crate) fn random_logits(tokens: &[u32], v: usize) -> Vec<f32> {
    let mut x = hash(tokens) | 1;
    (0..v)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}
