//! Log-mel front end and mel filterbank against faster-whisper's numbers for jfk.wav
//! (`tests/fixtures/golden/jfk.intermediates.json`, spec §4.2–§4.3).

mod common;

use common::{fixture, golden_json};
use serde_json::Value;
use vkw_audio::mel::{mel_filters, LogMel};

/// Tolerance of the brief; faster-whisper runs float32, we run float64 inside.
const TOL: f64 = 1e-4;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn mel_filter_facts() {
    let g = golden_json("jfk.intermediates.json");
    let mf = &g["mel_filters"];
    let f = mel_filters(80);
    assert_eq!(f.len(), 80 * 201);

    let sum: f64 = f.iter().map(|&x| f64::from(x)).sum();
    let gsum = mf["sum"].as_f64().expect("sum");
    println!("mel filter sum {sum} (golden {gsum})");
    assert!((sum - gsum).abs() < 1e-6);

    // Row 0 has a single non-zero entry, at bin 1.
    let row0: Vec<(usize, f32)> = (0..201)
        .filter(|&k| f[k] != 0.0)
        .map(|k| (k, f[k]))
        .collect();
    let grow0 = mf["row0_nonzero"].as_array().expect("row0");
    assert_eq!(row0.len(), grow0.len());
    for ((k, w), g) in row0.iter().zip(grow0) {
        assert_eq!(*k as u64, g[0].as_u64().expect("bin"));
        assert!(
            (f64::from(*w) - g[1].as_f64().expect("w")).abs() < 1e-9,
            "{w} vs {g}"
        );
    }
    // First four non-zero entries of row 79.
    let row79 = &f[79 * 201..80 * 201];
    let nz: Vec<(usize, f32)> = (0..201)
        .filter(|&k| row79[k] != 0.0)
        .take(4)
        .map(|k| (k, row79[k]))
        .collect();
    for ((k, w), g) in nz
        .iter()
        .zip(mf["row79_nonzero_first4"].as_array().expect("row79"))
    {
        assert_eq!(*k as u64, g[0].as_u64().expect("bin"));
        assert!(
            (f64::from(*w) - g[1].as_f64().expect("w")).abs() < 1e-9,
            "{w} vs {g}"
        );
    }

    // 128-mel bank (large-v3): same construction, every triangle non-empty.
    let f128 = mel_filters(128);
    for m in 0..128 {
        assert!(
            f128[m * 201..(m + 1) * 201].iter().any(|&w| w > 0.0),
            "mel {m}"
        );
    }
}

#[test]
fn jfk_log_mel_matches_faster_whisper() {
    let g = golden_json("jfk.intermediates.json");
    let feat = &g["features"];
    let samples = vkw_audio::load_audio(&fixture("data/jfk/jfk.wav")).expect("decode jfk.wav");
    assert_eq!(samples.len(), 176_000);

    let t0 = std::time::Instant::now();
    let lm = LogMel::compute(&samples, 80);
    println!("log-mel of 11 s: {:?}", t0.elapsed());
    assert_eq!(
        [lm.n_mels as u64, lm.n_frames as u64],
        [
            feat["full_shape"][0].as_u64().expect("shape"),
            feat["full_shape"][1].as_u64().expect("shape")
        ]
    );
    assert_eq!(
        lm.content_frames() as u64,
        feat["content_frames"].as_u64().expect("cf")
    );

    let seg = feat["segment_size"].as_u64().expect("segment_size") as usize;
    let win = lm.window(0, seg, 3000);
    assert_eq!(win.len(), 80 * 3000);
    let col = |data: &[f32], frames: usize, t: usize| -> Vec<f64> {
        (0..80).map(|m| f64::from(data[m * frames + t])).collect()
    };

    let mut max_diff = 0f64;
    let mut check = |what: &str, ours: Vec<f64>, golden: Vec<f64>| {
        assert_eq!(ours.len(), golden.len(), "{what}");
        let d = ours
            .iter()
            .zip(&golden)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        max_diff = max_diff.max(d);
        assert!(d < TOL, "{what}: max |diff| {d}");
    };
    for (t, frame) in feat["window_frames_0_3"]
        .as_array()
        .expect("0_3")
        .iter()
        .enumerate()
    {
        check(
            &format!("window frame {t}"),
            col(&win, 3000, t),
            floats(frame),
        );
    }
    for (t, frame) in feat["window_frames_selected"]
        .as_object()
        .expect("selected")
    {
        let t: usize = t.parse().expect("frame index");
        check(
            &format!("window frame {t}"),
            col(&win, 3000, t),
            floats(frame),
        );
    }
    for (t, frame) in feat["full_frames_last3"].as_object().expect("last3") {
        let t: usize = t.parse().expect("frame index");
        check(
            &format!("full frame {t}"),
            col(&lm.data, lm.n_frames, t),
            floats(frame),
        );
    }

    // Statistics of the padded window and of the content frames.
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        [mean, std, min, max]
    };
    let win64: Vec<f64> = win.iter().map(|&x| f64::from(x)).collect();
    let content: Vec<f64> = (0..80)
        .flat_map(|m| lm.data[m * lm.n_frames..m * lm.n_frames + seg].to_vec())
        .map(f64::from)
        .collect();
    for (name, ours) in [
        ("window_stats", stats(&win64)),
        ("content_stats", stats(&content)),
    ] {
        let gs = &feat[name];
        let golden = ["mean", "std", "min", "max"].map(|k| gs[k].as_f64().expect("stat"));
        check(name, ours.to_vec(), golden.to_vec());
    }
    println!("jfk log-mel: max |diff| vs faster-whisper = {max_diff:.3e}");
}
