//! `start_batch` (batched mode, spec §9.3): one state holding the sequences of
//! several windows must give the logits that separate `start`s give, also
//! after `reorder` regroups and interleaves the windows' sequences.

use std::sync::Arc;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::{Backend, LogitsAt};
use vkw_model::WhisperModel;
use vkw_testkit::{fixtures, max_abs_diff, model_dir};

#[test]
fn two_windows_in_one_state_match_separate_states() {
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let backend = CpuBackend::new(model.clone(), 2).unwrap();
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    // Two different windows: the speech from the start, and from 4 s on.
    let mut both = mel.window(0, mel.content_frames(), 3000);
    both.extend(mel.window(400, mel.content_frames() - 400, 3000));
    let enc = backend.encode(&both, 2).unwrap();
    let v = model.hparams.n_vocab;
    let sp = model.tokenizer.special;

    // Pre-pass of two tokens per window, then one step for two beams each.
    let prompt = [sp.sot, sp.no_timestamps];
    let mut separate = Vec::new();
    let mut pre = Vec::new();
    for w in 0..2 {
        let mut st = backend.start(&enc, w).unwrap();
        let mut logits = Vec::new();
        backend
            .decode(&mut st, &prompt, 2, LogitsAt::Last, &mut logits)
            .unwrap();
        pre.push(logits);
        backend.reorder(&mut st, &[0, 0]).unwrap();
        separate.push(st);
    }
    let mut batched = backend.start_batch(&enc, &[0, 1]).unwrap();
    assert_eq!(backend.num_seqs(&batched), 2);
    let mut logits = Vec::new();
    let tokens: Vec<u32> = prompt.iter().chain(&prompt).copied().collect();
    backend
        .decode(&mut batched, &tokens, 2, LogitsAt::Last, &mut logits)
        .unwrap();
    for w in 0..2 {
        let d = max_abs_diff(&logits[w * v..(w + 1) * v], &pre[w]);
        assert!(d < 1e-4, "pre-pass window {w}: {d}");
    }
    // The two windows really differ (else the test proves nothing).
    assert!(max_abs_diff(&pre[0], &pre[1]) > 0.1);

    // Beams of both windows, grouped: [w0, w0, w1, w1].
    backend.reorder(&mut batched, &[0, 0, 1, 1]).unwrap();
    let step = |st: &mut _, toks: &[u32]| {
        let mut out = Vec::new();
        backend
            .decode(st, toks, 1, LogitsAt::Last, &mut out)
            .unwrap();
        out
    };
    let (a, b) = ([262u32, 383], [1026u32, 11]);
    let sep0 = step(&mut separate[0], &a);
    let sep1 = step(&mut separate[1], &b);
    let got = step(&mut batched, &[a[0], a[1], b[0], b[1]]);
    let d0 = max_abs_diff(&got[..2 * v], &sep0);
    let d1 = max_abs_diff(&got[2 * v..], &sep1);
    assert!(d0 < 1e-4 && d1 < 1e-4, "grouped step: {d0} {d1}");

    // Interleave the windows and swap beams: batched rows [w1b1, w0b0, w1b0, w0b1].
    backend.reorder(&mut batched, &[3, 0, 2, 1]).unwrap();
    backend.reorder(&mut separate[0], &[0, 1]).unwrap();
    backend.reorder(&mut separate[1], &[1, 0]).unwrap();
    let sep0 = step(&mut separate[0], &[50, 51]);
    let sep1 = step(&mut separate[1], &[60, 61]);
    let got = step(&mut batched, &[60, 50, 61, 51]);
    let rows = [(&sep1, 0), (&sep0, 0), (&sep1, 1), (&sep0, 1)];
    for (r, (want, i)) in rows.iter().enumerate() {
        let d = max_abs_diff(&got[r * v..(r + 1) * v], &want[i * v..(i + 1) * v]);
        assert!(d < 1e-4, "interleaved row {r}: {d}");
    }
    assert_eq!(backend.cache_len(&batched), 4);
    assert!(backend.start_batch(&enc, &[0, 2]).is_err());
    assert!(backend.start_batch(&enc, &[]).is_err());
}

/// Ten rows (two windows of five beams) take the decoder's grouped path for
/// steps of more than 8 rows; each row still equals its window alone.
#[test]
fn more_than_eight_rows_match_separate_states() {
    let Some(dir) = model_dir("tiny.en") else {
        return;
    };
    let model = Arc::new(WhisperModel::load(&dir).unwrap());
    let backend = CpuBackend::new(model.clone(), 2).unwrap();
    let samples = vkw_audio::load_audio(&fixtures().join("data/jfk/jfk.wav")).unwrap();
    let mel = vkw_audio::mel::LogMel::compute(&samples, 80);
    let mut both = mel.window(0, mel.content_frames(), 3000);
    both.extend(mel.window(500, mel.content_frames() - 500, 3000));
    let enc = backend.encode(&both, 2).unwrap();
    let v = model.hparams.n_vocab;
    let sot = model.tokenizer.special.sot;
    let beams: [u32; 5] = [262, 383, 1026, 11, 50];
    let mut want = Vec::new();
    for w in 0..2 {
        let mut st = backend.start(&enc, w).unwrap();
        let mut out = Vec::new();
        backend
            .decode(&mut st, &[sot], 1, LogitsAt::Last, &mut out)
            .unwrap();
        backend.reorder(&mut st, &[0; 5]).unwrap();
        backend
            .decode(&mut st, &beams, 1, LogitsAt::Last, &mut out)
            .unwrap();
        want.extend(out);
    }
    let mut st = backend.start_batch(&enc, &[0, 1]).unwrap();
    let mut got = Vec::new();
    backend
        .decode(&mut st, &[sot, sot], 1, LogitsAt::Last, &mut got)
        .unwrap();
    backend
        .reorder(&mut st, &[0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
        .unwrap();
    let tokens: Vec<u32> = beams.iter().chain(&beams).copied().collect();
    backend
        .decode(&mut st, &tokens, 1, LogitsAt::Last, &mut got)
        .unwrap();
    assert_eq!(got.len(), 10 * v);
    let d = max_abs_diff(&got, &want);
    assert!(d < 1e-4, "10-row step: {d}");
}
