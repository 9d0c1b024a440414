//! Per-step logit processing, in CTranslate2's order (spec §6.3–§6.5), and the
//! softmax helpers the searches share.
//!
//! Masked entries are set to `f32::NEG_INFINITY` everywhere. CT2 uses the
//! lowest finite float instead; both give probability 0, and every helper
//! here treats `-inf` explicitly so that log-softmax, arg-max and the
//! timestamp probability check behave as CT2's do.
//!
//! Follows CTranslate2 4.8.5 `src/decoding_utils.cc` (`RepetitionPenalty`, `NoRepeatNgram`,
//! `SuppressTokens`, `SuppressTokensBegin`) and `src/models/whisper.cc`
//! (`ApplyTimestampRules`).

use vkw_backend::logits::apply_rules;
pub(crate) use vkw_backend::logits::{log_softmax_inplace, softmax_prob, top_k};
use vkw_backend::{LogitMasks, RowRule};
use vkw_model::SpecialTokens;

/// Timestamp-rule constants (spec §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimestampRules {
    /// `<|endoftext|>`.
    pub eot: u32,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
    /// `<|0.00|>`.
    pub begin: u32,
    /// The last timestamp id (`V − 1`).
    pub end: u32,
    /// `begin + max_initial_timestamp_index`.
    pub max_initial: u32,
}

/// Everything applied to one hypothesis' raw logits before log-softmax.
///
/// The masks and the timestamp rules are split in two: what every row
/// shares ([`LogitRules::masks`]) and what a row's tokens decide at a step
/// ([`LogitRules::row_rule`]); a backend applies both
/// (`Backend::decode_top`, the GPU on Vulkan) with the one CPU reference in
/// `vkw_backend::logits`. The repetition penalty and the n-gram ban need
/// the whole row on the host ([`LogitRules::on_backend`] is then false).
#[derive(Debug, Clone)]
pub(crate) struct LogitRules {
    /// Repetition penalty (§6.3 step 2); 1 = off.
    pub repetition_penalty: f32,
    /// No-repeat n-gram size (§6.3 step 3); 0 = off.
    pub no_repeat_ngram_size: usize,
    /// Always-suppressed ids (§6.4).
    pub suppress: Vec<u32>,
    /// Ids suppressed at step `sample_begin` (`suppress_blank`, §6.4).
    pub suppress_begin: Vec<u32>,
    /// Timestamp rules, when the prompt does not end with `<|notimestamps|>`.
    pub timestamps: Option<TimestampRules>,
}

impl LogitRules {
    /// Whether a backend can apply every rule (no rule that needs the
    /// hypothesis' whole row on the host).
    pub fn on_backend(&self) -> bool {
        self.repetition_penalty == 1.0 && self.no_repeat_ngram_size == 0
    }

    /// The masks every row shares: the suppress list (plus
    /// `<|notimestamps|>` under the timestamp rules) and the begin list.
    pub fn masks(&self) -> LogitMasks {
        let mut suppress = self.suppress.clone();
        if let Some(ts) = &self.timestamps {
            suppress.push(ts.no_timestamps);
        }
        LogitMasks {
            suppress,
            suppress_begin: self.suppress_begin.clone(),
            timestamp_begin: self.timestamps.map_or(u32::MAX, |ts| ts.begin),
        }
    }

    /// What the rules do to the row of a hypothesis whose tokens since the
    /// start token are `seq` (forced prefix included, so the step is
    /// `seq.len()`; `sample_begin` is the prefix length), scored `score`:
    /// §6.4's begin suppression and §6.5 as CT2's `ApplyTimestampRules`.
    pub fn row_rule(&self, seq: &[u32], sample_begin: usize, score: f32) -> RowRule {
        let step = seq.len();
        let mut rule = RowRule {
            score,
            begin: step == sample_begin,
            ..RowRule::default()
        };
        let Some(r) = &self.timestamps else {
            return rule;
        };
        let (tb, te) = (r.begin, r.end.saturating_add(1));
        if step == sample_begin && step == 0 {
            // The first token must be a timestamp no later than max_initial.
            rule.masked = [(0, tb), (r.max_initial.saturating_add(1), te)];
            return rule;
        }
        if step <= sample_begin {
            return rule;
        }
        let last = seq[step - 1];
        if last >= r.begin {
            let penultimate = if step - 1 > sample_begin {
                seq[step - 2]
            } else {
                last
            };
            if penultimate >= r.begin {
                // After a pair (or a lone first timestamp): text or eot must follow.
                rule.masked[0] = (tb, te);
                return rule;
            }
            // A closing timestamp: no text, and not smaller than the opening one.
            rule.masked = [(0, r.eot), (tb, last)];
        } else if let Some(&t) = seq[sample_begin..step - 1]
            .iter()
            .rev()
            .find(|&&t| t >= r.begin)
        {
            // Timestamps strictly increase after text.
            rule.masked[0] = (tb, t.saturating_add(1));
        }
        rule.timestamp_check = true;
        rule
    }

    /// Apply §6.3 steps 2–6 in place, with `masks` = [`LogitRules::masks`].
    /// `seq` holds the tokens emitted since the start token (forced prefix
    /// included), so the step is `seq.len()`; `sample_begin` is the forced
    /// prefix length.
    pub fn apply_with(
        &self,
        masks: &LogitMasks,
        logits: &mut [f32],
        seq: &[u32],
        sample_begin: usize,
    ) {
        if self.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, seq, self.repetition_penalty);
        }
        if self.no_repeat_ngram_size > 0 {
            ban_repeated_ngrams(logits, seq, self.no_repeat_ngram_size);
        }
        apply_rules(logits, masks, &self.row_rule(seq, sample_begin, 0.0));
    }

    /// [`LogitRules::apply_with`] with the masks built here (tests).
    #[cfg(test)]
    pub fn apply(&self, logits: &mut [f32], seq: &[u32], sample_begin: usize) {
        self.apply_with(&self.masks(), logits, seq, sample_begin);
    }
}

/// §6.3 step 2: every distinct id already generated is penalised once.
fn apply_repetition_penalty(logits: &mut [f32], seq: &[u32], penalty: f32) {
    let mut seen: Vec<u32> = seq.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        if let Some(x) = logits.get_mut(id as usize) {
            *x = if *x < 0.0 { *x * penalty } else { *x / penalty };
        }
    }
}

/// §6.3 step 3: ban every token that would complete an n-gram already present.
fn ban_repeated_ngrams(logits: &mut [f32], seq: &[u32], n: usize) {
    if seq.len() + 1 < n {
        return;
    }
    let prefix = &seq[seq.len() + 1 - n..];
    for start in 0..=(seq.len() + 1 - n) {
        let end = start + n - 1;
        if end >= seq.len() {
            break;
        }
        if &seq[start..end] == prefix {
            if let Some(x) = logits.get_mut(seq[end] as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
    }
}

/// Index of the largest value (lowest index on ties).
pub(crate) fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &x) in xs.iter().enumerate() {
        if x > best_v {
            best_v = x;
            best = i;
        }
    }
    best
}

/// The suppress list of faster-whisper's `get_suppressed_tokens` (§6.4).
/// `None` or an empty list suppresses nothing at all.
pub(crate) fn suppressed_tokens(
    user: Option<&[i64]>,
    special: &SpecialTokens,
    non_speech: impl FnOnce() -> Vec<u32>,
) -> Vec<u32> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Vec::new();
    };
    let mut ids: Vec<u32> = user
        .iter()
        .filter(|&&t| t >= 0)
        .filter_map(|&t| u32::try_from(t).ok())
        .collect();
    if user.contains(&-1) {
        ids.extend(non_speech());
    }
    ids.extend([
        special.transcribe,
        special.translate,
        special.sot,
        special.sot_prev,
        special.sot_lm,
        special.no_speech,
    ]);
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: usize = 40;
    // A toy vocabulary: text 0..20, eot 20, no_timestamps 25, timestamps 26..40.
    const RULES: TimestampRules = TimestampRules {
        eot: 20,
        no_timestamps: 25,
        begin: 26,
        end: 39,
        max_initial: 28,
    };

    fn rules() -> LogitRules {
        LogitRules {
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            suppress: vec![3],
            suppress_begin: vec![0, 20],
            timestamps: Some(RULES),
        }
    }

    fn masked(l: &[f32]) -> Vec<usize> {
        (0..l.len())
            .filter(|&i| l[i] == f32::NEG_INFINITY)
            .collect()
    }

    #[test]
    fn first_step_forces_initial_timestamp() {
        let mut l = vec![0.0f32; V];
        rules().apply(&mut l, &[], 0);
        let unmasked: Vec<usize> = (0..V).filter(|&i| l[i].is_finite()).collect();
        assert_eq!(unmasked, vec![26, 27, 28]);
    }

    #[test]
    fn pair_forces_text_and_single_forces_timestamp_or_eot() {
        // After <|0.00|> alone (counts as a pair): no timestamps.
        let mut l = vec![0.0f32; V];
        rules().apply(&mut l, &[26], 0);
        assert!(l[26..].iter().all(|x| *x == f32::NEG_INFINITY));
        assert!(l[5].is_finite() && l[20].is_finite());
        // text then a timestamp: text masked, earlier timestamps masked.
        let mut l = vec![0.0f32; V];
        l[20] = 10.0;
        rules().apply(&mut l, &[26, 5, 30], 0);
        let m = masked(&l);
        assert!(m.contains(&0) && m.contains(&19) && !m.contains(&20));
        assert!(m.contains(&29) && !m.contains(&30) && !m.contains(&31));
        // text after a pair: timestamps must strictly increase.
        let mut l = vec![0.0f32; V];
        l[..20].fill(5.0);
        rules().apply(&mut l, &[26, 5, 30, 30, 7], 0);
        let m = masked(&l);
        assert!(m.contains(&30) && !m.contains(&31) && !m.contains(&7));
    }

    #[test]
    fn probability_check_forces_timestamp() {
        let mut l = vec![-10.0f32; V];
        l[5] = 1.0;
        for x in &mut l[31..] {
            *x = 0.5; // 9 timestamps at 0.5: logsumexp > 1.0
        }
        rules().apply(&mut l, &[26, 5], 0);
        assert!(l[..26].iter().all(|x| *x == f32::NEG_INFINITY));
        let mut l = vec![-10.0f32; V];
        l[5] = 5.0;
        rules().apply(&mut l, &[26, 5], 0);
        assert!(l[5].is_finite());
    }

    #[test]
    fn begin_suppression_and_prefix() {
        let mut l = vec![0.0f32; V];
        let r = rules();
        // With a forced prefix of 2 tokens, step 2 is the first sampled step:
        // begin ids suppressed, the initial timestamp rule is not applied.
        r.apply(&mut l, &[26, 7], 2);
        assert_eq!(l[0], f32::NEG_INFINITY);
        assert_eq!(l[20], f32::NEG_INFINITY);
        assert!(l[5].is_finite());
        assert_eq!(l[3], f32::NEG_INFINITY);
        assert_eq!(l[25], f32::NEG_INFINITY);
    }

    #[test]
    fn repetition_and_ngrams() {
        let mut r = rules();
        r.timestamps = None;
        r.repetition_penalty = 2.0;
        r.no_repeat_ngram_size = 2;
        let mut l = vec![1.0f32; V];
        l[8] = -1.0;
        r.apply(&mut l, &[7, 8, 8, 7], 4);
        assert_eq!(l[7], 0.5);
        // 8 follows 7 earlier: the bigram (7, 8) is banned.
        assert_eq!(l[8], f32::NEG_INFINITY);
        assert_eq!(l[9], 1.0);
    }

    #[test]
    fn softmax_helpers() {
        let mut l = vec![0.0f32, f32::NEG_INFINITY, 0.0];
        log_softmax_inplace(&mut l);
        assert!((l[0] - (0.5f32).ln()).abs() < 1e-6);
        assert_eq!(l[1], f32::NEG_INFINITY);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert!((softmax_prob(&[0.0, 0.0], 1) - 0.5).abs() < 1e-6);
    }
}
