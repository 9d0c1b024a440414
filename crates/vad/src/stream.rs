//! Silero VAD over audio as it arrives (live transcription): one speech
//! probability per 512-sample chunk, the LSTM state carried from chunk to
//! chunk, each chunk with the previous chunk's last 64 samples as context —
//! the rows [`SileroVad::speech_probs`] computes, without its end-of-input
//! padding quirk (a stream has no end to pad).

use crate::net::{CONTEXT, HIDDEN, ROW};
use crate::{SileroVad, WINDOW_SAMPLES};
use std::sync::Arc;

/// A VAD state over one audio stream.
pub struct VadStream {
    model: Arc<SileroVad>,
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
    /// The current row: context, then the samples of the chunk so far.
    row: [f32; ROW],
    /// Samples of the current chunk received.
    filled: usize,
}

impl VadStream {
    /// A stream starting in silence.
    pub fn new(model: Arc<SileroVad>) -> Self {
        Self {
            model,
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
            row: [0.0; ROW],
            filled: 0,
        }
    }

    /// Feed 16 kHz mono samples; appends the probability of every chunk
    /// they complete to `probs` (one per 512 samples, 32 ms).
    pub fn push(&mut self, samples: &[f32], probs: &mut Vec<f32>) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (WINDOW_SAMPLES - self.filled).min(rest.len());
            self.row[CONTEXT + self.filled..CONTEXT + self.filled + take]
                .copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == WINDOW_SAMPLES {
                probs.push(self.model.row_prob(&self.row, &mut self.h, &mut self.c));
                // The chunk's tail is the next row's context.
                self.row.copy_within(ROW - CONTEXT.., 0);
                self.filled = 0;
            }
        }
    }

    /// Forget the audio so far (state back to silence).
    pub fn reset(&mut self) {
        self.h = [0.0; HIDDEN];
        self.c = [0.0; HIDDEN];
        self.row = [0.0; ROW];
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_the_whole_input_pass() {
        let Some(path) = vkw_testkit::vad_model() else {
            return;
        };
        let model = Arc::new(SileroVad::load(&path).expect("vad"));
        let audio =
            vkw_audio::load_audio(&vkw_testkit::fixtures().join("data/jfk/jfk.wav")).expect("jfk");
        let whole = model.speech_probs(&audio[..]);
        let mut s = VadStream::new(model.clone());
        let mut got = Vec::new();
        // Odd piece sizes: the chunking must not depend on them.
        for piece in audio.chunks(777) {
            s.push(piece, &mut got);
        }
        assert_eq!(got.len(), audio.len() / WINDOW_SAMPLES);
        // Every row but the last (whose tail the batch pass zeroes) is the
        // same computation; allow float reassociation in the GEMMs.
        let n = got.len() - 1;
        let max = got[..n]
            .iter()
            .zip(&whole[..n])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "max |diff| {max}");
    }
}
