//! Kernels written for GPUs but not yet measured on one (docs/GPU.md,
//! "Device check"). Each is chosen by an environment variable read (never
//! set) when the device opens, so the device check runs one binary with
//! and without them; the defaults are the kernels measured so far. A value
//! the variable does not know is an error naming the values it takes; a
//! candidate that does not fit the adapter leaves the default in place.

use super::gpu::Gpu;
use super::ops::coop_tiled::TileCfg;
use super::ops::gemv::GemvKernel;
use crate::BackendError;

/// The candidates chosen for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    /// `VKW_COOP_TILES=BMxBN/WMFxWNF[/db][/pad]`: the many-row matmul on a
    /// generated matrix-core tiling (`ops/coop_tiled.rs`) instead of
    /// `ops/coop.wgsl`.
    pub coop_tiles: Option<TileCfg>,
    /// `VKW_GEMV=direct|wide`: the few-row matmul reading its inputs in
    /// place (`direct` in `ops/gemv.wgsl`), or with wide teams and every
    /// weight load of a lane in flight at once (`wide`), instead of the
    /// staged kernel (`staged`, the default: `None`).
    pub gemv: Option<GemvKernel>,
    /// `VKW_ENCODER_ATTN=coop`: the encoder's flash attention on matrix
    /// cores (`ops/attn_coop.wgsl`) where it fits. (`scores`, the same
    /// variable's other value, is read by the encoder plan.)
    pub attn_coop: bool,
    /// `VKW_SDPA=fast`: the decoder's attention with shorter dependency
    /// chains (`fast` in `ops/sdpa.wgsl`).
    pub sdpa_fast: bool,
    /// `VKW_BATCH_GEMV=chunks`: a decoder call of more than
    /// [`gemv::MAX_ROWS`](super::ops::gemv::MAX_ROWS) rows (a batched step:
    /// windows × beams) runs its projections as few-row matmuls over
    /// chunks of rows, each re-reading the weights (from the GPU's L2 for
    /// all but the first), with the LayerNorms and the cache append fused
    /// as in a small step, instead of LayerNorm dispatches and the small-M
    /// GEMM (`gemm`, the default).
    pub batch_gemv: bool,
}

/// The value of `var`, `None` when unset or empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `Ok(true)` for `yes`, `Ok(false)` for `no` or unset.
fn choice(name: &str, yes: &str, no: &[&str]) -> Result<bool, BackendError> {
    choice_of(name, var(name), yes, no)
}

fn choice_of(
    name: &str,
    value: Option<String>,
    yes: &str,
    no: &[&str],
) -> Result<bool, BackendError> {
    match value {
        None => Ok(false),
        Some(v) if v == yes => Ok(true),
        Some(v) if no.contains(&v.as_str()) => Ok(false),
        Some(v) => Err(BackendError::Device(format!(
            "{name}={v:?}: use {yes} or {} (the default)",
            no.join(", ")
        ))),
    }
}

/// `VKW_GEMV`: `direct` or `wide`; `staged` (or unset) is the default
/// kernel, `None`.
fn gemv_of(value: Option<String>) -> Result<Option<GemvKernel>, BackendError> {
    match value.as_deref() {
        None | Some("staged") => Ok(None),
        Some("direct") => Ok(Some(GemvKernel::Direct)),
        Some("wide") => Ok(Some(GemvKernel::Wide)),
        Some(v) => Err(BackendError::Device(format!(
            "VKW_GEMV={v:?}: use direct, wide or staged (the default)"
        ))),
    }
}

impl Candidates {
    /// The candidates the environment chooses for `gpu`.
    pub fn from_env(gpu: &Gpu) -> Result<Self, BackendError> {
        let coop_tiles = match var("VKW_COOP_TILES") {
            None => None,
            Some(v) => {
                let cfg = TileCfg::parse(&v, gpu.subgroup_size.unwrap_or(32))
                    .map_err(|e| BackendError::Device(format!("VKW_COOP_TILES: {e}")))?;
                cfg.fits(gpu).then_some(cfg)
            }
        };
        Ok(Self {
            coop_tiles,
            gemv: gemv_of(var("VKW_GEMV"))?,
            attn_coop: choice("VKW_ENCODER_ATTN", "coop", &["flash", "scores"])?,
            sdpa_fast: choice("VKW_SDPA", "fast", &["main"])?,
            batch_gemv: choice("VKW_BATCH_GEMV", "chunks", &["gemm"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_take_their_values_and_name_them_otherwise() {
        let c = |v: Option<&str>| choice_of("VKW_SDPA", v.map(String::from), "fast", &["main"]);
        assert!(!c(None).unwrap());
        assert!(c(Some("fast")).unwrap());
        assert!(!c(Some("main")).unwrap());
        let e = c(Some("quick")).unwrap_err().to_string();
        assert!(
            e.contains("VKW_SDPA=\"quick\"") && e.contains("fast") && e.contains("main"),
            "{e}"
        );
    }

    #[test]
    fn gemv_takes_its_three_kernels_and_names_them_otherwise() {
        assert_eq!(gemv_of(None).unwrap(), None);
        assert_eq!(gemv_of(Some("staged".into())).unwrap(), None);
        assert_eq!(
            gemv_of(Some("direct".into())).unwrap(),
            Some(GemvKernel::Direct)
        );
        assert_eq!(
            gemv_of(Some("wide".into())).unwrap(),
            Some(GemvKernel::Wide)
        );
        let e = gemv_of(Some("fast".into())).unwrap_err().to_string();
        assert!(e.contains("VKW_GEMV") && e.contains("wide"), "{e}");
    }
}
