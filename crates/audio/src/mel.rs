//! Whisper's log-mel front end, as faster-whisper's `FeatureExtractor` computes it (spec §4.2),
//! and the per-window slicing of §4.3.
//!
//! Numerics: framing, FFT, power and mel projection run in `f64` (the spec's reference
//! implementation is float64 and lands within 6.4e-6 of faster-whisper's float32 pipeline);
//! the log values are stored as `f32`, and the clamp and scale steps run in `f32` like
//! faster-whisper's NumPy code does.

use std::sync::Arc;

use crate::{Pcm, Samples};

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};

/// FFT size (spec §4.2: `n_fft = 400`, 25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// Hop between frames (spec §4.2: 160 samples = 10 ms).
pub const HOP_LENGTH: usize = 160;
/// Number of rfft bins, `n_fft / 2 + 1`.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// faster-whisper appends this many zero samples before the STFT (spec §4.2 step 1, §10).
pub const TAIL_PADDING: usize = 160;
/// Frames in one 30 s encoder window (spec §4.2 `nb_max_frames`, §4.3).
pub const N_FRAMES: usize = 3000;

/// Frames computed per rayon task: big enough to amortise the per-task FFT scratch set-up.
const FRAMES_PER_TASK: usize = 256;

/// Slaney mel scale (spec §4.2): linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    if f < MIN_LOG_HZ {
        f / F_SP
    } else {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / log_step()
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m < MIN_LOG_MEL {
        F_SP * m
    } else {
        MIN_LOG_HZ * (log_step() * (m - MIN_LOG_MEL)).exp()
    }
}

/// Slaney mel filterbank [n_mels, 201] row-major, computed in f64, stored f32 (spec §4.2).
///
/// Identical to `librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)` (Slaney scale,
/// Slaney area normalisation), which is what faster-whisper builds and OpenAI ships.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let sr = f64::from(crate::SAMPLE_RATE);
    let mel_max = hz_to_mel(sr / 2.0);
    // n_mels + 2 points equally spaced in mel, the way numpy.linspace places them
    // (i * step, the last point pinned to the end), then converted back to Hz.
    let n_points = n_mels + 2;
    let step = mel_max / (n_points - 1) as f64;
    let hz: Vec<f64> = (0..n_points)
        .map(|i| {
            let m = if i + 1 == n_points {
                mel_max
            } else {
                i as f64 * step
            };
            mel_to_hz(m)
        })
        .collect();

    let mut out = vec![0f32; n_mels * N_BINS];
    for (i, row) in out.chunks_exact_mut(N_BINS).enumerate() {
        let lower_width = hz[i + 1] - hz[i];
        let upper_width = hz[i + 2] - hz[i + 1];
        let enorm = 2.0 / (hz[i + 2] - hz[i]);
        for (k, w) in row.iter_mut().enumerate() {
            // Bin frequencies are exactly 40·k Hz (sr / n_fft).
            let f = k as f64 * sr / N_FFT as f64;
            let rising = (f - hz[i]) / lower_width;
            let falling = (hz[i + 2] - f) / upper_width;
            *w = (rising.min(falling).max(0.0) * enorm) as f32;
        }
    }
    out
}

/// One mel row in sparse form: the filter is non-zero only on a short run of bins.
struct SparseRow {
    start: usize,
    weights: Vec<f64>,
}

fn sparse_filters(n_mels: usize) -> Vec<SparseRow> {
    mel_filters(n_mels)
        .chunks_exact(N_BINS)
        .map(|row| {
            let first = row.iter().position(|&w| w != 0.0);
            let last = row.iter().rposition(|&w| w != 0.0);
            match (first, last) {
                (Some(a), Some(b)) => SparseRow {
                    start: a,
                    weights: row[a..=b].iter().map(|&w| f64::from(w)).collect(),
                },
                // Possible only for absurd n_mels (empty triangles); such a row is all zero.
                _ => SparseRow {
                    start: 0,
                    weights: Vec::new(),
                },
            }
        })
        .collect()
}

/// Periodic Hann window of length 400 (spec §4.2 step 4), in f32 as faster-whisper keeps it.
fn hann_window() -> Vec<f64> {
    (0..N_FFT)
        .map(|n| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos();
            f64::from(w as f32)
        })
        .collect()
}

/// Index into the reflect-padded signal (spec §4.2 step 2): `x[-i] = x[i]`, `x[m-1+i] = x[m-1-i]`,
/// repeating the reflection (like `numpy.pad(mode="reflect")`) when the pad exceeds the signal.
fn reflect_index(i: isize, m: usize) -> usize {
    if m <= 1 {
        return 0;
    }
    let period = 2 * (m as isize - 1);
    let r = i.rem_euclid(period);
    if r < m as isize {
        r as usize
    } else {
        (period - r) as usize
    }
}

/// Log-mel spectrogram of a whole input, [n_mels, n_frames] row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    /// Number of mel bands (80 or 128).
    pub n_mels: usize,
    /// Number of frames, `samples / 160 + 1` (spec §4.2 step 6).
    pub n_frames: usize,
    /// Normalised log-mel values, mel-major: `data[m * n_frames + t]`.
    pub data: Vec<f32>,
}

/// Per-task working buffers for the STFT.
struct Scratch {
    frame: Vec<f64>,
    spectrum: Vec<realfft::num_complex::Complex<f64>>,
    fft_scratch: Vec<realfft::num_complex::Complex<f64>>,
    power: Vec<f64>,
}

/// Steps 1–8 of spec §4.2 for any range of frames: the log10 mel values of a
/// frame depend only on the 400 samples under it, so a window's frames
/// computed on their own equal the same frames of the whole-input pass
/// (bit for bit: same code, same order of operations).
struct Stft<'a> {
    samples: Pcm<'a>,
    /// Length of the signal with the 160 tail zeros (step 1).
    padded_len: usize,
    n_mels: usize,
    window: Vec<f64>,
    filters: Vec<SparseRow>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl<'a> Stft<'a> {
    fn new(samples: Pcm<'a>, n_mels: usize) -> Self {
        Self {
            padded_len: samples.len() + TAIL_PADDING,
            samples,
            n_mels,
            window: hann_window(),
            filters: sparse_filters(n_mels),
            fft: RealFftPlanner::new().plan_fft_forward(N_FFT),
        }
    }

    /// Frames after step 6: `(samples + 160) / 160`.
    fn n_frames(&self) -> usize {
        self.padded_len / HOP_LENGTH
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            fft_scratch: self.fft.make_scratch_vec(),
            power: vec![0.0; N_BINS],
        }
    }

    /// log10 mel values of frames `first ..`, frame-major, filling `out`
    /// (`frames · n_mels` values), in parallel blocks.
    fn log_frames(&self, first: usize, out: &mut [f32]) {
        let n_mels = self.n_mels;
        if n_mels == 0 {
            return;
        }
        out.par_chunks_mut(FRAMES_PER_TASK * n_mels)
            .enumerate()
            .for_each_init(
                || self.scratch(),
                |s, (block, out)| {
                    for (j, out_frame) in out.chunks_exact_mut(n_mels).enumerate() {
                        self.log_frame(s, first + block * FRAMES_PER_TASK + j, out_frame);
                    }
                },
            );
    }

    /// The largest log10 mel value of the whole input (step 9's reference),
    /// streamed block by block without keeping the spectrogram.
    fn global_max(&self) -> f32 {
        let n_mels = self.n_mels;
        let n_frames = self.n_frames();
        if n_mels == 0 {
            return f32::NEG_INFINITY;
        }
        let blocks = n_frames.div_ceil(FRAMES_PER_TASK);
        (0..blocks)
            .into_par_iter()
            .map_init(
                || (self.scratch(), vec![0f32; n_mels]),
                |(s, col), block| {
                    let first = block * FRAMES_PER_TASK;
                    let last = (first + FRAMES_PER_TASK).min(n_frames);
                    let mut max = f32::NEG_INFINITY;
                    for t in first..last {
                        self.log_frame(s, t, col);
                        max = col.iter().copied().fold(max, f32::max);
                    }
                    max
                },
            )
            .reduce(|| f32::NEG_INFINITY, f32::max)
    }

    /// Steps 2–8 for frame `t`.
    fn log_frame(&self, s: &mut Scratch, t: usize, out_frame: &mut [f32]) {
        let m = self.padded_len;
        let samples = self.samples.view();
        let signal = |j: usize| -> f64 { f64::from(samples.at(j)) };
        let half = (N_FFT / 2) as isize;
        // Frame t covers padded samples [160t, 160t + 400), i.e. original
        // positions 160t - 200 .. 160t + 200 (step 2's reflect padding).
        let origin = (t * HOP_LENGTH) as isize - half;
        for (n, (x, w)) in s.frame.iter_mut().zip(&self.window).enumerate() {
            let pos = origin + n as isize;
            let idx = if pos >= 0 && (pos as usize) < m {
                pos as usize
            } else {
                reflect_index(pos, m)
            };
            *x = signal(idx) * w;
        }
        // Step 5; lengths come from the same plan, so this cannot fail.
        if self
            .fft
            .process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft_scratch)
            .is_err()
        {
            unreachable!("FFT buffers are sized by the plan");
        }
        for (p, c) in s.power.iter_mut().zip(&s.spectrum) {
            *p = c.norm_sqr();
        }
        // Steps 7 and 8.
        for (o, row) in out_frame.iter_mut().zip(&self.filters) {
            let bins = &s.power[row.start..row.start + row.weights.len()];
            let mel: f64 = bins.iter().zip(&row.weights).map(|(p, w)| p * w).sum();
            *o = mel.max(1e-10).log10() as f32;
        }
    }
}

/// Steps 9 and 10 on one log10 value.
fn normalise(l: f32, floor: f32) -> f32 {
    (l.max(floor) + 4.0) / 4.0
}

impl LogMel {
    /// faster-whisper FeatureExtractor: 160 zero tail samples, reflect centre padding, periodic
    /// Hann 400, rfft, |X|^2, drop last frame, mel, log10(max(.,1e-10)), clamp to global max-8,
    /// (x+4)/4.
    pub fn compute(samples: &[f32], n_mels: usize) -> LogMel {
        let stft = Stft::new(Pcm::from(samples), n_mels);
        let n_frames = stft.n_frames();
        // Frame-major log10 values, computed in parallel blocks of frames.
        let mut frame_major = vec![0f32; n_frames * n_mels];
        stft.log_frames(0, &mut frame_major);

        // Step 9: clamp against the maximum of the whole input (not per window, §10).
        let global_max = frame_major
            .par_iter()
            .copied()
            .reduce(|| f32::NEG_INFINITY, f32::max);
        let floor = global_max - 8.0;

        // Transpose to mel-major while applying steps 9 and 10.
        let mut data = vec![0f32; n_mels * n_frames];
        if n_frames > 0 {
            data.par_chunks_mut(n_frames)
                .enumerate()
                .for_each(|(mel, row)| {
                    for (t, v) in row.iter_mut().enumerate() {
                        *v = normalise(frame_major[t * n_mels + mel], floor);
                    }
                });
        }
        LogMel {
            n_mels,
            n_frames,
            data,
        }
    }

    /// content_frames = n_frames - 1 (spec §6.10).
    pub fn content_frames(&self) -> usize {
        self.n_frames.saturating_sub(1)
    }

    /// features[:, seek .. seek+len] zero-padded (0.0 in the normalised domain) or truncated to
    /// `frames` columns; returns [n_mels, frames] row-major.
    ///
    /// Out-of-range `seek`/`len` behave like NumPy slicing (clamped), so a window past the end
    /// is all zeros (spec §4.3 `pad_or_trim`).
    pub fn window(&self, seek: usize, len: usize, frames: usize) -> Vec<f32> {
        window_of(&self.data, self.n_mels, self.n_frames, seek, len, frames)
    }
}

/// [`LogMel::window`] over any mel-major `[n_mels, n_frames]` slice.
fn window_of(
    data: &[f32],
    n_mels: usize,
    n_frames: usize,
    seek: usize,
    len: usize,
    frames: usize,
) -> Vec<f32> {
    let end = seek.saturating_add(len).min(n_frames);
    let take = end.saturating_sub(seek).min(frames);
    let mut out = vec![0f32; n_mels * frames];
    if take > 0 {
        for (dst, src) in out
            .chunks_exact_mut(frames)
            .zip(data.chunks_exact(n_frames))
        {
            dst[..take].copy_from_slice(&src[seek..seek + take]);
        }
    }
    out
}

/// Where the decoding loop gets its windows from: the whole-input
/// spectrogram ([`LogMel`], [`MelSlice`]) or windows computed on demand
/// ([`MelWindows`], bounded memory for long inputs).
pub trait Features: Sync {
    /// Mel bands.
    fn n_mels(&self) -> usize;
    /// Frames of the whole input, `samples / 160 + 1` (spec §4.2 step 6).
    fn n_frames(&self) -> usize;
    /// `features[:, seek .. seek+len]` padded or truncated to `frames` columns,
    /// `[n_mels, frames]` row-major (spec §4.3), as [`LogMel::window`].
    fn window(&self, seek: usize, len: usize, frames: usize) -> Vec<f32>;
}

impl Features for LogMel {
    fn n_mels(&self) -> usize {
        self.n_mels
    }
    fn n_frames(&self) -> usize {
        self.n_frames
    }
    fn window(&self, seek: usize, len: usize, frames: usize) -> Vec<f32> {
        LogMel::window(self, seek, len, frames)
    }
}

/// A borrowed mel-major `[n_mels, n_frames]` spectrogram.
#[derive(Debug, Clone, Copy)]
pub struct MelSlice<'a> {
    /// `data[m * n_frames + t]`.
    pub data: &'a [f32],
    /// Mel bands.
    pub n_mels: usize,
    /// Frames.
    pub n_frames: usize,
}

impl Features for MelSlice<'_> {
    fn n_mels(&self) -> usize {
        self.n_mels
    }
    fn n_frames(&self) -> usize {
        self.n_frames
    }
    fn window(&self, seek: usize, len: usize, frames: usize) -> Vec<f32> {
        window_of(self.data, self.n_mels, self.n_frames, seek, len, frames)
    }
}

/// The log-mel of a whole input computed one window at a time: equal to
/// [`LogMel::compute`]'s values, without keeping the spectrogram (a 2-hour
/// input's would be 230 MB). Construction streams once over the input for the
/// global maximum (step 9 needs it before the first window); each
/// [`Features::window`] then recomputes only that window's frames.
pub struct MelWindows<'a> {
    stft: Stft<'a>,
    floor: f32,
}

impl<'a> MelWindows<'a> {
    /// Prepare windows of `samples` (16 kHz mono) with `n_mels` bands.
    pub fn new(samples: &'a [f32], n_mels: usize) -> Self {
        Self::from_pcm(Pcm::from(samples), n_mels)
    }

    /// The same from signed 16-bit samples ([`crate::load_audio_s16`]),
    /// which stand for `x / 32768`: identical windows, half the PCM memory.
    pub fn from_s16(samples: &'a [i16], n_mels: usize) -> Self {
        Self::from_pcm(Pcm::from(samples), n_mels)
    }

    /// Windows of `samples`, owned or borrowed (an owned input lives as
    /// long as the windows, e.g. inside a transcription that outlives its
    /// caller's frame).
    pub fn from_pcm(samples: Pcm<'a>, n_mels: usize) -> Self {
        let stft = Stft::new(samples, n_mels);
        let floor = stft.global_max() - 8.0;
        Self { stft, floor }
    }

    /// The samples the windows are computed from.
    pub fn samples(&self) -> &Pcm<'a> {
        &self.stft.samples
    }
}

impl Features for MelWindows<'_> {
    fn n_mels(&self) -> usize {
        self.stft.n_mels
    }
    fn n_frames(&self) -> usize {
        self.stft.n_frames()
    }
    fn window(&self, seek: usize, len: usize, frames: usize) -> Vec<f32> {
        let n_mels = self.stft.n_mels;
        let end = seek.saturating_add(len).min(self.stft.n_frames());
        let take = end.saturating_sub(seek).min(frames);
        let mut out = vec![0f32; n_mels * frames];
        if take > 0 {
            let mut frame_major = vec![0f32; take * n_mels];
            self.stft.log_frames(seek, &mut frame_major);
            for (m, dst) in out.chunks_exact_mut(frames).enumerate() {
                for (t, v) in dst[..take].iter_mut().enumerate() {
                    *v = normalise(frame_major[t * n_mels + m], self.floor);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // numpy.pad([0,1,2,3], 5, mode="reflect") -> [1,2,3,2,1, 0,1,2,3, 2,1,0,1,2]
        let m = 4;
        let left: Vec<usize> = (-5..0).map(|i| reflect_index(i, m)).collect();
        let right: Vec<usize> = (4..9).map(|i| reflect_index(i, m)).collect();
        assert_eq!(left, vec![1, 2, 3, 2, 1]);
        assert_eq!(right, vec![2, 1, 0, 1, 2]);
        assert_eq!(reflect_index(-3, 1), 0);
    }

    #[test]
    fn filter_shape_and_area() {
        for n_mels in [80, 128] {
            let f = mel_filters(n_mels);
            assert_eq!(f.len(), n_mels * N_BINS);
            assert!(f.iter().all(|&w| w >= 0.0));
            // Every triangle is non-empty and starts no earlier than the previous one.
            let rows = sparse_filters(n_mels);
            assert!(rows.iter().all(|r| !r.weights.is_empty()));
            assert!(rows.windows(2).all(|p| p[0].start <= p[1].start));
        }
        // Slaney constants of spec §4.2.
        assert!((hz_to_mel(8000.0) - 45.245640471924965).abs() < 1e-12);
        assert!((mel_to_hz(hz_to_mel(3000.0)) - 3000.0).abs() < 1e-9);
    }

    #[test]
    fn frame_count_and_silence() {
        for n in [0usize, 1, 40, 159, 160, 161, 16000] {
            let lm = LogMel::compute(&vec![0.0; n], 80);
            assert_eq!(lm.n_frames, n / 160 + 1, "n = {n}");
            assert_eq!(lm.content_frames(), n / 160);
            // All-zero input: log10(1e-10) = -10 everywhere, (−10 + 4) / 4 = −1.5.
            assert!(lm.data.iter().all(|&v| v == -1.5));
        }
    }

    #[test]
    fn window_pads_and_truncates() {
        let lm = LogMel {
            n_mels: 2,
            n_frames: 3,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(
            lm.window(1, 5, 4),
            vec![2.0, 3.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0]
        );
        assert_eq!(lm.window(0, 3, 2), vec![1.0, 2.0, 4.0, 5.0]);
        assert_eq!(lm.window(0, 1, 2), vec![1.0, 0.0, 4.0, 0.0]);
        assert_eq!(lm.window(7, 3, 2), vec![0.0; 4]);
    }

    #[test]
    fn windows_on_demand_equal_the_whole_input_spectrogram() {
        // A chirp with a loud burst near the end: the global maximum (step 9)
        // lies outside most windows, so a per-window maximum would differ.
        let n = 16000 * 75 + 123;
        let samples: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / 16000.0;
                let amp = if (70.0..70.5).contains(&t) { 0.9 } else { 0.01 };
                amp * (2.0 * std::f32::consts::PI * (200.0 + 20.0 * t) * t).sin()
            })
            .collect();
        let whole = LogMel::compute(&samples, 80);
        let lazy = MelWindows::new(&samples, 80);
        // 16-bit input: the quantised chirp as int16 and as f32 give the same windows.
        let q: Vec<i16> = samples
            .iter()
            .map(|&x| (x * 32768.0).round() as i16)
            .collect();
        let qf: Vec<f32> = q.iter().map(|&x| f32::from(x) / 32768.0).collect();
        let q_whole = LogMel::compute(&qf, 80);
        let q_lazy = MelWindows::from_s16(&q, 80);
        assert_eq!(Features::n_frames(&lazy), whole.n_frames);
        let slice = MelSlice {
            data: &whole.data,
            n_mels: 80,
            n_frames: whole.n_frames,
        };
        for (seek, len) in [
            (0, 3000),
            (1234, 3000),
            (6000, 1500),
            (7400, 3000),
            (9000, 10),
        ] {
            let want = whole.window(seek, len, N_FRAMES);
            assert_eq!(lazy.window(seek, len, N_FRAMES), want, "seek {seek}");
            assert_eq!(Features::window(&slice, seek, len, N_FRAMES), want);
            let q_want = q_whole.window(seek, len, N_FRAMES);
            assert_eq!(
                q_lazy.window(seek, len, N_FRAMES),
                q_want,
                "s16 seek {seek}"
            );
        }
    }

    #[test]
    fn sine_peaks_in_the_right_band() {
        // A 1 kHz tone: the loudest mel band must be the one whose centre is nearest 1 kHz.
        let samples: Vec<f32> = (0..16000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin() * 0.5)
            .collect();
        let lm = LogMel::compute(&samples, 80);
        let t = 50;
        let col: Vec<f32> = (0..80).map(|m| lm.data[m * lm.n_frames + t]).collect();
        let best = col
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let mel_1k = hz_to_mel(1000.0) / hz_to_mel(8000.0) * 81.0;
        let expected = mel_1k.round() as usize - 1;
        assert!(
            best.is_some_and(|b| b.abs_diff(expected) <= 1),
            "{best:?} vs {expected}"
        );
    }
}
