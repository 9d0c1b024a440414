//! Search tests against the mock backend: beam bookkeeping against a naive
//! re-implementation that recomputes every hypothesis from scratch, greedy
//! scores, forced prefixes, the no-speech probability of §6.6, and several
//! windows stepped together equal to each window alone (batched mode).

use crate::generate::{generate, Generation, Hypothesis, SearchParams, StepContext};
use crate::logits::{log_softmax_inplace, softmax_prob, LogitRules};
use crate::mock::{random_logits, MockBackend};
use crate::search::{run, BeamSearch, Rng, SampleSearch, Search};
use crate::CancelToken;
use vkw_model::SpecialTokens;

type Found = (Vec<Hypothesis>, Option<f32>);

/// One window's beam search through the shared stepper.
fn beam_search(
    c: &StepContext<'_, MockBackend>,
    state: &mut Vec<Vec<u32>>,
    beam: usize,
    patience: f32,
    length_penalty: f32,
) -> Result<Found, crate::DecodeError> {
    let mut s = [Search::Beam(BeamSearch::new(
        c,
        beam,
        patience,
        length_penalty,
    ))];
    run(
        std::slice::from_ref(c),
        &mut s,
        state,
        &mut Rng::new(0),
        &CancelToken::new(),
    )?;
    let [s] = s;
    Ok(s.finish())
}

/// One window's greedy/sampling search through the shared stepper.
fn sample_search(
    c: &StepContext<'_, MockBackend>,
    state: &mut Vec<Vec<u32>>,
    n: usize,
    temperature: f64,
    length_penalty: f32,
    rng: &mut Rng,
) -> Result<Found, crate::DecodeError> {
    let mut s = [Search::Sample(SampleSearch::new(
        c,
        n,
        temperature,
        length_penalty,
    ))];
    run(
        std::slice::from_ref(c),
        &mut s,
        state,
        rng,
        &CancelToken::new(),
    )?;
    let [s] = s;
    Ok(s.finish())
}

/// `generate` on window 0 with one prompt.
fn generate_one(
    backend: &MockBackend,
    prompt: &[u32],
    rules: &LogitRules,
    params: &SearchParams,
) -> Generation {
    generate(
        backend,
        &(),
        &[0],
        &[prompt.to_vec()],
        &special(),
        V,
        rules,
        params,
        &mut Rng::new(0),
        &CancelToken::new(),
    )
    .unwrap()
    .remove(0)
}

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
        masks: rules.masks(),
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
    let want = Hypothesis::new(hist[1..].to_vec(), hyps[0].cum_logprob, 1.0);
    assert_eq!((&hyps[0].tokens, hyps[0].score), (&want.tokens, want.score));
    // Each token's log-probability is recorded; with the eot's they sum to
    // the cumulative score.
    assert_eq!(hyps[0].token_logprobs.len(), hyps[0].tokens.len());
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
        let g = generate_one(&backend, &prompt, &rules, &params);
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
    let g = generate_one(&backend, &prompt, &rules, &params);
    assert_eq!(g.no_speech_prob, softmax_prob(&toy(&[15, 1, 2, 11]), 16));
    // decode_max = min(8 / 2, 8 − 5) = 3 steps.
    assert!(g.hypotheses[0].tokens.len() <= 3);
}

/// Several windows decoded in one state give what each window decoded
/// alone gives: same tokens, scores and no-speech probabilities (batched
/// mode steps them together; sequential mode steps one).
#[test]
fn windows_together_equal_windows_one_by_one() {
    let backend = MockBackend::new(V, Box::new(toy));
    let sp = special();
    let rules = LogitRules {
        repetition_penalty: 1.0,
        no_repeat_ngram_size: 0,
        suppress: vec![12, 13],
        suppress_begin: vec![EOT],
        timestamps: None,
    };
    let layouts: [Vec<Vec<u32>>; 2] = [
        // Previous text differs per window; sot inside the pre-pass.
        (1..=5).map(|x| vec![15, x, 11, 17]).collect(),
        // sot alone: the start token, no-speech from step 0.
        vec![vec![11]; 3],
    ];
    for prompts in &layouts {
        for (beam, temperature, hyps) in [(1usize, 0.0, 1), (2, 0.0, 1), (5, 0.0, 1), (1, 0.7, 3)] {
            let params = SearchParams {
                beam_size: beam,
                patience: 1.0,
                length_penalty: 1.0,
                num_hypotheses: hyps,
                temperature,
                max_length: 30,
            };
            let windows: Vec<usize> = (0..prompts.len()).collect();
            let got = generate(
                &backend,
                &(),
                &windows,
                prompts,
                &sp,
                V,
                &rules,
                &params,
                &mut Rng::new(0),
                &CancelToken::new(),
            )
            .unwrap();
            assert_eq!(got.len(), prompts.len());
            if temperature > 0.0 {
                // Sampling draws from one stream in row order: together is
                // not the same draws as alone; every window still gets its
                // best_of hypotheses.
                assert!(got.iter().all(|g| g.hypotheses.len() == hyps));
                continue;
            }
            for (w, p) in prompts.iter().enumerate() {
                let one = generate_one(&backend, p, &rules, &params);
                assert_eq!(
                    got[w].hypotheses[0], one.hypotheses[0],
                    "beam {beam} window {w}"
                );
                assert_eq!(got[w].no_speech_prob, one.no_speech_prob);
            }
        }
    }
    // With the sot in the pre-pass, the first window's no-speech comes from it.
    let params = SearchParams {
        beam_size: 5,
        patience: 1.0,
        length_penalty: 1.0,
        num_hypotheses: 1,
        temperature: 0.0,
        max_length: 30,
    };
    let want = softmax_prob(&toy(&[15, 1, 11]), 16);
    assert_eq!(
        generate_one(&backend, &layouts[0][0], &rules, &params).no_speech_prob,
        want
    );
    // Mixed layouts are refused.
    let mixed = vec![vec![15, 1, 11, 17], vec![11, 17, 5, 6]];
    let e = generate(
        &backend,
        &(),
        &[0, 1],
        &mixed,
        &sp,
        V,
        &rules,
        &params,
        &mut Rng::new(0),
        &CancelToken::new(),
    );
    assert!(e.is_err());
}

/// A cancelled token stops the stepper before its next backend call.
#[test]
fn cancel_stops_before_the_next_step() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let token = CancelToken::new();
    let (c2, t2) = (calls.clone(), token.clone());
    // Cancels from "inside" the model after the third decoder call.
    let backend = MockBackend::new(
        V,
        Box::new(move |h: &[u32]| {
            if c2.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                t2.cancel();
            }
            let mut l = random_logits(h, V);
            l[EOT as usize] = -100.0;
            l
        }),
    );
    let rules = no_rules();
    let c = ctx(&backend, &rules, &[], 40);
    let mut s = [Search::Sample(SampleSearch::new(&c, 1, 0.0, 1.0))];
    let mut state = vec![Vec::new()];
    let r = run(
        std::slice::from_ref(&c),
        &mut s,
        &mut state,
        &mut Rng::new(0),
        &token,
    );
    assert!(matches!(r, Err(crate::DecodeError::Cancelled)));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "no backend call after the cancel"
    );
}

/// The logit rules applied by the backend (`Backend::decode_top`: here
/// its CPU reference) and on the host give the same hypotheses, scores,
/// per-token log-probabilities and no-speech probability, with suppression,
/// begin suppression, timestamp rules and forced prefixes, in beam and
/// greedy search, one window or several.
#[test]
fn backend_rules_equal_host_rules() {
    use crate::logits::TimestampRules;
    use crate::search::run_with;
    let backend = MockBackend::new(V, Box::new(toy));
    let ts = TimestampRules {
        eot: EOT,
        no_timestamps: 17,
        begin: 18,
        end: 19,
        max_initial: 18,
    };
    for timestamps in [None, Some(ts)] {
        let rules = LogitRules {
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            suppress: vec![12, 13],
            suppress_begin: vec![EOT, 1],
            timestamps,
        };
        let prefixes: [&[u32]; 3] = [&[], &[18, 4], &[3]];
        for beam in [1, 3, 5] {
            for prefix in prefixes {
                let c = ctx(&backend, &rules, prefix, 25);
                let mk = || {
                    if beam > 1 {
                        Search::Beam(BeamSearch::new(&c, beam, 1.0, 1.0))
                    } else {
                        Search::Sample(SampleSearch::new(&c, 1, 0.0, 1.0))
                    }
                };
                let ctxs = [c.clone(), c.clone()];
                let mut got = Vec::new();
                for on_backend in [true, false] {
                    let mut s = [mk(), mk()];
                    let mut state = vec![Vec::new(), Vec::new()];
                    run_with(
                        &ctxs,
                        &mut s,
                        &mut state,
                        &mut Rng::new(0),
                        &CancelToken::new(),
                        on_backend,
                    )
                    .unwrap();
                    got.push(s.map(Search::finish));
                }
                assert_eq!(
                    got[0], got[1],
                    "beam {beam} prefix {prefix:?} {timestamps:?}"
                );
                assert!(!got[0][0].0.is_empty());
            }
        }
    }
}
