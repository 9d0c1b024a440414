//! The backend seam: Whisper's encoder and decoder forward passes (spec §4).
//!
//! Decoding (`vkw-decode`) is written against the [`Backend`] trait and never
//! sees how a backend stores tensors: encoder output and KV caches stay inside
//! the backend (on the GPU for Vulkan); only logits come back to the host.
//! [`cpu::CpuBackend`] is the CPU implementation.
#![deny(missing_docs)]

pub mod any;
mod compute_type;
pub mod cpu;
mod error;
pub mod logits;
#[cfg(feature = "vulkan")]
pub mod vulkan;

pub use compute_type::ComputeType;
pub use error::BackendError;
pub use logits::{Candidate, LogitMasks, RowRule, TopK, TopRequest};
use vkw_model::HParams;

/// Which input positions of a [`Backend::decode`] call produce logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsAt {
    /// Only the last position of each sequence (ordinary decoding steps).
    Last,
    /// One position, counted from the first token of this call (e.g. the SOT
    /// position of a prompt pre-pass, for the no-speech probability).
    Index(usize),
    /// Every position (alignment, tests).
    All,
}

/// The checks every backend's `decode` makes of its call before touching
/// the state: `tokens` is `[num_seqs, t]` with `t ≥ 1`, the positions
/// `len .. len + t` fit the model's text context, every token is in the
/// vocabulary, and an [`LogitsAt::Index`] names one of the `t` positions.
pub(crate) fn check_decode(
    hp: &HParams,
    num_seqs: usize,
    len: usize,
    tokens: &[u32],
    t: usize,
    at: LogitsAt,
) -> Result<(), BackendError> {
    if tokens.len() != num_seqs * t || t == 0 {
        return Err(BackendError::Shape(format!(
            "decode: {} tokens for {num_seqs} sequences of {t}",
            tokens.len()
        )));
    }
    if len + t > hp.n_text_ctx {
        return Err(BackendError::Shape(format!(
            "decode: position {} exceeds the model's {} text positions",
            len + t,
            hp.n_text_ctx
        )));
    }
    if let Some(&bad) = tokens.iter().find(|&&tok| tok as usize >= hp.n_vocab) {
        return Err(BackendError::Shape(format!(
            "decode: token {bad} is outside the vocabulary"
        )));
    }
    match at {
        LogitsAt::Index(i) if i >= t => Err(BackendError::Shape(format!(
            "decode: logits at {i} of {t} positions"
        ))),
        _ => Ok(()),
    }
}

/// Result of an alignment pass (spec §7.1).
#[derive(Debug, Clone, Default)]
pub struct Alignment {
    /// Cross-attention scores of the requested heads **before softmax**
    /// (already scaled by 1/√d_head), `[heads.len(), n_tokens, n_audio_ctx]`.
    pub scores: Vec<f32>,
    /// Logits at every input position, `[n_tokens, n_vocab]`.
    pub logits: Vec<f32>,
}

/// A Whisper forward-pass implementation.
///
/// One backend value holds the immutable model weights (shareable between
/// streams); each decoding stream owns its [`Backend::State`] (KV caches).
pub trait Backend: Send + Sync {
    /// Encoder output for a batch of windows, resident on the backend.
    type Encoded: Send;
    /// Per-stream decoder state: cross-attention K/V of one window and the
    /// self-attention caches of `n_seqs` hypotheses.
    type State: Send;

    /// The model's hyper-parameters.
    fn hparams(&self) -> &HParams;

    /// Encode `batch` log-mel windows laid out `[batch, n_mels, 2·n_audio_ctx]`.
    fn encode(&self, mel: &[f32], batch: usize) -> Result<Self::Encoded, BackendError>;

    /// Copy an encoder output to the host as `[batch, n_audio_ctx, d_model]`.
    fn encoded_to_host(&self, enc: &Self::Encoded) -> Result<Vec<f32>, BackendError>;

    /// Start decoding window `index` of `enc`: computes its cross-attention
    /// K/V once. The new state holds one sequence with empty caches.
    fn start(&self, enc: &Self::Encoded, index: usize) -> Result<Self::State, BackendError>;

    /// Start decoding several windows of `enc` together (batched mode): the
    /// new state holds one sequence per entry of `indices`, sequence `i`
    /// attending window `indices[i]`. [`Backend::reorder`] keeps each
    /// sequence's window with it, so beams of several windows can share one
    /// state (one decoder step for all of them).
    fn start_batch(
        &self,
        enc: &Self::Encoded,
        indices: &[usize],
    ) -> Result<Self::State, BackendError>;

    /// Alignment pass (spec §7.1): feed `tokens` (one sequence, starting
    /// from position 0) over window `index` of `enc` in one causal pass and
    /// return the pre-softmax cross-attention scores of the `(layer, head)`
    /// pairs in `heads`, plus the logits of every position.
    fn align(
        &self,
        enc: &Self::Encoded,
        index: usize,
        tokens: &[u32],
        heads: &[(usize, usize)],
    ) -> Result<Alignment, BackendError>;

    /// Number of sequences (hypotheses) in a state.
    fn num_seqs(&self, state: &Self::State) -> usize;

    /// Number of positions already in a state's self-attention cache.
    fn cache_len(&self, state: &Self::State) -> usize;

    /// Feed `tokens` (`[num_seqs, t]`, row-major) at positions
    /// `cache_len .. cache_len + t`, append them to the caches, and write the
    /// logits of the positions `at` selects into `logits` as
    /// `[num_seqs, positions, n_vocab]` (positions = 1 for [`LogitsAt::Last`]
    /// and [`LogitsAt::Index`], `t` for [`LogitsAt::All`]). The output
    /// projection is the largest matmul of a step, so only the rows asked for
    /// are computed.
    fn decode(
        &self,
        state: &mut Self::State,
        tokens: &[u32],
        t: usize,
        at: LogitsAt,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError>;

    /// Reorder, drop or replicate sequences: new sequence `i` continues old
    /// sequence `origins[i]` (beam search; `[0; n]` expands one sequence to n).
    fn reorder(&self, state: &mut Self::State, origins: &[usize]) -> Result<(), BackendError>;

    /// One decoding step (`tokens`: one per sequence) that returns, instead
    /// of the logits, each row's best `req.k` candidates after the logit
    /// rules, log-softmax and the row's score ([`logits`]), plus the
    /// no-speech probability when asked: what a temperature-0 search needs.
    /// The default is the CPU reference ([`logits::reference_top`] over
    /// [`Backend::decode`]); a GPU backend computes it on the device and
    /// reads back a few candidates per row instead of the vocabulary.
    fn decode_top(
        &self,
        state: &mut Self::State,
        tokens: &[u32],
        req: &TopRequest<'_>,
        out: &mut TopK,
    ) -> Result<(), BackendError> {
        logits::reference_top(self, state, tokens, req, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_calls_outside_the_state_or_model_are_shape_errors() {
        let hp = HParams {
            n_mels: 80,
            d_model: 8,
            d_ffn: 32,
            n_audio_ctx: 1500,
            n_text_ctx: 10,
            n_vocab: 100,
            encoder_layers: 1,
            decoder_layers: 1,
            encoder_heads: 2,
            decoder_heads: 2,
        };
        let check = |len, tokens: &[u32], t, at| check_decode(&hp, 2, len, tokens, t, at);
        assert!(check(0, &[1, 2, 3, 4], 2, LogitsAt::Index(1)).is_ok());
        assert!(check(8, &[1, 2, 3, 4], 2, LogitsAt::All).is_ok());
        let err = |r: Result<(), BackendError>| r.unwrap_err().to_string();
        assert!(err(check(0, &[1, 2, 3], 2, LogitsAt::Last)).contains("3 tokens for 2 sequences"));
        assert!(err(check(0, &[], 0, LogitsAt::Last)).contains("0 tokens"));
        assert!(err(check(9, &[1, 2, 3, 4], 2, LogitsAt::Last)).contains("position 11 exceeds"));
        assert!(err(check(0, &[1, 100], 1, LogitsAt::Last)).contains("token 100 is outside"));
        assert!(err(check(0, &[1, 2, 3, 4], 2, LogitsAt::Index(2))).contains("logits at 2 of 2"));
    }
}
