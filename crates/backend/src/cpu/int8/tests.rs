//! Every int8 kernel family this CPU runs, forced one at a time, against a
//! float32 reference on odd shapes (row counts, `k` and `n` that are not
//! multiples of the block, the vector width or the 4-byte step).

use super::*;

fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// float32 (f64-accumulated) `x · Wᵀ + b`.
fn reference(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, b: &[f32]) -> Vec<f32> {
    let mut o = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|t| f64::from(x[i * k + t]) * f64::from(w[j * k + t]))
                .sum();
            o[i * n + j] = (s + f64::from(b[j])) as f32;
        }
    }
    o
}

/// The exact integer result the kernels must produce, dequantised: proves
/// each kernel bit-exact, independently of quantisation error.
fn quantised_reference(x: &[f32], m: usize, k: usize, q: &QMatrix, b: &[f32]) -> Vec<f32> {
    let mut o = vec![0f32; m * q.n];
    let mut xq = vec![0i8; k];
    for i in 0..m {
        let xs = quantize_row(&x[i * k..(i + 1) * k], &mut xq);
        for j in 0..q.n {
            let acc: i32 = (0..k)
                .map(|c| i32::from(xq[c]) * i32::from(QMatrix::at(&q.data, q.kp, j, c)))
                .sum();
            o[i * q.n + j] = acc as f32 * ((1.0 / xs) * q.inv_scale[j]) + b[j];
        }
    }
    o
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn every_supported_kernel_matches_float32_on_odd_shapes() {
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.supported()).collect();
    eprintln!("int8 kernels tested: {isas:?}");
    assert!(isas.contains(&Isa::Portable));
    // NEON is part of every aarch64 CPU: its kernel must be the one tested.
    #[cfg(target_arch = "aarch64")]
    assert!(isas.contains(&Isa::Neon));
    for &(m, k, n) in &[
        (1, 37, 129),
        (3, 64, 300),
        (5, 383, 51),
        (8, 33, 17),
        (9, 100, 65),
        (19, 130, 47),
        (70, 21, 33),
    ] {
        let x = pseudo(m * k, 1);
        let wf = pseudo(n * k, 2);
        let b = pseudo(n, 3);
        let want = reference(&x, m, k, &wf, n, &b);
        for src in ["f32", "f16"] {
            let wh: Vec<half::f16> = wf.iter().map(|&v| half::f16::from_f32(v)).collect();
            let view = if src == "f32" {
                WeightView::F32(&wf)
            } else {
                WeightView::F16(&wh)
            };
            let q = QMatrix::from_view(view, n, k);
            let exact = quantised_reference(&x, m, k, &q, &b);
            for &isa in &isas {
                let mut out = vec![f32::NAN; m * n];
                qlinear_with(isa, &x, m, k, k, &q, Some(&b), Epilogue::None, &mut out);
                let d: Vec<f32> = out.iter().zip(&exact).map(|(a, b)| a - b).collect();
                assert!(
                    max_abs(&d) <= 1e-5 * (1.0 + max_abs(&exact)),
                    "{isa:?} {src} m={m} k={k} n={n}: not the exact integer result ({})",
                    max_abs(&d)
                );
                // Quantisation error against float32: both operands carry
                // ≤ 0.5/127 relative error per element of their row's max.
                let d: Vec<f32> = out.iter().zip(&want).map(|(a, b)| a - b).collect();
                let bound = 0.25 * (k as f32).sqrt() * 4.0 / 127.0;
                assert!(
                    max_abs(&d) < bound,
                    "{isa:?} {src} m={m} k={k} n={n}: {} vs float32 (bound {bound})",
                    max_abs(&d)
                );
            }
        }
    }
}

#[test]
fn gelu_epilogue_and_strided_rows() {
    let (m, k, n, stride) = (6, 45, 70, 50);
    let x = pseudo(m * stride, 4);
    let wf = pseudo(n * k, 5);
    let b = pseudo(n, 6);
    let q = QMatrix::from_view(WeightView::F32(&wf), n, k);
    let dense: Vec<f32> = (0..m)
        .flat_map(|i| x[i * stride..i * stride + k].to_vec())
        .collect();
    let mut plain = vec![0f32; m * n];
    qlinear_with(
        Isa::Portable,
        &dense,
        m,
        k,
        k,
        &q,
        Some(&b),
        Epilogue::None,
        &mut plain,
    );
    vkw_math::gelu(&mut plain);
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut out = vec![0f32; m * n];
        qlinear_with(
            isa,
            &x,
            m,
            k,
            stride,
            &q,
            Some(&b),
            Epilogue::Gelu,
            &mut out,
        );
        let d: Vec<f32> = out.iter().zip(&plain).map(|(a, b)| a - b).collect();
        assert!(max_abs(&d) < 1e-5, "{isa:?}: {}", max_abs(&d));
    }
}

#[test]
fn stored_int8_is_used_as_is_and_rows_dequantise() {
    let (n, k) = (20, 7);
    let data: Vec<i8> = (0..n * k).map(|i| ((i * 37) % 255) as i8).collect();
    let scale: Vec<f32> = (0..n).map(|j| 10.0 + j as f32).collect();
    let q = QMatrix::from_view(
        WeightView::I8 {
            data: &data,
            scale: &scale,
        },
        n,
        k,
    );
    let mut row = vec![0f32; k];
    for r in 0..n {
        q.row_f32(r, &mut row);
        for c in 0..k {
            assert_eq!(row[c], f32::from(data[r * k + c]) / scale[r]);
        }
    }
}

#[test]
fn quantize_row_follows_spec_rule() {
    let mut q = [0i8; 3];
    // 127 / 1.0 = 127: 0.5 · 127 = 63.5 rounds half to even (64).
    assert_eq!(quantize_row(&[0.5, -1.0, 0.25], &mut q), 127.0);
    assert_eq!(q, [64, -127, 32]);
    assert_eq!(quantize_row(&[0.0; 3], &mut q), 1.0);
    assert_eq!(q, [0, 0, 0]);
}

#[test]
fn stored_int8_extremes_give_the_same_integers_on_every_kernel() {
    // A stored int8 model may hold −128 (CTranslate2's own writer stops at
    // ±127, other tools need not); activations stay within ±127.
    let (m, k, n) = (7, 70, 35);
    let data: Vec<i8> = (0..n * k)
        .map(|i| match i % 5 {
            0 => -128,
            1 => 127,
            2 => -127,
            _ => ((i * 37) % 255) as i8,
        })
        .collect();
    let scale: Vec<f32> = (0..n).map(|j| 50.0 + j as f32).collect();
    let q = QMatrix::from_view(
        WeightView::I8 {
            data: &data,
            scale: &scale,
        },
        n,
        k,
    );
    // Activations with row maxima of both signs (quantised to ±127).
    let mut x = pseudo(m * k, 9);
    for i in 0..m {
        x[i * k + i] = if i % 2 == 0 { -2.0 } else { 2.0 };
    }
    let b = vec![0f32; n];
    let exact = quantised_reference(&x, m, k, &q, &b);
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut out = vec![f32::NAN; m * n];
        qlinear_with(isa, &x, m, k, k, &q, None, Epilogue::None, &mut out);
        let d: Vec<f32> = out.iter().zip(&exact).map(|(a, b)| a - b).collect();
        assert!(
            max_abs(&d) <= 1e-5 * (1.0 + max_abs(&exact)),
            "{isa:?}: not the exact integer result ({})",
            max_abs(&d)
        );
    }
}

/// Requests sharing one thread pool: while a pool thread waits for one
/// call's parallel tasks, rayon may run another request's call on it. The
/// activations buffer is per thread, so the nested call must not find it
/// borrowed (it did: "RefCell already borrowed", with four live sessions
/// and two file jobs on one int8 server).
#[test]
fn calls_from_requests_sharing_a_pool_do_not_collide() {
    let (m, k, n) = (64, 384, 384);
    let x = pseudo(m * k, 11);
    let wf = pseudo(n * k, 12);
    let q = QMatrix::from_view(WeightView::F32(&wf), n, k);
    let b = pseudo(n, 13);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let want = {
        let mut o = vec![0f32; m * n];
        pool.install(|| qlinear(&x, m, k, k, &q, Some(&b), Epilogue::None, &mut o));
        o
    };
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..40 {
                    let mut o = vec![0f32; m * n];
                    pool.install(|| qlinear(&x, m, k, k, &q, Some(&b), Epilogue::None, &mut o));
                    assert_eq!(o, want);
                }
            });
        }
    });
}
