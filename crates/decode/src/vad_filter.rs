//! Sequential transcription with faster-whisper's `vad_filter=True`
//! (spec §8.6): the speech segments Silero VAD finds are concatenated,
//! the concatenation is transcribed as one input, and every segment (and
//! word) is mapped back to the original timeline before the caller sees it.

use crate::{DecodeError, TranscribeOptions, Transcriber};
use vkw_audio::mel::MelWindows;
use vkw_audio::Samples;
use vkw_backend::Backend;
use vkw_segments::{Segment, TranscriptionInfo};
use vkw_vad::{
    collect_chunks, concatenate_in_place, SileroVad, SpeechChunk, SpeechTimestampsMap, VadOptions,
};

/// Samples per second of the decoder's input.
const RATE: f64 = 16_000.0;

/// The VAD model and options for [`Transcriber::transcribe_samples`].
#[derive(Debug, Clone, Copy)]
pub struct VadFilter<'v> {
    /// The loaded Silero VAD v6 network.
    pub model: &'v SileroVad,
    /// faster-whisper's `vad_parameters`.
    pub options: &'v VadOptions,
}

impl<B: Backend> Transcriber<'_, B> {
    /// Transcribes 16 kHz mono `samples`, with the VAD filter when `vad` is
    /// given, as faster-whisper's `transcribe(vad_filter=…)` does. The filter
    /// applies only with the default `clip_timestamps` ("0"), as in
    /// faster-whisper. The returned info has the original `duration` and the
    /// speech's `duration_after_vad`; segment times are in the original audio.
    pub fn transcribe_samples(
        &self,
        samples: &[f32],
        vad: Option<VadFilter<'_>>,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let duration = samples.len() as f64 / RATE;
        match self.speech_chunks(samples, vad, opts)? {
            None => self.transcribe_concatenated(samples, duration, None, opts, on_segment),
            Some(chunks) => self.transcribe_speech(samples, &chunks, opts, on_segment),
        }
    }

    /// [`Transcriber::transcribe_samples`] on the signed 16-bit samples
    /// (`vkw_audio::load_audio_s16`, the same audio in half the memory),
    /// taken by value: the VAD reads them as `v / 32768` and the speech is
    /// concatenated in place, so a 2-hour input holds 230 MB of samples, once
    /// (an f32 copy would be 460 MB).
    pub fn transcribe_samples_s16(
        &self,
        mut samples: Vec<i16>,
        vad: Option<VadFilter<'_>>,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let duration = samples.len() as f64 / RATE;
        let n_mels = self.backend.hparams().n_mels;
        let chunks = self.speech_chunks(&samples, vad, opts)?;
        if let Some(chunks) = &chunks {
            if !concatenate_in_place(&mut samples, chunks) {
                // Not in order (the VAD's never are): the general path.
                let mut f32s = Vec::with_capacity(samples.len());
                samples.extend_f32(0..samples.len(), &mut f32s);
                drop(samples);
                return self.transcribe_speech(&f32s, chunks, opts, on_segment);
            }
        }
        let mel = MelWindows::from_s16(&samples, n_mels);
        self.transcribe_mel(
            &mel,
            samples.len(),
            duration,
            chunks.as_deref(),
            opts,
            on_segment,
        )
    }

    /// Transcribes the `chunks` of `samples` (speech segments in samples, in
    /// order) concatenated, with times mapped back to `samples` (§8.6).
    pub fn transcribe_speech(
        &self,
        samples: &[f32],
        chunks: &[SpeechChunk],
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let duration = samples.len() as f64 / RATE;
        let speech = collect_chunks(samples, chunks, f64::INFINITY)
            .into_iter()
            .next()
            .map(|c| c.audio)
            .unwrap_or_default();
        self.transcribe_concatenated(&speech, duration, Some(chunks), opts, on_segment)
    }

    /// The speech chunks when the filter applies (§8.6), else `None`.
    fn speech_chunks<S: Samples + ?Sized>(
        &self,
        samples: &S,
        vad: Option<VadFilter<'_>>,
        opts: &TranscribeOptions,
    ) -> Result<Option<Vec<SpeechChunk>>, DecodeError> {
        let Some(vad) = vad.filter(|_| opts.clip_timestamps == [0.0]) else {
            return Ok(None);
        };
        vad.model
            .speech_timestamps(samples, vad.options)
            .map(Some)
            .map_err(|e| DecodeError::InvalidOption(e.to_string()))
    }

    /// Transcribes `speech` (the input, or the concatenation of its `chunks`
    /// when given) and maps times back to the input of `duration` seconds.
    fn transcribe_concatenated(
        &self,
        speech: &[f32],
        duration: f64,
        chunks: Option<&[SpeechChunk]>,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        // The log-mel of what is transcribed (FW computes its features after
        // the cut), one window at a time.
        let mel = MelWindows::new(speech, self.backend.hparams().n_mels);
        self.transcribe_mel(&mel, speech.len(), duration, chunks, opts, on_segment)
    }

    /// Transcribes the log-mel of `speech_len` samples of speech (the input,
    /// or the concatenation of its `chunks` when given) and maps times back
    /// to the input of `duration` seconds.
    fn transcribe_mel(
        &self,
        mel: &MelWindows<'_>,
        speech_len: usize,
        duration: f64,
        chunks: Option<&[SpeechChunk]>,
        opts: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<TranscriptionInfo, DecodeError> {
        let Some(chunks) = chunks else {
            return self.transcribe_features(mel, duration, opts, on_segment);
        };
        let duration_after_vad = speech_len as f64 / RATE;
        let map = SpeechTimestampsMap::new(chunks);
        // FW restores times only when there were speech chunks.
        let restore = !chunks.is_empty();
        let mut mapped = |seg: &Segment| {
            if restore {
                let mut s = seg.clone();
                map.restore_segment(&mut s);
                on_segment(&s);
            } else {
                on_segment(seg);
            }
        };
        let mut info = self.transcribe_features(mel, duration, opts, &mut mapped)?;
        info.duration = duration;
        info.duration_after_vad = duration_after_vad;
        Ok(info)
    }
}
