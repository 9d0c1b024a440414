//! Language detection (CT2 `detect_language` and faster-whisper's use of it,
//! spec §6.13).
//!
//! Follows CTranslate2 `src/models/whisper.cc` (`WhisperReplica::detect_language`)
//! and faster-whisper 1.2.1 `faster_whisper/transcribe.py`
//! (`WhisperModel.detect_language`, the language choice at the top of
//! `WhisperModel.transcribe`).

use crate::{DecodeError, DecodeOptions};
use vkw_backend::{Backend, LogitsAt};
use vkw_model::{Tokenizer, WhisperModel};

/// The language of a transcription, its probability, and every language's
/// probability when it was detected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LanguageChoice {
    /// Language code.
    pub language: String,
    /// Its probability (1 when given, or for English-only models).
    pub probability: f64,
    /// All probabilities of the last window examined, best first (detected only).
    pub all: Option<Vec<(String, f64)>>,
}

/// faster-whisper's choice of the run's language (§6.13): English on
/// English-only models, the caller's language when given (checked against
/// the tokenizer), else detection over `window(0)`, `window(1)`, … (each a
/// `[n_mels, 3000]` log-mel window, `None` once there are no more; at most
/// `language_detection_segments` are asked for), stopping at the first whose
/// top probability exceeds the threshold. The windows differ by mode: the
/// sequential path reads the input's spectrogram from the first clip, the
/// batched one the concatenated piece features plus one −1.5 frame.
pub(crate) fn choose_language(
    tk: &Tokenizer,
    opts: &DecodeOptions,
    mut window: impl FnMut(usize) -> Result<Option<Vec<f32>>, DecodeError>,
    mut detect_window: impl FnMut(&[f32]) -> Result<Vec<(String, f32)>, DecodeError>,
) -> Result<LanguageChoice, DecodeError> {
    let given = |language: &str| LanguageChoice {
        language: language.to_string(),
        probability: 1.0,
        all: None,
    };
    if !tk.special.multilingual {
        // FW replaces any language by "en" on English-only models.
        return Ok(given("en"));
    }
    if let Some(lang) = &opts.language {
        if tk.language_token(lang).is_none() {
            return Err(DecodeError::InvalidOption(format!(
                "unknown language {:?}",
                truncate(lang, 40)
            )));
        }
        return Ok(given(lang));
    }
    let mut windows = Vec::new();
    for k in 0..opts.language_detection_segments.max(1) {
        let Some(mel) = window(k)? else { break };
        let probs = detect_window(&mel)?;
        let stop = probs
            .first()
            .is_some_and(|(_, p)| f64::from(*p) > opts.language_detection_threshold);
        windows.push(probs);
        if stop {
            break;
        }
    }
    let d = choose(windows, opts.language_detection_threshold)
        .ok_or_else(|| DecodeError::InvalidInput("no audio to detect the language from".into()))?;
    Ok(LanguageChoice {
        language: d.language,
        probability: f64::from(d.probability),
        all: Some(d.all.into_iter().map(|(l, p)| (l, f64::from(p))).collect()),
    })
}

/// At most `max` characters of a caller's text, for one-line messages.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Softmax over the language tokens of the logits at `sot` for window
/// `index` of `enc`: `(code, probability)` best first.
pub(crate) fn detect<B: Backend>(
    backend: &B,
    model: &WhisperModel,
    enc: &B::Encoded,
    index: usize,
) -> Result<Vec<(String, f32)>, DecodeError> {
    let tk = &model.tokenizer;
    let sp = &tk.special;
    let lang_ids: Vec<u32> = if model.config.lang_ids.is_empty() {
        (0..sp.num_languages as u32)
            .map(|i| sp.sot + 1 + i)
            .collect()
    } else {
        model.config.lang_ids.clone()
    };
    let mut state = backend.start(enc, index)?;
    let mut logits = Vec::new();
    backend.decode(&mut state, &[sp.sot], 1, LogitsAt::Last, &mut logits)?;
    let v = tk.vocab_size();
    if logits.len() != v {
        return Err(DecodeError::LogitsShape {
            got: logits.len(),
            expected: v,
        });
    }
    let picked: Vec<f32> = lang_ids
        .iter()
        .map(|&id| {
            logits
                .get(id as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY)
        })
        .collect();
    let max = picked.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = picked.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut out: Vec<(String, f32)> = lang_ids
        .iter()
        .zip(exps)
        .map(|(&id, e)| {
            let code = tk
                .token_str(id)
                .and_then(|s| s.strip_prefix("<|"))
                .and_then(|s| s.strip_suffix("|>"))
                .unwrap_or("")
                .to_string();
            (code, e / sum)
        })
        .collect();
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    Ok(out)
}

/// Outcome of faster-whisper's language detection over several windows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detected {
    /// Chosen language code.
    pub language: String,
    /// Its probability.
    pub probability: f32,
    /// All probabilities of the last window examined, best first.
    pub all: Vec<(String, f32)>,
}

/// FW `detect_language` over per-window results (§6.13): stop at the first
/// window whose top probability exceeds `threshold`; otherwise the language
/// seen most often as top-1 (first seen wins ties), with its best probability.
pub(crate) fn choose(windows: Vec<Vec<(String, f32)>>, threshold: f64) -> Option<Detected> {
    let mut counts: Vec<(String, Vec<f32>)> = Vec::new();
    let mut last_all = Vec::new();
    for all in windows {
        let (lang, prob) = all.first().cloned()?;
        last_all = all;
        if f64::from(prob) > threshold {
            return Some(Detected {
                language: lang,
                probability: prob,
                all: last_all,
            });
        }
        match counts.iter_mut().find(|(l, _)| *l == lang) {
            Some((_, ps)) => ps.push(prob),
            None => counts.push((lang, vec![prob])),
        }
    }
    let mut best: Option<&(String, Vec<f32>)> = None;
    for c in &counts {
        if best.is_none_or(|b| c.1.len() > b.1.len()) {
            best = Some(c);
        }
    }
    let (language, probs) = best?;
    Some(Detected {
        language: language.clone(),
        probability: probs.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        all: last_all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(l: &str, p: f32) -> Vec<(String, f32)> {
        vec![(l.to_string(), p), ("xx".to_string(), 1.0 - p)]
    }

    #[test]
    fn threshold_and_majority() {
        let d = choose(vec![w("de", 0.4), w("en", 0.9)], 0.5).unwrap();
        assert_eq!((d.language.as_str(), d.probability), ("en", 0.9));
        let d = choose(vec![w("de", 0.4), w("en", 0.3), w("en", 0.45)], 0.5).unwrap();
        assert_eq!((d.language.as_str(), d.probability), ("en", 0.45));
        let d = choose(vec![w("de", 0.4), w("en", 0.3)], 0.5).unwrap();
        assert_eq!(d.language, "de");
        assert_eq!(d.all[0].0, "en");
    }
}
