//! Search tests against the mock backend: beam bookkeeping against a naive
//! re-implementation that recomputes every hypothesis from scratch, greedy
//! scores, forced prefixes and the no-speech probability of §6.6.

use crate::beam::beam_search;
use crate::generate::{generate, Hypothesis, SearchParams, StepContext};
use crate::greedy::{sample_search, Rng};
use crate::logits::{log_softmax_inplace, softmax_prob, LogitRules};
use crate::mock::{random_logits, MockBackend};
use vkw_model::SpecialTokens;

const V: usize = 20;
const EOT: u32 = 10;

fn special() -> SpecialTokens {
    SpecialTokens {
        eot: EOT,
        sot: 11,
        translate: 12,
        transcribe: 13,
        sot_lm: 14,
        sot_prev: 15,
        no_speech: 16,
        no_timestamps: 17,
        timestamp_begin: 18,
        timestamp_end: 19,
        num_languages: 0,
        multilingual: false,
    }
}

fn no_rules() -> LogitRules {
    LogitRules {
        repetition_penalty: 1.0,
        no_repeat_ngram_size: 0,
        suppress: Vec::new(),
        suppress_begin: Vec::new(),
        timestamps: None,
    }
}

/// Logits favouring eot more and more with the length, so searches end.
fn toy(h: &[u32]) -> Vec<f32> {
    let mut l = random_logits(h, V);
    l[EOT as usize] += h.len() as f32 * 0.35 - 1.5;
    l
}

fn logp(history: &[u32]) -> Vec<f32> {
    let mut l = toy(history);
    log_softmax_inplace(&mut l);
    l
}

/// Naive §6.8 from full histories (no KV state, no reordering).
fn naive_beam(start: u32, beam: usize, patience: f32, max_steps: usize) -> Vec<(Vec<u32>, f32)> {
    let max_cand = (beam as f32 * patience).round() as usize;
    let mut beams: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0)];
    let mut finished: Vec<(Vec<u32>, f32)> = Vec::new();
    for step in 0..max_steps {
        let mut cands: Vec<(f32, usize, u32)> = Vec::new();
        for (bi, (seq, sc)) in beams.iter().enumerate() {
            let mut hist = vec![start];
            hist.extend(seq);
            for (t, lp) in logp(&hist).into_iter().enumerate() {
                cands.push((lp + sc, bi * V + t, t as u32));
            }
        }
        cands.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        cands.truncate(2 * beam);
        let last = step + 1 == max_steps;
        let mut next = Vec::new();
        let mut off = beam;
        for k in 0..beam {
            let (s, flat, t) = cands[k];
            let mut pick = k;
            if t == EOT || last {
                let mut seq = beams[flat / V].0.clone();
                if t != EOT {
                    seq.push(t);
                }
                finished.push((seq, s));
                if let Some(j) = (off..2 * beam).find(|&j| cands[j].2 != EOT) {
                    pick = j;
                    off = j + 1;
                }
            }
            let (s2, f2, t2) = cands[pick];
            let mut seq = beams[f2 / V].0.clone();
            seq.push(t2);
            next.push((seq, s2));
        }
        if last || finished.len() >= max_cand {
            break;
        }
        beams = next;
    }
    finished.sort_by(|a, b| {
        let na = a.1 / a.0.len() as f32;
        let nb = b.1 / b.0.len() as f32;
        nb.partial_cmp(&na).unwrap()
    });
    finished
}

fn ctx<'a>(
    backend: &'a MockBackend,
    rules: &'a LogitRules,
    prefix: &'a [u32],
    max_steps: usize,
) -> StepContext<'a, MockBackend> {
    StepContext {
        backend,
        rules,
        start: 11,
        prefix,
        max_steps,
        eot: EOT,
        vocab: V,
        no_speech_at_step0: Some(16),
    }
}

#[test]
fn beam_search_matches_naive_reference() {
    let backend = MockBackend::new(V, Box::new(toy));
    let rules = no_rules();
    for (beam, patience, max_steps) in [(5, 1.0, 30), (3, 2.0, 30), (2, 1.0, 4), (5, 1.5, 12)] {
        let c = ctx(&backend, &rules, &[], max_steps);
        let mut state = vec![Vec::new()];
        let (hyps, nsp) = beam_search(&c, &mut state, beam, patience, 1.0).unwrap();
        let want = naive_beam(11, beam, patience, max_steps);
        assert_eq!(hyps.len(), want.len(), "beam {beam} patience {patience}");
        for (h, (seq, score)) in hyps.iter().zip(&want) {
            assert_eq!(&h.tokens, seq, "beam {beam} patience {patience}");
            assert!((h.cum_logprob - score).abs() < 1e-4);
        }
        let raw = toy(&[11]);
        assert_eq!(nsp, Some(softmax_prob(&raw, 16)));
    }
}

#[test]
fn greedy_is_argmax_with_summed_scores() {
    let backend = MockBackend::new(V, Box::new(toy));
    let rules = no_rules();
    let c = ctx(&backend, &rules, &[], 40);
    let mut state = vec![Vec::new()];
    let (hyps, _) = sample_search(&c, &mut state, 1, 0.0, 1.0, &mut Rng::new(0)).unwrap();
    let mut hist = vec![11];
    let mut cum = 0.0f32;
    loop {
        let lp = logp(&hist);
        let t = crate::logits::argmax(&lp) as u32;
        cum += lp[t as usize];
        if t == EOT || hist.len() == 40 {
            if t != EOT {
                hist.push(t);
            }
            break;
        }
        hist.push(t);
    }
    assert_eq!(hyps[0].tokens, hist[1..].to_vec());
    assert!((hyps[0].cum_logprob - cum).abs() < 1e-5);
    assert_eq!(
        hyps[0],
        Hypothesis::new(hist[1..].to_vec(), hyps[0].cum_logprob, 1.0)
    );
}

#[test]
fn sampling_returns_best_of_n() {
    let backend = MockBackend::new(V, Box::new(toy));
    let rules = no_rules();
    let c = ctx(&backend, &rules, &[], 40);
    let mut state = vec![Vec::new()];
    let (hyps, _) = sample_search(&c, &mut state, 5, 1.0, 1.0, &mut Rng::new(3)).unwrap();
    assert_eq!(hyps.len(), 5);
    assert!(hyps.windows(2).all(|w| w[0].score >= w[1].score));
    // Every hypothesis' score is its own sum of log-probs.
    for h in &hyps {
        let mut hist = vec![11];
        let mut cum = 0.0f32;
        for &t in &h.tokens {
            cum += logp(&hist)[t as usize];
            hist.push(t);
        }
        if h.tokens.len() < 40 {
            cum += logp(&hist)[EOT as usize];
        }
        assert!((h.cum_logprob - cum).abs() < 1e-4);
    }
}

#[test]
fn forced_prefix_scores_zero_and_is_returned() {
    let backend = MockBackend::new(V, Box::new(toy));
    let rules = no_rules();
    let sp = special();
    let prompt = [11, 18, 3, 4];
    for beam in [1, 4] {
        let params = SearchParams {
            beam_size: beam,
            patience: 1.0,
            length_penalty: 1.0,
            num_hypotheses: 1,
            temperature: 0.0,
            max_length: 60,
        };
        let g = generate(
            &backend,
            &(),
            0,
            &prompt,
            &sp,
            V,
            &rules,
            &params,
            &mut Rng::new(0),
        )
        .unwrap();
        let best = &g.hypotheses[0];
        assert_eq!(&best.tokens[..3], &[18, 3, 4]);
        let mut hist = vec![11, 18, 3, 4];
        let mut cum = 0.0f32;
        for &t in &best.tokens[3..] {
            cum += logp(&hist)[t as usize];
            hist.push(t);
        }
        cum += logp(&hist)[EOT as usize];
        assert!((best.cum_logprob - cum).abs() < 1e-4, "beam {beam}");
        assert_eq!(g.no_speech_prob, softmax_prob(&toy(&[11]), 16));
    }
}

#[test]
fn no_speech_from_prompt_prepass_and_length_limit() {
    let backend = MockBackend::new(V, Box::new(toy));
    let rules = no_rules();
    let sp = special();
    // Previous text, then sot, task, notimestamps: the sot position is inside the pre-pass.
    let prompt = [15, 1, 2, 11, 13, 17];
    let params = SearchParams {
        beam_size: 1,
        patience: 1.0,
        length_penalty: 1.0,
        num_hypotheses: 1,
        temperature: 0.0,
        max_length: prompt.len() + 2,
    };
    let g = generate(
        &backend,
        &(),
        0,
        &prompt,
        &sp,
        V,
        &rules,
        &params,
        &mut Rng::new(0),
    )
    .unwrap();
    assert_eq!(g.no_speech_prob, softmax_prob(&toy(&[15, 1, 2, 11]), 16));
    // decode_max = min(8 / 2, 8 − 5) = 3 steps.
    assert!(g.hypotheses[0].tokens.len() <= 3);
}
