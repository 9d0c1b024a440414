//! GPU measurements for scripts/device-check.sh, printed as `key=value`
//! lines (one result per line, flushed as it goes):
//!
//! * `devcheck ops [reps] [small]`: per-op bandwidth and throughput at Whisper's
//!   shapes — buffer copy (the bandwidth reference), the decoder's few-row
//!   matmul (float16 and int8 weights, 1 and 5 rows), flash-decoding
//!   cross-attention over 1500 keys, the encoder's tiled matmul; with
//!   float16, the many-row kernels (SIMT tiles, cooperative matrices where
//!   the adapter has them, small-M with split-K, flash attention).
//! * `devcheck batched DIR [compute_type] [batch] [beam] [steps]`: batched
//!   mode, encoder ms per window at that batch and decoder ms per step over
//!   every window's beams (`batch · beam` rows: the small-M GEMM).
//! * `devcheck traffic DIR [compute_type...]`: the encoder's dispatches,
//!   submits and compulsory memory traffic per window, recorded without
//!   running (`VKW_ENCODER_ATTN=scores`: the score-matrix attention).
//! * `devcheck model DIR [compute_type] [beam] [steps] [reps] [cpu]`: encoder
//!   ms per window, teacher-forced decoder steps (ms per step p50/p95, host
//!   record/wait and GPU time from the step counters), the forced-length
//!   real-time factor (one window's encode plus `steps` beam steps over
//!   30 s), and with `cpu` the same tokens through the CPU backend: the
//!   largest logit difference and whether every step's argmax agrees.
//!
//! `cargo build --release -p vkw-backend --example devcheck`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use vkw_backend::cpu::CpuBackend;
use vkw_backend::vulkan::gpu::{self, Gpu};
use vkw_backend::vulkan::ops::attn::Attn;
use vkw_backend::vulkan::ops::coop_tiled::TileCfg;
use vkw_backend::vulkan::ops::flash::{self, Flash};
use vkw_backend::vulkan::ops::gemm::{self, Kernel};
use vkw_backend::vulkan::ops::gemv::{Gemv, GemvKernel};
use vkw_backend::vulkan::ops::matmul::MatMul;
use vkw_backend::vulkan::ops::WType;
use vkw_backend::vulkan::{best_adapter, VulkanBackend};
use vkw_backend::{Backend, ComputeType, LogitsAt};
use vkw_model::WhisperModel;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn out(line: String) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Median ms of `reps` runs of `f` (each waits for the GPU).
fn time(reps: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    f()?;
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(pct(&mut v, 0.5))
}

/// The first `len` float16 values of `buf`, widened.
fn read_f16(g: &Gpu, buf: &gpu::Buf, len: usize) -> Res<Vec<f32>> {
    let words = g.read(buf, 0, len.div_ceil(2))?;
    let h: &[half::f16] = bytemuck::cast_slice(&words);
    Ok(h[..len].iter().map(|v| v.to_f32()).collect())
}

/// `small`: tiny's shapes (d = 384) and fewer dispatches per timing, for a
/// dry run on software Vulkan; else large-v3's (d = 1280).
fn ops(g: &Gpu, reps: usize, small: bool) -> Res<()> {
    let reps_n = if small { 2 } else { 8 };
    let d = if small { 384 } else { 1280 };
    // Copy bandwidth (read + write), the reference for the rest.
    let mb = if small { 32usize << 20 } else { 256 << 20 };
    let (a, b) = (g.alloc(mb as u64, "a")?, g.alloc(mb as u64, "b")?);
    let ms = time(reps, || {
        let mut rec = g.recorder();
        for _ in 0..reps_n {
            rec.copy(&a, 0, &b, 0, mb as u64);
        }
        let mut v = Vec::new();
        g.submit_read(rec, &b, 0, 1, &mut v, &mut gpu::Staging::default())?;
        Ok(())
    })?;
    out(format!(
        "op=copy bytes={mb} ms={:.3} gbps={:.1}",
        ms / reps_n as f64,
        2.0 * mb as f64 * reps_n as f64 / ms / 1e6
    ));
    drop((a, b));
    // The few-row matmul in each of its GPU kernels (`staged`: what runs
    // by default; `direct` and `wide`: the candidates, VKW_GEMV=direct|wide;
    // device-check.sh runs the model with the faster of the three), with
    // the LayerNorm prologue (`norm=1`) where a decoder layer has it.
    let kernels: &[(&str, GemvKernel)] = if g.desc.kind == gpu::DeviceKind::Cpu {
        &[
            ("percol", GemvKernel::PerColumn),
            ("direct", GemvKernel::Direct),
            ("wide", GemvKernel::Wide),
        ]
    } else {
        &[
            ("staged", GemvKernel::Staged),
            ("direct", GemvKernel::Direct),
            ("wide", GemvKernel::Wide),
        ]
    };
    for (n, k, norm) in [
        (d, d, false),
        (d, d, true),
        (3 * d, d, true),
        (4 * d, d, false),
        (d, 4 * d, false),
        (51866, d, false),
    ] {
        for (wt, rows) in [
            (WType::F16, 1),
            (WType::F16, 5),
            (WType::I8, 5),
            (WType::F32, 5),
        ] {
            if wt == WType::F16 && !g.f16 || norm && wt != WType::F16 {
                continue;
            }
            let wbytes = n * k * wt.size();
            let w = g.alloc(wbytes as u64, "w")?;
            let scale = g.upload_f32(&vec![1.0; n], "s")?;
            let x = g.upload_f32(&vec![0.01; rows * k], "x")?;
            let gb = g.upload_f32(&vec![1.0; 2 * k], "gb")?;
            let o = g.alloc((rows * n * 4) as u64, "o")?;
            for &(kname, kernel) in kernels {
                let ms = time(reps, || {
                    let mut rec = g.recorder();
                    for _ in 0..reps_n {
                        let mut m = Gemv::new(&x, &w, wt, &o, rows, n, k);
                        if wt == WType::I8 {
                            m.scale = Some(&scale);
                        }
                        if norm {
                            m.norm = Some((&gb, 0, 1e-5));
                        }
                        m.kernel = Some(kernel);
                        m.record(g, &mut rec)?;
                    }
                    let mut v = Vec::new();
                    let mut st = gpu::Staging::default();
                    g.submit_read(rec, &o, 0, 1, &mut v, &mut st)?;
                    Ok(())
                })? / reps_n as f64;
                out(format!(
                    "op=gemv kernel={kname} wtype={} rows={rows} n={n} k={k} norm={} ms={ms:.4} gbps={:.1}",
                    wt.name(),
                    u8::from(norm),
                    wbytes as f64 / ms / 1e6
                ));
            }
        }
    }
    // Flash-decoding cross-attention: 5 beams of one window, heads of 64.
    let (heads, dh, lk, rows) = (d / 64, 64, 1500, 5);
    let d = heads * dh;
    let kv = g.alloc((lk * 2 * d * 4) as u64, "kv")?;
    let q = g.upload_f32(&vec![0.01; rows * d], "q")?;
    let (grp, cap) = flash::groups(&[0; 5], 1).ok_or("groups")?;
    let grp = g.upload(bytemuck::cast_slice(&grp), "grp")?;
    let o = g.alloc((rows * d * 4) as u64, "o")?;
    let nch = flash::chunks(g, 1, heads, lk);
    let part = g.alloc(
        (Flash::partials_len(1, heads, nch, cap, dh) * 4) as u64,
        "p",
    )?;
    let ms = time(reps, || {
        let mut rec = g.recorder();
        for _ in 0..reps_n {
            Flash {
                q: &q,
                q_stride: d,
                rows,
                grp: &grp,
                cap,
                kv: &kv,
                k_off: 0,
                v_off: d,
                row_stride: 2 * d,
                slot_stride: lk * 2 * d,
                windows: 1,
                lk,
                heads,
                dh,
                nch,
                part: &part,
                out: &o,
            }
            .record(g, &mut rec)?;
        }
        let mut v = Vec::new();
        g.submit_read(rec, &o, 0, 1, &mut v, &mut gpu::Staging::default())?;
        Ok(())
    })? / reps_n as f64;
    out(format!(
        "op=flash rows={rows} heads={heads} keys={lk} chunks={nch} ms={ms:.4} gbps={:.1}",
        (lk * 2 * d * 4) as f64 / ms / 1e6
    ));
    // Encoder matmul: 1500 × d × d (GFLOP/s).
    let (m, n, k) = (1500, d, d);
    let x = g.alloc((m * k * 4) as u64, "x")?;
    let o = g.alloc((m * n * 4) as u64, "o")?;
    for wt in [WType::F32, WType::F16] {
        if wt == WType::F16 && !g.f16 {
            continue;
        }
        let w = g.alloc((n * k * wt.size()) as u64, "w")?;
        let ms = time(reps, || {
            let mut rec = g.recorder();
            MatMul::new(&x, &w, wt, &o, m, n, k).record(g, &mut rec)?;
            let mut v = Vec::new();
            g.submit_read(rec, &o, 0, 1, &mut v, &mut gpu::Staging::default())?;
            Ok(())
        })?;
        out(format!(
            "op=matmul wtype={} m={m} n={n} k={k} ms={ms:.3} gflops={:.1}",
            wt.name(),
            2.0 * (m * n * k) as f64 / ms / 1e6
        ));
    }
    if g.f16 {
        many_row(g, reps, d)?;
    }
    Ok(())
}

/// The float16 modes' many-row kernels at the encoder's shapes: 128×128
/// SIMT tiles and cooperative matrices (where the adapter has them) on
/// f16 activations and weights, the small-M GEMM at 40 rows (8 windows ×
/// beam 5) with its split-K, and flash attention over 1500 frames.
fn many_row(g: &Gpu, reps: usize, d: usize) -> Res<()> {
    let (m, n, k) = (1500, 4 * d, d);
    // Deterministic values in [-1, 1) so that the kernels' outputs can be
    // compared with each other (zeros would agree whatever a kernel did).
    let vals = |len: usize, seed: u64| -> Vec<half::f16> {
        let mut st = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                half::f16::from_f32((st >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            })
            .collect()
    };
    let xh = g.upload(bytemuck::cast_slice(&vals(m * k, 1)), "xh")?;
    let oh = g.alloc((m * n * 2) as u64, "oh")?;
    let wh = g.upload(bytemuck::cast_slice(&vals(n * k, 2)), "wh")?;
    let mut kinds = vec![
        ("tile8".to_string(), Kernel::Tile8),
        ("coop".to_string(), Kernel::Coop),
    ];
    // The generated matrix-core tilings (ops/coop_tiled.rs), each checked
    // against the first kernel's output before its time counts.
    match g.subgroup_size.filter(|_| g.coop16) {
        Some(sg) => {
            for cfg in TileCfg::sweep(sg) {
                if cfg.fits(g) {
                    kinds.push((format!("coop_tiled:{}", cfg.name()), Kernel::CoopTiled(cfg)));
                } else {
                    out(format!("op=gemm kernel=coop_tiled:{} skipped=does_not_fit", cfg.name()));
                }
            }
        }
        None => out(format!(
            "op=gemm kernel=coop_tiled skipped=no_f16_cooperative_matrices_with_a_fixed_subgroup_size subgroup_size={:?}",
            g.subgroup_size
        )),
    }
    let mut first: Option<Vec<f32>> = None;
    for (name, kind) in kinds {
        if kind == Kernel::Coop && !g.coop16 {
            out("op=gemm kernel=coop skipped=no_f16_cooperative_matrices".to_string());
            continue;
        }
        let run = || -> Res<()> {
            let mut rec = g.recorder();
            let mut mm = MatMul::new(&xh, &wh, WType::F16, &oh, m, n, k);
            mm.xt = WType::F16;
            mm.ot = WType::F16;
            mm.force = Some((kind, 1));
            mm.record(g, &mut rec)?;
            let mut v = Vec::new();
            g.submit_read(rec, &oh, 0, 1, &mut v, &mut gpu::Staging::default())?;
            Ok(())
        };
        // A kernel that fails to build or run is reported and skipped.
        if let Err(e) = run() {
            out(format!("op=gemm kernel={name} error={:?}", e.to_string()));
            continue;
        }
        let got = read_f16(g, &oh, m * n)?;
        let diff = match &first {
            Some(want) => got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max),
            None => 0.0,
        };
        let ms = time(reps, run)?;
        out(format!(
            "op=gemm kernel={name} act=f16 wtype=f16 m={m} n={n} k={k} ms={ms:.3} gflops={:.1} max_abs_diff_vs_first={diff:.4}",
            2.0 * (m * n * k) as f64 / ms / 1e6
        ));
        if first.is_none() {
            first = Some(got);
        }
    }
    let rows = 40;
    let x = g.alloc((rows * k * 4) as u64, "x")?;
    let o = g.alloc((rows * n * 4) as u64, "o")?;
    let splits = gemm::splits(g, n, k);
    let part = g.alloc((splits * rows * n * 4) as u64, "part")?;
    let ms = time(reps, || {
        let mut rec = g.recorder();
        let mut mm = MatMul::new(&x, &wh, WType::F16, &o, rows, n, k);
        mm.part = Some(&part);
        mm.force = Some((Kernel::Skinny, splits));
        mm.record(g, &mut rec)?;
        let mut v = Vec::new();
        g.submit_read(rec, &o, 0, 1, &mut v, &mut gpu::Staging::default())?;
        Ok(())
    })?;
    out(format!(
        "op=gemm kernel=skinny rows={rows} n={n} k={k} splits={splits} ms={ms:.4} gbps={:.1}",
        (n * k * 2) as f64 / ms / 1e6
    ));
    // Encoder flash attention: attn.wgsl (SIMT), then the matrix-core
    // candidate (attn_coop.wgsl, VKW_ENCODER_ATTN=coop) where it fits,
    // checked against the SIMT output first.
    let (heads, dh) = (d / 64, 64);
    let qkv = g.upload(bytemuck::cast_slice(&vals(m * 3 * d, 3)), "qkv")?;
    let ctx = g.alloc((m * d * 2) as u64, "ctx")?;
    let attn = Attn {
        qkv: &qkv,
        xt: WType::F16,
        ld: 3 * d,
        base: 0,
        q_off: 0,
        k_off: d,
        v_off: 2 * d,
        frames: m,
        heads,
        dh,
        out: &ctx,
        ot: WType::F16,
        o_ld: d,
        o_off: 0,
    };
    let mut simt_out: Option<Vec<f32>> = None;
    for kernel in ["simt", "coop"] {
        if kernel == "coop" && !attn.fits_coop(g) {
            out(format!(
                "op=attn kernel=coop skipped=no_f16_cooperative_matrices_with_32_lane_subgroups subgroup_size={:?}",
                g.subgroup_size
            ));
            continue;
        }
        let run = || -> Res<()> {
            let mut rec = g.recorder();
            if kernel == "coop" {
                attn.record_coop(g, &mut rec)?;
            } else {
                attn.record_simt(g, &mut rec)?;
            }
            let mut v = Vec::new();
            g.submit_read(rec, &ctx, 0, 1, &mut v, &mut gpu::Staging::default())?;
            Ok(())
        };
        if let Err(e) = run() {
            out(format!("op=attn kernel={kernel} error={:?}", e.to_string()));
            continue;
        }
        let got = read_f16(g, &ctx, m * d)?;
        let diff = simt_out.as_ref().map_or(0.0, |w| {
            got.iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        });
        let ms = time(reps, run)?;
        out(format!(
            "op=attn kernel={kernel} frames={m} heads={heads} dh={dh} act=f16 ms={ms:.3} gflops={:.1} max_abs_diff_vs_simt={diff:.4}",
            4.0 * (heads * m * m * dh) as f64 / ms / 1e6
        ));
        if simt_out.is_none() {
            simt_out = Some(got);
        }
    }
    Ok(())
}

/// Teacher-forced logits of `steps` beam steps (beam `beam`) on window 0 of
/// a deterministic mel; returns (encode ms, per-step ms, logits per step).
fn decode_run<B: Backend>(
    b: &B,
    sync: &dyn Fn() -> Res<()>,
    model: &WhisperModel,
    beam: usize,
    steps: usize,
    reps: usize,
) -> Res<(f64, Vec<f64>, Vec<Vec<f32>>)> {
    let hp = b.hparams();
    let mel: Vec<f32> = (0..hp.n_mels * 2 * hp.n_audio_ctx)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect();
    let mut enc_ms = Vec::new();
    let mut enc = b.encode(&mel, 1)?;
    for _ in 0..reps {
        let t = Instant::now();
        enc = b.encode(&mel, 1)?;
        let _ = b.start(&enc, 0)?;
        sync()?; // encode and start submit without waiting
        enc_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let sp = model.tokenizer.special;
    let mut st = b.start(&enc, 0)?;
    let mut l = Vec::new();
    b.decode(
        &mut st,
        &[sp.sot, sp.no_timestamps],
        2,
        LogitsAt::Last,
        &mut l,
    )?;
    b.reorder(&mut st, &vec![0; beam])?;
    let (mut per, mut all) = (Vec::new(), Vec::new());
    let v = hp.n_vocab as u32;
    for s in 0..steps {
        let toks: Vec<u32> = (0..beam)
            .map(|i| (1000 + 37 * s as u32 + 101 * i as u32) % v.min(50000))
            .collect();
        let t = Instant::now();
        b.decode(&mut st, &toks, 1, LogitsAt::Last, &mut l)?;
        per.push(t.elapsed().as_secs_f64() * 1e3);
        all.push(l.clone());
        let origins: Vec<usize> = (0..beam).map(|i| (i + s) % beam).collect();
        b.reorder(&mut st, &origins)?;
    }
    Ok((pct(&mut enc_ms, 0.5), per, all))
}

fn model(dir: &str, args: &[String]) -> Res<()> {
    let ct: ComputeType = args.first().map_or("float16", |s| s.as_str()).parse()?;
    let beam: usize = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let steps: usize = args.get(2).map_or(Ok(32), |s| s.parse())?;
    let reps: usize = args.get(3).map_or(Ok(2), |s| s.parse())?;
    let cpu = args.get(4).is_some_and(|s| s == "cpu");
    let m = Arc::new(WhisperModel::load(dir)?);
    let index = best_adapter(&gpu::enumerate())
        .ok_or("no Vulkan device")?
        .index;
    let t = Instant::now();
    let vk = VulkanBackend::with_compute_type(m.clone(), index, ct)?;
    let load = t.elapsed().as_secs_f64();
    let (enc_ms, mut per, lv) = decode_run(&vk, &|| Ok(vk.wait_idle()?), &m, beam, steps, reps)?;
    let total = enc_ms + per.iter().sum::<f64>();
    let hp = m.hparams;
    out(format!(
        "model={dir} d={} layers={} compute={} coop_tiles={} gemv={} attn={} sdpa={} beam={beam} load_s={load:.2} encode_ms={enc_ms:.1} step_ms_p50={:.2} step_ms_p95={:.2} rtf_forced={:.4}",
        hp.d_model,
        hp.decoder_layers,
        vk.precision().name(),
        // The candidates under test (device-check.sh's `*-candidates`
        // steps); a tiling that does not fit the adapter is not used.
        std::env::var("VKW_COOP_TILES")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "default".into()),
        std::env::var("VKW_GEMV").unwrap_or_else(|_| "default".into()),
        std::env::var("VKW_ENCODER_ATTN").unwrap_or_else(|_| "default".into()),
        std::env::var("VKW_SDPA").unwrap_or_else(|_| "default".into()),
        pct(&mut per.clone(), 0.5),
        pct(&mut per, 0.95),
        total / 30_000.0
    ));
    out(format!("model={dir} steps: {}", vk.step_stats()));
    if cpu {
        let cb = CpuBackend::new(m.clone(), 0)?;
        let (_, _, lc) = decode_run(&cb, &|| Ok(()), &m, beam, steps, 1)?;
        let v = hp.n_vocab;
        let mut worst = 0f32;
        let mut agree = true;
        for (a, b) in lv.iter().zip(&lc) {
            for (x, y) in a.iter().zip(b) {
                worst = worst.max((x - y).abs());
            }
            for s in 0..beam {
                let am = |r: &[f32]| (0..v).max_by(|&i, &j| r[i].total_cmp(&r[j]));
                agree &= am(&a[s * v..(s + 1) * v]) == am(&b[s * v..(s + 1) * v]);
            }
        }
        out(format!(
            "model={dir} check=cpu_vs_gpu max_abs_logit_diff={worst:.3e} argmax_agree={agree}"
        ));
    }
    Ok(())
}

/// Batched mode: `batch` windows encoded in one call (ms per window), then
/// teacher-forced decoder steps over all their beams (`batch · beam` rows).
fn batched(dir: &str, args: &[String]) -> Res<()> {
    let ct: ComputeType = args.first().map_or("float16", |s| s.as_str()).parse()?;
    let batch: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let beam: usize = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let steps: usize = args.get(3).map_or(Ok(16), |s| s.parse())?;
    let m = Arc::new(WhisperModel::load(dir)?);
    let index = best_adapter(&gpu::enumerate())
        .ok_or("no Vulkan device")?
        .index;
    let b = VulkanBackend::with_compute_type(m.clone(), index, ct)?;
    let hp = m.hparams;
    let per = hp.n_mels * 2 * hp.n_audio_ctx;
    let mel: Vec<f32> = (0..batch * per)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect();
    let all: Vec<usize> = (0..batch).collect();
    let enc = b.encode(&mel, batch)?;
    let _ = b.start_batch(&enc, &all)?; // warm
    b.wait_idle()?;
    let t = Instant::now();
    let enc = b.encode(&mel, batch)?;
    let mut st = b.start_batch(&enc, &all)?;
    b.wait_idle()?; // encode and start submit without waiting
    let enc_ms = t.elapsed().as_secs_f64() * 1e3 / batch as f64;
    let sp = m.tokenizer.special;
    let prompt: Vec<u32> = (0..batch)
        .flat_map(|_| [sp.sot, sp.no_timestamps])
        .collect();
    let mut l = Vec::new();
    b.decode(&mut st, &prompt, 2, LogitsAt::Last, &mut l)?;
    let origins: Vec<usize> = (0..batch)
        .flat_map(|w| std::iter::repeat_n(w, beam))
        .collect();
    b.reorder(&mut st, &origins)?;
    let rows = batch * beam;
    let v = hp.n_vocab as u32;
    let mut per_step = Vec::new();
    for s in 0..steps {
        let toks: Vec<u32> = (0..rows)
            .map(|i| (1000 + 37 * s as u32 + 101 * i as u32) % v.min(50000))
            .collect();
        let t = Instant::now();
        b.decode(&mut st, &toks, 1, LogitsAt::Last, &mut l)?;
        per_step.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out(format!(
        "model={dir} compute={} batch={batch} beam={beam} rows={rows} encode_ms_per_window={enc_ms:.1} step_ms_p50={:.2} step_ms_p95={:.2}",
        b.precision().name(),
        pct(&mut per_step.clone(), 0.5),
        pct(&mut per_step, 0.95)
    ));
    Ok(())
}

/// The encoder's counters per window, recorded without running: one line
/// per compute type (run with VKW_ENCODER_ATTN=scores for the score path).
fn traffic(dir: &str, cts: &[String]) -> Res<()> {
    let m = Arc::new(WhisperModel::load(dir)?);
    let index = best_adapter(&gpu::enumerate())
        .ok_or("no Vulkan device")?
        .index;
    for ct in cts {
        let vk = VulkanBackend::with_compute_type(m.clone(), index, ct.parse()?)?;
        let t = vk.encoder_counts()?;
        let (act, flash) = vk.encoder_plan();
        out(format!(
            "model={dir} compute={} encoder_attention={} activations={act} dispatches_per_window={} submits_per_window={} traffic_mb_per_window={:.1}",
            vk.precision().name(),
            if flash { "flash" } else { "scores" },
            t.dispatches,
            t.submits,
            t.traffic as f64 / 1e6
        ));
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ops") => {
            let reps = args.get(1).map_or(Ok(3), |s| s.parse())?;
            let small = args.get(2).is_some_and(|s| s == "small");
            let index = best_adapter(&gpu::enumerate()).ok_or("no Vulkan device")?.index;
            let g = Gpu::open(index)?;
            out(format!("adapter={:?}", g.desc));
            ops(&g, reps, small)
        }
        Some("batched") => {
            let dir = args.get(1).ok_or("usage: devcheck batched DIR ...")?;
            batched(dir, &args[2..])
        }
        Some("traffic") => {
            let dir = args.get(1).ok_or("usage: devcheck traffic DIR [compute_type...]")?;
            traffic(dir, &args[2..])
        }
        Some("model") => {
            let dir = args.get(1).ok_or("usage: devcheck model DIR ...")?;
            model(dir, &args[2..])
        }
        _ => Err("usage: devcheck ops [reps] [small] | devcheck model DIR [compute_type] [beam] [steps] [reps] [cpu]".into()),
    }
}
