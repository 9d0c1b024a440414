//! Tests of the batched driver against the mock backend.

use super::*;
use crate::generate::{generate, SearchParams};
use crate::greedy::Rng;
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

/// History-determined logits that favour eot more with length.
fn toy(h: &[u32]) -> Vec<f32> {
    let mut l = random_logits(h, V);
    l[EOT as usize] += h.len() as f32 * 0.3 - 1.5;
    l
}

fn rules() -> LogitRules {
    LogitRules {
        repetition_penalty: 1.0,
        no_repeat_ngram_size: 0,
        suppress: vec![12, 13],
        suppress_begin: vec![EOT],
        timestamps: None,
    }
}

/// Several windows decoded in one state give what each window decoded
/// alone gives: same tokens, scores and no-speech probabilities.
#[test]
fn batch_equals_windows_one_by_one() {
    let backend = MockBackend::new(V, Box::new(toy));
    let sp = special();
    let rules = rules();
    let layouts: [Vec<Vec<u32>>; 2] = [
        // Previous text differs per window; sot inside the pre-pass.
        (1..=5).map(|x| vec![15, x, 11, 17]).collect(),
        // sot alone: the start token, no-speech from step 0.
        vec![vec![11]; 3],
    ];
    for prompts in &layouts {
        for beam in [1usize, 2, 5] {
            let opts = TranscribeOptions {
                beam_size: beam,
                ..Default::default()
            };
            let got = generate_batch(&backend, &(), prompts, &sp, V, &rules, &opts, 30).unwrap();
            assert_eq!(got.len(), prompts.len());
            for (w, p) in prompts.iter().enumerate() {
                let params = SearchParams {
                    beam_size: beam,
                    patience: 1.0,
                    length_penalty: 1.0,
                    num_hypotheses: 1,
                    temperature: 0.0,
                    max_length: 30,
                };
                let one = generate(
                    &backend,
                    &(),
                    0,
                    p,
                    &sp,
                    V,
                    &rules,
                    &params,
                    &mut Rng::new(0),
                )
                .unwrap();
                let best = &one.hypotheses[0];
                assert_eq!(got[w].tokens, best.tokens, "beam {beam} window {w}");
                assert_eq!(got[w].score, best.score);
                assert_eq!(got[w].no_speech_prob, one.no_speech_prob);
            }
        }
    }
    // With the sot in the pre-pass, the first window's no-speech comes from it.
    let opts = TranscribeOptions::default();
    let got = generate_batch(&backend, &(), &layouts[0], &sp, V, &rules, &opts, 30).unwrap();
    let want = softmax_prob(&toy(&[15, 1, 11]), 16);
    assert_eq!(got[0].no_speech_prob, want);
    // Mixed layouts are refused.
    let mixed = vec![vec![15, 1, 11, 17], vec![11, 17, 5, 6]];
    assert!(generate_batch(&backend, &(), &mixed, &sp, V, &rules, &opts, 30).is_err());
}

#[test]
fn pieces_map_to_their_speech_segments() {
    use vkw_vad::SpeechChunk;
    let c = |start, end| SpeechChunk { start, end };
    // 12 s + 10 s fit one 30 s piece; the 15 s segment opens the next.
    let speech = [
        c(0, 192_000),
        c(200_000, 360_000),
        c(400_000, 640_000),
        c(700_000, 716_000),
    ];
    let pieces = vkw_vad::collect_chunks(&[], &speech, 30.0);
    assert_eq!(pieces.len(), 2);
    assert_eq!(piece_ranges(&speech, &pieces), vec![0..2, 2..4]);
    let none = vkw_vad::collect_chunks(&[], &[], 30.0);
    assert_eq!(piece_ranges(&[], &none), vec![0..0]);
}

#[test]
fn chunk_features_drop_the_last_frame() {
    let (f, frames) = chunk_features(&vec![0.0; 16_000], 80);
    assert_eq!(frames, 100);
    assert_eq!(f.len(), 80 * 100);
    assert_eq!(pad_or_trim(&f, 80, frames).len(), 80 * WINDOW_FRAMES);
}

#[test]
fn clip_timestamps_become_sample_ranges() {
    use super::clip_samples;
    let n = 16_000 * 100;
    let r = |v: &[f64]| {
        clip_samples(v, n)
            .unwrap()
            .iter()
            .map(|c| (c.start, c.end))
            .collect::<Vec<_>>()
    };
    // int(seconds · 16000) as FW; an odd last start runs to the end.
    assert_eq!(r(&[1.0, 9.5]), vec![(16_000, 152_000)]);
    assert_eq!(r(&[0.25, 1.0, 90.0]), vec![(4_000, 16_000), (1_440_000, n)]);
    assert_eq!(r(&[]), vec![(0, n)]);
    // Clamped to the input; empty clips dropped.
    assert_eq!(r(&[99.0, 200.0, 300.0]), vec![(1_584_000, n)]);
    assert_eq!(r(&[5.0, 5.0]), Vec::<(usize, usize)>::new());
    let e = clip_samples(&[5.0, 2.0], n).unwrap_err().to_string();
    assert!(
        e.contains("clip 1 ends (2 s) before it starts (5 s)"),
        "{e}"
    );
    let e = clip_samples(&[0.0, 10.0, 5.0, 20.0], n)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clip 2 starts before the previous one ends"),
        "{e}"
    );
}
