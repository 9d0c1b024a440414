//! One call of CT2's `Whisper.generate` for one window: prompt pre-pass,
//! start token and forced prefix (spec §6.2), then greedy/sampling (§6.7) or
//! beam search (§6.8).

use crate::beam::beam_search;
use crate::greedy::{sample_search, Rng};
use crate::logits::{log_softmax_inplace, softmax_prob, LogitRules};
use crate::DecodeError;
use vkw_backend::{Backend, LogitsAt};
use vkw_model::SpecialTokens;

/// Search settings of one `generate` call (what FW's fallback passes, §6.9).
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
}

impl Hypothesis {
    /// Finalise a hypothesis as CT2's `finalize_hypothesis_score` does.
    pub fn new(tokens: Vec<u32>, cum_logprob: f32, length_penalty: f32) -> Self {
        let score = cum_logprob / (tokens.len() as f32).powf(length_penalty);
        Self {
            tokens,
            cum_logprob,
            score,
        }
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

impl<B: Backend> StepContext<'_, B> {
    /// Run one decoder step for `inputs` (one token per sequence) and check the shape.
    pub fn step(
        &self,
        state: &mut B::State,
        inputs: &[u32],
        logits: &mut Vec<f32>,
    ) -> Result<(), DecodeError> {
        self.backend
            .decode(state, inputs, 1, LogitsAt::Last, logits)?;
        let expected = inputs.len() * self.vocab;
        if logits.len() != expected {
            return Err(DecodeError::LogitsShape {
                got: logits.len(),
                expected,
            });
        }
        Ok(())
    }

    /// Turn one hypothesis's raw logits into the processed log-probabilities
    /// it is decoded from: the §6.3 rules, then log-softmax.
    pub fn log_probs(&self, row: &mut [f32], seq: &[u32]) {
        self.rules.apply(row, seq, self.prefix.len());
        log_softmax_inplace(row);
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

/// Run CT2's `generate` on window `index` of `enc` with `prompt` (§6.2).
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate<B: Backend>(
    backend: &B,
    enc: &B::Encoded,
    index: usize,
    prompt: &[u32],
    special: &SpecialTokens,
    vocab: usize,
    rules: &LogitRules,
    params: &SearchParams,
    rng: &mut Rng,
) -> Result<Generation, DecodeError> {
    let split = PromptSplit::new(prompt, special)?;
    let mut state = backend.start(enc, index)?;
    let mut logits = Vec::new();
    let mut no_speech_prob = None;
    let (start, prefix, start_step) = if split.prompt_length == 1 {
        (prompt[0], &prompt[1..], 0)
    } else {
        let pre = &prompt[..split.prompt_length - 1];
        if split.sot_is_start_token() {
            backend.decode(&mut state, pre, pre.len(), LogitsAt::Last, &mut logits)?;
        } else {
            // The sot position lies inside the pre-pass: its raw logits give
            // the no-speech probability (§6.6).
            let at = LogitsAt::Index(split.sot_index);
            backend.decode(&mut state, pre, pre.len(), at, &mut logits)?;
            if logits.len() != vocab {
                return Err(DecodeError::LogitsShape {
                    got: logits.len(),
                    expected: vocab,
                });
            }
            no_speech_prob = Some(softmax_prob(&logits, special.no_speech as usize));
        }
        (
            prompt[split.prompt_length - 1],
            &prompt[split.prompt_length..],
            split.prompt_length - 1,
        )
    };
    // decode_max = min(max_length / 2, max_length − start_step) (§6.2).
    let max_steps = (params.max_length / 2).min(params.max_length.saturating_sub(start_step));
    if max_steps == 0 {
        return Err(DecodeError::InvalidOption(
            "the prompt leaves no room for generated tokens".into(),
        ));
    }
    let ctx = StepContext {
        backend,
        rules,
        start,
        prefix,
        max_steps,
        eot: special.eot,
        vocab,
        no_speech_at_step0: split.sot_is_start_token().then_some(special.no_speech),
    };
    let (hypotheses, step0_no_speech) = if params.beam_size > 1 {
        beam_search(
            &ctx,
            &mut state,
            params.beam_size,
            params.patience,
            params.length_penalty,
        )?
    } else {
        let n = if params.temperature > 0.0 {
            params.num_hypotheses.max(1)
        } else {
            1
        };
        sample_search(
            &ctx,
            &mut state,
            n,
            params.temperature,
            params.length_penalty,
            rng,
        )?
    };
    Ok(Generation {
        hypotheses,
        no_speech_prob: no_speech_prob.or(step0_no_speech).unwrap_or(0.0),
    })
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
