//! One call of CT2's `Whisper.generate` (spec §6.2) over one window
//! (sequential mode) or several (batched mode, §9.3): the prompt pre-pass of
//! every window in one backend call, the start token and forced prefix, then
//! the searches (§6.7, §6.8) stepped together by [`crate::search::run`].
//!
//! Follows CTranslate2 3.24/4.x `src/models/whisper.cc` (`WhisperReplica::generate`)
//! and `src/decoding.cc` (`decode`, `BeamSearch::search`, `GreedySearch::search`).

use crate::logits::{log_softmax_inplace, softmax_prob, LogitRules};
use crate::search::{self, BeamSearch, Rng, SampleSearch, Search};
use crate::{CancelToken, DecodeError};
use vkw_backend::{Backend, LogitMasks, LogitsAt, RowRule};
use vkw_model::SpecialTokens;

/// Search settings of one `generate` call (what FW's fallback passes, §6.9;
/// the batched pipeline passes its first temperature with CT2's default
/// `sampling_topk = 1`, which is arg-max: temperature 0 here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SearchParams {
    /// Beam width (1 = greedy or sampling).
    pub beam_size: usize,
    /// Beam search patience.
    pub patience: f32,
    /// Length normalisation exponent.
    pub length_penalty: f32,
    /// Independent hypotheses when sampling (`best_of`).
    pub num_hypotheses: usize,
    /// Sampling temperature; 0 = arg-max.
    pub temperature: f64,
    /// FW's `max_length`: prompt plus generated tokens (448 by default).
    pub max_length: usize,
}

/// A finished hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hypothesis {
    /// Generated tokens (forced prefix included, start token and eot excluded).
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of every emitted token, eot included.
    pub cum_logprob: f32,
    /// `cum_logprob / len^length_penalty` (CT2's returned score).
    pub score: f32,
    /// The log-probability of each of `tokens` when it was chosen (0 for
    /// forced prefix tokens).
    pub token_logprobs: Vec<f32>,
}

impl Hypothesis {
    /// Finalise a hypothesis as CT2's `finalize_hypothesis_score` does.
    pub fn new(tokens: Vec<u32>, cum_logprob: f32, length_penalty: f32) -> Self {
        let score = cum_logprob / (tokens.len() as f32).powf(length_penalty);
        Self {
            tokens,
            cum_logprob,
            score,
            token_logprobs: Vec::new(),
        }
    }

    /// With the per-token log-probabilities.
    pub fn with_logprobs(mut self, token_logprobs: Vec<f32>) -> Self {
        self.token_logprobs = token_logprobs;
        self
    }
}

/// Sort best first by normalised score (stable; NaN last).
pub(crate) fn rank(hyps: &mut [Hypothesis]) {
    hyps.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or_else(|| a.score.is_nan().cmp(&b.score.is_nan()))
    });
}

/// What the step loops share.
pub(crate) struct StepContext<'a, B: Backend> {
    /// The backend running the decoder.
    pub backend: &'a B,
    /// Logit processing (§6.3).
    pub rules: &'a LogitRules,
    /// `rules.masks()`, built once per call.
    pub masks: LogitMasks,
    /// The start token fed at step 0.
    pub start: u32,
    /// Forced prefix tokens (§6.2).
    pub prefix: &'a [u32],
    /// Number of decoding steps allowed (`decode_max`).
    pub max_steps: usize,
    /// `<|endoftext|>`.
    pub eot: u32,
    /// Vocabulary size.
    pub vocab: usize,
    /// `Some(no_speech id)` when the no-speech probability is taken at step 0.
    pub no_speech_at_step0: Option<u32>,
}

// By hand: a derive would ask for `B: Clone`.
impl<B: Backend> Clone for StepContext<'_, B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend,
            rules: self.rules,
            masks: self.masks.clone(),
            start: self.start,
            prefix: self.prefix,
            max_steps: self.max_steps,
            eot: self.eot,
            vocab: self.vocab,
            no_speech_at_step0: self.no_speech_at_step0,
        }
    }
}

impl<B: Backend> StepContext<'_, B> {
    /// Turn one hypothesis's raw logits into the processed log-probabilities
    /// it is decoded from: the §6.3 rules, then log-softmax.
    pub fn log_probs(&self, row: &mut [f32], seq: &[u32]) {
        self.rules
            .apply_with(&self.masks, row, seq, self.prefix.len());
        log_softmax_inplace(row);
    }

    /// The rules of a hypothesis' row for a backend that applies them
    /// (`Backend::decode_top`), with its cumulative `score`.
    pub fn row_rule(&self, seq: &[u32], score: f32) -> RowRule {
        self.rules.row_rule(seq, self.prefix.len(), score)
    }

    /// The no-speech probability from the raw step-0 logits (§6.6).
    pub fn no_speech_from(&self, raw_row: &[f32]) -> Option<f32> {
        self.no_speech_at_step0
            .map(|id| softmax_prob(raw_row, id as usize))
    }
}

/// Result of one `generate` call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Generation {
    /// Hypotheses, best first.
    pub hypotheses: Vec<Hypothesis>,
    /// Softmax of the raw logits at the sot position, at the no-speech id.
    pub no_speech_prob: f32,
}

/// How CT2 splits a prompt (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptSplit {
    /// Position of `sot`.
    pub sot_index: usize,
    /// `sot_index` advanced over `[sot, no_timestamps]` ids.
    pub prompt_length: usize,
}

impl PromptSplit {
    /// Locate sot and the task prefix end.
    pub fn new(prompt: &[u32], special: &SpecialTokens) -> Result<Self, DecodeError> {
        let sot_index = prompt
            .iter()
            .position(|&t| t == special.sot)
            .ok_or_else(|| {
                DecodeError::InvalidInput("the prompt has no <|startoftranscript|>".into())
            })?;
        let mut prompt_length = sot_index;
        while prompt_length < prompt.len()
            && (special.sot..=special.no_timestamps).contains(&prompt[prompt_length])
        {
            prompt_length += 1;
        }
        Ok(Self {
            sot_index,
            prompt_length,
        })
    }

    /// Whether the start token is sot itself (no-speech at step 0).
    pub fn sot_is_start_token(&self) -> bool {
        self.sot_index + 1 == self.prompt_length
    }
}

/// Run CT2's `generate` on windows `windows` of `enc`, window `windows[i]`
/// with `prompts[i]` (§6.2). The prompts must share one layout (the same
/// length and task-prefix split, as the batched pipeline builds them; one
/// window trivially does). Results are in the order of `windows`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate<B: Backend>(
    backend: &B,
    enc: &B::Encoded,
    windows: &[usize],
    prompts: &[Vec<u32>],
    special: &SpecialTokens,
    vocab: usize,
    rules: &LogitRules,
    params: &SearchParams,
    rng: &mut Rng,
    cancel: &CancelToken,
) -> Result<Vec<Generation>, DecodeError> {
    let n = prompts.len();
    let Some(first) = prompts.first() else {
        return Ok(Vec::new());
    };
    if windows.len() != n {
        return Err(DecodeError::InvalidInput(format!(
            "{} windows for {n} prompts",
            windows.len()
        )));
    }
    let split = PromptSplit::new(first, special)?;
    for p in &prompts[1..] {
        if p.len() != first.len() || PromptSplit::new(p, special)? != split {
            return Err(DecodeError::InvalidInput(
                "prompts decoded together must share one layout".into(),
            ));
        }
    }
    cancel.check()?;
    let mut state = backend.start_batch(enc, windows)?;
    let mut logits = Vec::new();
    let mut pre_no_speech: Vec<Option<f32>> = vec![None; n];
    let pl = split.prompt_length;
    // The start token is the last of the task prefix; what precedes it is
    // fed in one pre-pass, every window's in one call.
    let start_at = pl.saturating_sub(1);
    if pl > 1 {
        let pre: Vec<u32> = prompts.iter().flat_map(|p| p[..pl - 1].to_vec()).collect();
        let at = if split.sot_is_start_token() {
            LogitsAt::Last
        } else {
            LogitsAt::Index(split.sot_index)
        };
        backend.decode(&mut state, &pre, pl - 1, at, &mut logits)?;
        if logits.len() != n * vocab {
            return Err(DecodeError::LogitsShape {
                got: logits.len(),
                expected: n * vocab,
            });
        }
        if !split.sot_is_start_token() {
            // The sot position lies inside the pre-pass: its raw logits give
            // the no-speech probability (§6.6).
            for (w, row) in logits.chunks(vocab).enumerate() {
                pre_no_speech[w] = Some(softmax_prob(row, special.no_speech as usize));
            }
        }
    }
    // decode_max = min(max_length / 2, max_length − start_step) (§6.2).
    let max_steps = (params.max_length / 2).min(params.max_length.saturating_sub(start_at));
    if max_steps == 0 {
        return Err(DecodeError::InvalidOption(
            "the prompt leaves no room for generated tokens".into(),
        ));
    }
    let masks = rules.masks();
    let ctxs: Vec<StepContext<'_, B>> = prompts
        .iter()
        .map(|p| StepContext {
            backend,
            rules,
            masks: masks.clone(),
            start: p[start_at],
            prefix: &p[start_at + 1..],
            max_steps,
            eot: special.eot,
            vocab,
            no_speech_at_step0: split.sot_is_start_token().then_some(special.no_speech),
        })
        .collect();
    let mut searches: Vec<Search> = ctxs
        .iter()
        .map(|c| {
            if params.beam_size > 1 {
                Search::Beam(BeamSearch::new(
                    c,
                    params.beam_size,
                    params.patience,
                    params.length_penalty,
                ))
            } else {
                let hyps = if params.temperature > 0.0 {
                    params.num_hypotheses.max(1)
                } else {
                    1
                };
                Search::Sample(SampleSearch::new(
                    c,
                    hyps,
                    params.temperature,
                    params.length_penalty,
                ))
            }
        })
        .collect();
    search::run(&ctxs, &mut searches, &mut state, rng, cancel)?;
    searches
        .into_iter()
        .zip(pre_no_speech)
        .map(|(s, pre)| {
            let (hypotheses, step0) = s.finish();
            if hypotheses.is_empty() {
                return Err(DecodeError::InvalidInput(
                    "decoding produced no hypothesis".into(),
                ));
            }
            Ok(Generation {
                hypotheses,
                no_speech_prob: pre.or(step0).unwrap_or(0.0),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn special_en() -> SpecialTokens {
        SpecialTokens {
            eot: 50256,
            sot: 50257,
            translate: 50357,
            transcribe: 50358,
            sot_lm: 50359,
            sot_prev: 50360,
            no_speech: 50361,
            no_timestamps: 50362,
            timestamp_begin: 50363,
            timestamp_end: 51863,
            num_languages: 99,
            multilingual: false,
        }
    }

    #[test]
    fn prompt_split() {
        let s = special_en();
        let p = PromptSplit::new(&[s.sot], &s).unwrap();
        assert_eq!((p.sot_index, p.prompt_length), (0, 1));
        assert!(p.sot_is_start_token());
        let p = PromptSplit::new(&[s.sot_prev, 10, 11, s.sot, s.no_timestamps], &s).unwrap();
        assert_eq!((p.sot_index, p.prompt_length), (3, 5));
        assert!(!p.sot_is_start_token());
        let p = PromptSplit::new(&[s.sot, s.timestamp_begin, 5], &s).unwrap();
        assert_eq!(p.prompt_length, 1);
        assert!(PromptSplit::new(&[1, 2], &s).is_err());
    }

    #[test]
    fn hypothesis_score() {
        let h = Hypothesis::new(vec![1, 2, 3, 4], -2.0, 1.0);
        assert_eq!(h.score, -0.5);
        let mut v = vec![h.clone(), Hypothesis::new(vec![1], -0.1, 1.0)];
        rank(&mut v);
        assert_eq!(v[0].tokens, vec![1]);
    }
}
