//! The `--vad-*` flags as faster-whisper's `VadOptions` (spec §8.4). Which
//! options a mode uses by default (the batched pipeline's own) is the
//! library's business: the flags only say what the user gave.

use crate::args::TranscribeArgs;
use anyhow::{anyhow, Result};
use vkwhisper::VadOptions;

/// The VAD options the flags describe: sequential mode without
/// `--vad-filter` has none; with it, `VadOptions()` with the values given.
/// Batched mode always runs the VAD: `None` (the pipeline's defaults) when no
/// `--vad-*` value is given, else `VadOptions(**given)` (the library forces
/// the 30 s pieces, as faster-whisper does).
pub fn options(a: &TranscribeArgs) -> Result<Option<VadOptions>> {
    let any_given = a.vad_threshold.is_some()
        || a.vad_neg_threshold.is_some()
        || a.vad_min_speech_duration_ms.is_some()
        || a.vad_max_speech_duration_s.is_some()
        || a.vad_min_silence_duration_ms.is_some()
        || a.vad_speech_pad_ms.is_some();
    let wanted = if a.batch_size > 0 {
        any_given
    } else {
        a.vad_filter
    };
    if !wanted {
        return Ok(None);
    }
    let mut o = VadOptions::default();
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
        o.max_speech_duration_s = v;
    }
    if let Some(v) = a.vad_min_silence_duration_ms {
        o.min_silence_duration_ms = v;
    }
    if let Some(v) = a.vad_speech_pad_ms {
        o.speech_pad_ms = v;
    }
    o.validate()
        .map_err(|e| anyhow!("{e}: check the --vad-* flags"))?;
    Ok(Some(o))
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

    fn opts(flags: &[&str]) -> Option<VadOptions> {
        let argv = ["vkwhisper"]
            .into_iter()
            .chain(flags.iter().copied())
            .chain(["x.wav"]);
        options(&Cli::parse_from(argv).a).expect("valid options")
    }

    #[test]
    fn flags_map_onto_faster_whisper_vad_options() {
        assert_eq!(opts(&[]), None);
        assert_eq!(opts(&["--vad-filter"]), Some(VadOptions::default()));
        let o = opts(&[
            "--vad-filter",
            "--vad-threshold=0.6",
            "--vad-neg-threshold=0.3",
            "--vad-min-speech-duration-ms=250",
            "--vad-max-speech-duration-s=12.5",
            "--vad-min-silence-duration-ms=500",
            "--vad-speech-pad-ms=30",
        ]);
        assert_eq!(
            o,
            Some(VadOptions {
                threshold: 0.6,
                neg_threshold: Some(0.3),
                min_speech_duration_ms: 250,
                max_speech_duration_s: 12.5,
                min_silence_duration_ms: 500,
                speech_pad_ms: 30,
            })
        );
        assert!(opts(&["--vad-filter", "--vad-max-speech-duration-s=inf"])
            .unwrap()
            .max_speech_duration_s
            .is_infinite());
    }

    #[test]
    fn batched_mode_follows_the_pipeline() {
        // No values: the library applies the pipeline's own defaults.
        assert_eq!(opts(&["--batch-size=8"]), None);
        // Any value: VadOptions(**given); the library forces the 30 s pieces.
        let o = opts(&[
            "--batch-size=8",
            "--vad-threshold=0.4",
            "--vad-max-speech-duration-s=5",
        ])
        .unwrap();
        assert_eq!(o.threshold, 0.4);
        assert_eq!(o.min_silence_duration_ms, 2000);
    }
}
