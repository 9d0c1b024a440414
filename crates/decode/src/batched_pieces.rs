//! What a batched run decodes (spec §9.3): the VAD's speech packed into
//! pieces of at most 30 s, or the caller's clips, each piece's log-mel
//! computed on its own; then [`Transcriber::transcribe_batched`].

use super::{BatchChunk, ChunkFeatures};
use crate::{DecodeError, TranscribeOptions, Transcriber};
use vkw_backend::Backend;
use vkw_segments::{Segment, TranscriptionInfo};

/// Samples per second of the decoder's input.
const RATE: f64 = 16_000.0;

/// FW's `chunk_length`: pieces of at most 30 s.
const CHUNK_SECONDS: f64 = 30.0;

impl<B: Backend> Transcriber<'_, B> {
    /// faster-whisper's `BatchedInferencePipeline.transcribe` on 16 kHz mono
    /// `samples` (f32, or i16 for half the memory; spec §9.3): Silero VAD
    /// speech segments (with `vad.options`, whose `max_speech_duration_s` is
    /// forced to 30 s as FW does), packed
    /// into pieces of at most 30 s by `collect_chunks`, each piece's log-mel
    /// computed on its own with the last frame dropped, decoded `batch_size`
    /// windows at a time. Segment times are mapped back to `samples`.
    ///
    /// Memory: a piece's audio and features exist only while its batch is
    /// encoded; nothing proportional to the input is held besides `samples`.
    pub fn transcribe_batched_samples<S: vkw_audio::Samples + ?Sized>(
        &self,
        samples: &S,
        vad: crate::VadFilter<'_>,
        batch_size: usize,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let duration = samples.len() as f64 / RATE;
        let mut vad_opts = vad.options.clone();
        vad_opts.max_speech_duration_s = CHUNK_SECONDS;
        let speech = vad
            .model
            .speech_timestamps(samples, &vad_opts)
            .map_err(|e| DecodeError::InvalidOption(e.to_string()))?;
        let duration_after_vad = speech.iter().map(|c| c.len()).sum::<usize>() as f64 / RATE;
        // The packing only (no audio): pieces are cut from `samples` lazily.
        let pieces = vkw_vad::collect_chunks(&[], &speech, CHUNK_SECONDS);
        let ranges = piece_ranges(&speech, &pieces);
        let chunks: Vec<BatchChunk> = pieces
            .iter()
            .map(|p| BatchChunk {
                offset: p.offset,
                duration: p.duration,
            })
            .collect();
        let n_mels = self.backend.hparams().n_mels;
        let mut features = |i: usize| -> Result<ChunkFeatures, DecodeError> {
            let mut audio = Vec::new();
            for c in &speech[ranges[i].clone()] {
                samples.extend_f32(c.start..c.end, &mut audio);
            }
            Ok(chunk_features(&audio, n_mels))
        };
        let map = vkw_vad::SpeechTimestampsMap::new(&speech);
        let mut mapped = |seg: &Segment| {
            let mut s = seg.clone();
            map.restore_segment(&mut s);
            on_segment(&s);
        };
        self.transcribe_batched(
            &chunks,
            &mut features,
            batch_size,
            duration,
            duration_after_vad,
            opts,
            &mut mapped,
        )
    }

    /// faster-whisper's `BatchedInferencePipeline.transcribe` with
    /// `clip_timestamps` (spec §9.3): the clips of `opts.clip_timestamps`
    /// (seconds `start,end,…`; a missing last end = the end of the audio)
    /// take the VAD's place. Each clip is one piece of its own, its segments
    /// timed from the clip's start in `samples` (no timestamp map). A clip
    /// longer than 30 s is decoded as consecutive 30 s pieces, where
    /// faster-whisper would transcribe only its first 30 s.
    pub fn transcribe_batched_clips<S: vkw_audio::Samples + ?Sized>(
        &self,
        samples: &S,
        batch_size: usize,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let duration = samples.len() as f64 / RATE;
        let clips = clip_samples(&opts.clip_timestamps, samples.len())?;
        let duration_after_vad = clips.iter().map(|c| c.len()).sum::<usize>() as f64 / RATE;
        let pieces: Vec<std::ops::Range<usize>> = clips
            .iter()
            .flat_map(|c| {
                let step = (CHUNK_SECONDS * RATE) as usize;
                (c.start..c.end)
                    .step_by(step)
                    .map(move |a| a..(a + step).min(c.end))
            })
            .collect();
        let chunks: Vec<BatchChunk> = pieces
            .iter()
            .map(|r| BatchChunk {
                offset: r.start as f64 / RATE,
                duration: r.len() as f64 / RATE,
            })
            .collect();
        let n_mels = self.backend.hparams().n_mels;
        let mut features = |i: usize| -> Result<ChunkFeatures, DecodeError> {
            let mut audio = Vec::with_capacity(pieces[i].len());
            samples.extend_f32(pieces[i].clone(), &mut audio);
            Ok(chunk_features(&audio, n_mels))
        };
        self.transcribe_batched(
            &chunks,
            &mut features,
            batch_size,
            duration,
            duration_after_vad,
            opts,
            on_segment,
        )
    }
}

/// `clip_timestamps` seconds → sample ranges of an input of `n` samples, as
/// FW's batched pipeline converts them (`int(seconds · 16000)`), paired up
/// (an odd last start runs to the end), clamped to the input; empty clips
/// are dropped. Clips must be in order and must not overlap.
pub(super) fn clip_samples(
    seconds: &[f64],
    n: usize,
) -> Result<Vec<vkw_vad::SpeechChunk>, DecodeError> {
    let points = seconds
        .iter()
        .map(|&s| ((s * RATE) as usize).min(n))
        .collect();
    let pairs = crate::options::clip_pairs(points, n);
    let mut out: Vec<vkw_vad::SpeechChunk> = Vec::with_capacity(pairs.len());
    for (i, (start, end)) in pairs.into_iter().enumerate() {
        if end < start {
            return Err(DecodeError::InvalidOption(format!(
                "clip_timestamps: clip {} ends ({} s) before it starts ({} s)",
                i + 1,
                seconds.get(2 * i + 1).copied().unwrap_or(n as f64 / RATE),
                seconds[2 * i]
            )));
        }
        if out.last().is_some_and(|prev| start < prev.end) {
            return Err(DecodeError::InvalidOption(format!(
                "clip_timestamps: clip {} starts before the previous one ends; \
                 with --batch-size, clips must be in order and must not overlap",
                i + 1
            )));
        }
        if end > start {
            out.push(vkw_vad::SpeechChunk { start, end });
        }
    }
    Ok(out)
}

/// FW `feature_extractor(chunk)[..., :-1]`: the piece's own log-mel
/// (normalised against the piece's maximum), last frame dropped.
pub(crate) fn chunk_features(audio: &[f32], n_mels: usize) -> ChunkFeatures {
    let mel = vkw_audio::mel::LogMel::compute(audio, n_mels);
    let frames = mel.n_frames.saturating_sub(1);
    (mel.window(0, frames, frames), frames)
}

/// Which speech segments make up each packed piece: `collect_chunks` never
/// splits a segment, so piece `p` holds the segments whose start in the
/// concatenated speech lies in `[offset_p, offset_p + duration_p)`.
pub(super) fn piece_ranges(
    speech: &[vkw_vad::SpeechChunk],
    pieces: &[vkw_vad::CollectedChunk],
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut next = 0;
    let mut cum = 0usize;
    for p in pieces {
        let end = ((p.offset + p.duration) * RATE).round() as usize;
        let first = next;
        while next < speech.len() && cum < end {
            cum += speech[next].len();
            next += 1;
        }
        out.push(first..next);
    }
    out
}
