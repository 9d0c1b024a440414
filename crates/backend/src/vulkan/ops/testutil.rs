//! Test helpers: the shared test device, random data, comparisons.

use super::WType;
use crate::vulkan::gpu::{Buf, Gpu};
use std::sync::{Arc, OnceLock};

/// The test device (the adapter `auto` would pick among Vulkan adapters),
/// or `None` with a message locally when there is none. In CI
/// (`CI=true`) a missing Vulkan device is a failure: `.ci/run` installs
/// Mesa's lavapipe.
pub fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    let r = GPU.get_or_init(|| {
        let list = crate::vulkan::gpu::enumerate();
        let Some(best) = crate::vulkan::best_adapter(&list) else {
            return Err(crate::vulkan::no_device_message());
        };
        Gpu::open(best.index)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    });
    match r {
        Ok(g) => Some(g.clone()),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no Vulkan device in CI: {e}"
            );
            eprintln!("skipping Vulkan test: {e}");
            None
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Upload a weight as `wt`; returns the buffer and the values it holds
/// (rounded to float16 for [`WType::F16`]).
pub fn upload_weight(g: &Gpu, w: &[f32], wt: WType) -> (Buf, Vec<f32>) {
    match wt {
        WType::F32 => (g.upload_f32(w, "w").unwrap(), w.to_vec()),
        WType::F16 => {
            let h: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
            let back = h.iter().map(|v| v.to_f32()).collect();
            (g.upload(bytemuck::cast_slice(&h), "w").unwrap(), back)
        }
        WType::I8 => panic!("int8 weights need scales: quantise them in the test"),
    }
}

/// Fail unless `src` is valid WGSL for naga with every capability
/// (cooperative matrices, subgroups, f16) and translates to SPIR-V: the
/// check kernels get on machines whose adapters cannot run them.
/// `GRID_X` (filled in when a kernel is built) is substituted first.
pub fn assert_valid_spirv(src: &str, what: &str) {
    let src = super::grid_consts(src);
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let words =
        naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert!(words.len() > 100, "{what}: {} SPIR-V words", words.len());
}

/// Fail unless every `|got − want| ≤ tol · max(1, |want|)`.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f32, 0usize);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let e = (a - b).abs() / b.abs().max(1.0);
        assert!(!e.is_nan(), "{what}: NaN at {i}");
        if e > worst.0 {
            worst = (e, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: error {} at {} (got {}, want {}) above {tol}",
        worst.0,
        worst.1,
        got[worst.1],
        want[worst.1]
    );
}
