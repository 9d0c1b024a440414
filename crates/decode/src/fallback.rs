//! Temperature fallback (faster-whisper `generate_with_fallback`, spec §6.9).
//!
//! Follows faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`WhisperModel.generate_with_fallback`, `get_compression_ratio`).

use crate::generate::{generate, Generation, SearchParams};
use crate::logits::LogitRules;
use crate::options::DecodeOptions;
use crate::search::Rng;
use crate::{CancelToken, DecodeError};
use std::io::Write;
use vkw_backend::Backend;
use vkw_model::Tokenizer;

/// `len(bytes) / len(zlib.compress(bytes))` with zlib's default level 6.
pub(crate) fn compression_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    let compressed = enc
        .write_all(bytes)
        .and_then(|_| enc.finish())
        .map(|v| v.len())
        .unwrap_or(0);
    if compressed == 0 {
        return 0.0;
    }
    bytes.len() as f64 / compressed as f64
}

/// FW: `avg_logprob = cum_logprob / (len + 1)`, where CT2 returned the score
/// `cum_logprob / len^length_penalty`.
pub(crate) fn avg_logprob(score: f32, len: usize, length_penalty: f32) -> f64 {
    let n = len as f64;
    let cum = f64::from(score) * n.powf(f64::from(length_penalty));
    cum / (n + 1.0)
}

/// The accepted result of one window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowResult {
    /// Tokens of the best hypothesis.
    pub tokens: Vec<u32>,
    /// Each token's log-probability.
    pub token_logprobs: Vec<f32>,
    /// `cum_logprob / (len + 1)` as FW computes it from the score.
    pub avg_logprob: f64,
    /// The temperature reported (the last one tried when all failed).
    pub temperature: f64,
    /// Compression ratio of the stripped text.
    pub compression_ratio: f64,
    /// No-speech probability.
    pub no_speech_prob: f64,
}

/// Decode window 0 of `enc` with every temperature until one passes the thresholds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn generate_with_fallback<B: Backend>(
    backend: &B,
    enc: &B::Encoded,
    prompt: &[u32],
    tokenizer: &Tokenizer,
    rules: &LogitRules,
    opts: &DecodeOptions,
    max_length: usize,
    rng: &mut Rng,
    cancel: &CancelToken,
) -> Result<WindowResult, DecodeError> {
    let prompts = [prompt.to_vec()];
    let vocab = tokenizer.vocab_size();
    let mut all: Vec<WindowResult> = Vec::new();
    let mut below_cr: Vec<usize> = Vec::new();
    let mut last_temperature = 0.0;
    for &temperature in &opts.temperatures {
        last_temperature = temperature;
        let params = if temperature > 0.0 {
            SearchParams {
                beam_size: 1,
                patience: opts.patience,
                length_penalty: opts.length_penalty,
                num_hypotheses: opts.best_of,
                temperature,
                max_length,
            }
        } else {
            SearchParams {
                beam_size: opts.beam_size,
                patience: opts.patience,
                length_penalty: opts.length_penalty,
                num_hypotheses: 1,
                temperature: 0.0,
                max_length,
            }
        };
        let Generation {
            hypotheses,
            no_speech_prob,
        } = generate(
            backend,
            enc,
            &[0],
            &prompts,
            &tokenizer.special,
            vocab,
            rules,
            &params,
            rng,
            cancel,
        )?
        .pop()
        .ok_or_else(|| DecodeError::InvalidInput("decoding produced no result".into()))?;
        let best = hypotheses
            .into_iter()
            .next()
            .ok_or_else(|| DecodeError::InvalidInput("decoding produced no hypothesis".into()))?;
        let avg_logprob = avg_logprob(best.score, best.tokens.len(), opts.length_penalty);
        let text = tokenizer.decode(&best.tokens);
        let cr = compression_ratio(text.trim());
        let result = WindowResult {
            tokens: best.tokens,
            token_logprobs: best.token_logprobs,
            avg_logprob,
            temperature,
            compression_ratio: cr,
            no_speech_prob: f64::from(no_speech_prob),
        };
        if !needs_fallback(&result, opts) {
            return Ok(result);
        }
        if opts
            .compression_ratio_threshold
            .is_some_and(|thr| result.compression_ratio <= thr)
        {
            below_cr.push(all.len());
        }
        all.push(result);
    }
    pick_when_all_failed(all, &below_cr, last_temperature)
        .ok_or_else(|| DecodeError::InvalidOption("no temperature to decode with".into()))
}

/// The §6.9 thresholds: does this result need another temperature?
pub(crate) fn needs_fallback(r: &WindowResult, opts: &DecodeOptions) -> bool {
    let mut needs = opts
        .compression_ratio_threshold
        .is_some_and(|thr| r.compression_ratio > thr);
    let low_logprob = opts
        .log_prob_threshold
        .is_some_and(|thr| r.avg_logprob < thr);
    if low_logprob {
        needs = true;
    }
    if low_logprob
        && opts
            .no_speech_threshold
            .is_some_and(|thr| r.no_speech_prob > thr)
    {
        // Silence: keep this result, do not retry.
        needs = false;
    }
    needs
}

/// Every temperature failed: the best average log-prob among the results
/// under the compression threshold (else among all), the first one on ties,
/// reported with the last temperature tried (§6.9).
pub(crate) fn pick_when_all_failed(
    mut all: Vec<WindowResult>,
    below_cr: &[usize],
    last_temperature: f64,
) -> Option<WindowResult> {
    let pool: Vec<usize> = if below_cr.is_empty() {
        (0..all.len()).collect()
    } else {
        below_cr.to_vec()
    };
    let mut best_i = *pool.first()?;
    for &i in &pool[1..] {
        if all[i].avg_logprob > all[best_i].avg_logprob {
            best_i = i;
        }
    }
    let mut chosen = all.swap_remove(best_i);
    chosen.temperature = last_temperature;
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wr(avg: f64, cr: f64, nsp: f64, t: f64) -> WindowResult {
        WindowResult {
            tokens: vec![],
            token_logprobs: vec![],
            avg_logprob: avg,
            temperature: t,
            compression_ratio: cr,
            no_speech_prob: nsp,
        }
    }

    #[test]
    fn fallback_rules() {
        let o = DecodeOptions::default();
        assert!(!needs_fallback(&wr(-0.5, 1.5, 0.1, 0.0), &o));
        assert!(needs_fallback(&wr(-0.5, 2.5, 0.1, 0.0), &o));
        assert!(needs_fallback(&wr(-1.5, 1.5, 0.1, 0.0), &o));
        // Low log-prob but probably silence: accepted.
        assert!(!needs_fallback(&wr(-1.5, 1.5, 0.7, 0.0), &o));
        // A high compression ratio is not excused by silence.
        assert!(needs_fallback(&wr(-0.5, 2.5, 0.7, 0.0), &o));
        let none = DecodeOptions {
            compression_ratio_threshold: None,
            log_prob_threshold: None,
            ..o
        };
        assert!(!needs_fallback(&wr(-5.0, 9.0, 0.0, 0.0), &none));
    }

    #[test]
    fn all_failed_selection() {
        let all = vec![
            wr(-1.2, 2.0, 0.0, 0.0),
            wr(-0.5, 3.0, 0.0, 0.2),
            wr(-1.1, 1.0, 0.0, 0.4),
        ];
        // Best among those under the compression threshold (0 and 2).
        let r = pick_when_all_failed(all.clone(), &[0, 2], 1.0).unwrap();
        assert_eq!((r.avg_logprob, r.temperature), (-1.1, 1.0));
        let r = pick_when_all_failed(all, &[], 1.0).unwrap();
        assert_eq!(r.avg_logprob, -0.5);
        let tie = vec![wr(-1.5, 1.0, 0.1, 0.0), wr(-1.5, 1.0, 0.2, 0.2)];
        let r = pick_when_all_failed(tie, &[], 1.0).unwrap();
        assert_eq!(r.no_speech_prob, 0.1);
        assert!(pick_when_all_failed(vec![], &[], 1.0).is_none());
    }

    #[test]
    fn compression_ratio_matches_python_zlib() {
        // Values from Python 3.11 zlib 1.2.13: len(b) / len(zlib.compress(b)).
        let cases = [
            ("And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.", 107.0 / 79.0),
            ("", 0.0),
            ("a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a", 75.0 / 13.0),
        ];
        for (text, want) in cases {
            let got = compression_ratio(text);
            assert!((got - want).abs() < 1e-12, "{text:?}: {got} vs {want}");
        }
    }
}
