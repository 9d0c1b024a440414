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

/// The VAD options the flags describe, as faster-whisper builds them:
/// sequential mode starts from `VadOptions()`; batched mode uses the
/// pipeline's `VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160)`
/// when no `--vad-*` value is given, and otherwise `VadOptions(**given)` with
/// `max_speech_duration_s` forced to the 30 s piece length (spec §8.4, §9.3).
pub fn options(a: &TranscribeArgs, batched: bool) -> Result<VadOptions> {
    let any_given = a.vad_threshold.is_some()
        || a.vad_neg_threshold.is_some()
        || a.vad_min_speech_duration_ms.is_some()
        || a.vad_max_speech_duration_s.is_some()
        || a.vad_min_silence_duration_ms.is_some()
        || a.vad_speech_pad_ms.is_some();
    let mut o = match (batched, any_given) {
        (false, _) => VadOptions::default(),
        (true, false) => VadOptions::batched(CHUNK_LENGTH),
        (true, true) => VadOptions {
            max_speech_duration_s: CHUNK_LENGTH,
            ..VadOptions::default()
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: TranscribeArgs,
    }

    fn opts(flags: &[&str], batched: bool) -> VadOptions {
        let argv = ["vkwhisper"]
            .into_iter()
            .chain(flags.iter().copied())
            .chain(["x.wav"]);
        options(&Cli::parse_from(argv).a, batched).expect("valid options")
    }

    #[test]
    fn flags_map_onto_faster_whisper_vad_options() {
        assert_eq!(opts(&[], false), VadOptions::default());
        let o = opts(
            &[
                "--vad-threshold=0.6",
                "--vad-neg-threshold=0.3",
                "--vad-min-speech-duration-ms=250",
                "--vad-max-speech-duration-s=12.5",
                "--vad-min-silence-duration-ms=500",
                "--vad-speech-pad-ms=30",
            ],
            false,
        );
        assert_eq!(
            o,
            VadOptions {
                threshold: 0.6,
                neg_threshold: Some(0.3),
                min_speech_duration_ms: 250,
                max_speech_duration_s: 12.5,
                min_silence_duration_ms: 500,
                speech_pad_ms: 30,
            }
        );
        assert!(opts(&["--vad-max-speech-duration-s=inf"], false)
            .max_speech_duration_s
            .is_infinite());
    }

    #[test]
    fn batched_mode_follows_the_pipeline() {
        // No values: the pipeline's own defaults.
        assert_eq!(opts(&[], true), VadOptions::batched(30.0));
        // Any value: VadOptions(**given) with max_speech forced to 30 s.
        let o = opts(
            &["--vad-threshold=0.4", "--vad-max-speech-duration-s=5"],
            true,
        );
        assert_eq!(o.threshold, 0.4);
        assert_eq!(o.max_speech_duration_s, 30.0);
        assert_eq!(o.min_silence_duration_ms, 2000);
    }
}
