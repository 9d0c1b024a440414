//! `--vad-filter` and the `--vad-*` flags: the Silero VAD model (fetched into
//! the cache on first use, like the default Whisper model) and faster-whisper's
//! `VadOptions` from the flags (spec §8.4).

use crate::args::TranscribeArgs;
use anyhow::{anyhow, Context, Result};
use vkw_decode::{SileroVad, VadOptions};

/// Seconds per batched piece (`chunk_length`, spec §9.3).
const CHUNK_LENGTH: f64 = 30.0;

/// The Silero VAD v6 network from the cache, downloaded once if missing.
pub fn model() -> Result<SileroVad> {
    let path = vkw_hub::vad_path();
    let path = if path.is_file() {
        path
    } else {
        eprintln!(
            "vkwhisper: the Silero VAD model is not installed yet; downloading it to {} (once)",
            path.display()
        );
        vkw_hub::pull_vad().context(
            "cannot fetch the Silero VAD model: run `vkwhisper models pull vad` when online",
        )?
    };
    Ok(SileroVad::load(&path)?)
}

/// The VAD options the flags describe. Sequential mode starts from
/// faster-whisper's `VadOptions()`; batched mode from the pipeline's
/// (`min_silence_duration_ms=160`), and, as faster-whisper does, always
/// limits speech segments to the 30 s piece length.
pub fn options(a: &TranscribeArgs, batched: bool) -> Result<VadOptions> {
    let mut o = if batched {
        VadOptions::batched(CHUNK_LENGTH)
    } else {
        VadOptions::default()
    };
    if let Some(v) = a.vad_threshold {
        o.threshold = v;
    }
    if a.vad_neg_threshold.is_some() {
        o.neg_threshold = a.vad_neg_threshold;
    }
    if let Some(v) = a.vad_min_speech_duration_ms {
        o.min_speech_duration_ms = v;
    }
    if let Some(v) = a.vad_max_speech_duration_s {
        o.max_speech_duration_s = if batched { CHUNK_LENGTH } else { v };
    }
    if let Some(v) = a.vad_min_silence_duration_ms {
        o.min_silence_duration_ms = v;
    }
    if let Some(v) = a.vad_speech_pad_ms {
        o.speech_pad_ms = v;
    }
    o.validate()
        .map_err(|e| anyhow!("{e}: check the --vad-* flags"))?;
    Ok(o)
}
