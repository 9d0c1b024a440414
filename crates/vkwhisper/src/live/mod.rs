//! Live transcription: audio pushed as it arrives, text committed as soon as
//! it is stable, never retracted.
//!
//! A [`Stream`] runs Silero VAD on every 32 ms chunk; silence is never
//! decoded. While someone speaks, each [`Stream::poll`] that finds at least
//! `min_chunk_s` of new audio re-decodes the growing utterance — all the
//! audio that has arrived, so a slow pass never queues behind itself — with
//! word timestamps and the recently committed text as the prompt, and a
//! [`CommitPolicy`] decides which new words are final. When the speaker
//! pauses, one last full-context decode finishes the utterance. The buffer
//! never exceeds `max_buffer_s` (cut at the last committed word; a commit is
//! forced when nothing was committed for `force_commit_s`).

mod clock;
mod policy;

pub use clock::{run_virtual, CommitTally, ComputeClock};
pub use policy::CommitPolicy;

use crate::{CancelToken, DecodeOptions, Engine, Error, Result, Segment, TranscribeOptions};
use policy::{overlap, resume_at};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use vkw_audio::Pcm;
use vkw_vad::{SileroVad, VadOptions, VadStream};

const RATE: f64 = 16_000.0;
/// Samples per VAD chunk.
const CHUNK: usize = 512;

/// How a live stream decodes and commits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Decoding options (language, task, beam size, …). Word timestamps are
    /// always on; only the first temperature is used (no fallback: a pass
    /// is redone a second later anyway).
    pub decoding: DecodeOptions,
    /// The beam of an utterance's final pass, at least the passes' own
    /// (`None`: the passes' own). That pass commits everything it says at
    /// once, so by default it is decoded like the offline transcript (beam
    /// 5) rather than like the tentative passes (beam 2): on the long-form
    /// set that kept the committed text within 1.5 WER points of offline in
    /// 6 runs of 6, against 2 of 3 with beam 2; docs/LIVE.md.
    pub final_beam_size: Option<usize>,
    /// When words become final.
    pub policy: CommitPolicy,
    /// Re-decode when at least this much new audio arrived, seconds.
    pub min_chunk_s: f64,
    /// The VAD: `threshold`, `neg_threshold`; `min_silence_duration_ms` is
    /// the pause that ends an utterance and `speech_pad_ms` the audio kept
    /// before speech starts (OpenAI's server-VAD defaults: 0.5, 500 ms,
    /// 300 ms).
    pub vad: VadOptions,
    /// The utterance buffer never grows past this, seconds.
    pub max_buffer_s: f64,
    /// Commit whatever the last pass said when nothing was committed for
    /// this long, seconds.
    pub force_commit_s: f64,
    /// Cut the buffer at the last committed word once it is this long.
    pub trim_s: f64,
    /// Stops decoding from another thread.
    pub cancel: Option<CancelToken>,
    /// The clock decoding time is measured with (for `emitted_at`).
    pub clock: ComputeClock,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            // Beam 2: on the long-form set it settles words as early as
            // greedy decoding and within half a point of the offline WER
            // (greedy: +1.6 points, beam 3: slower passes); docs/LIVE.md.
            decoding: DecodeOptions {
                beam_size: 2,
                temperatures: vec![0.0],
                ..DecodeOptions::default()
            },
            final_beam_size: Some(5),
            policy: CommitPolicy::default(),
            min_chunk_s: 1.0,
            vad: VadOptions {
                threshold: 0.5,
                min_silence_duration_ms: 500,
                speech_pad_ms: 300,
                ..VadOptions::default()
            },
            max_buffer_s: 30.0,
            force_commit_s: 25.0,
            trim_s: 15.0,
            cancel: None,
            clock: ComputeClock::Wall,
        }
    }
}

impl StreamOptions {
    /// With this commit policy.
    pub fn with_policy(mut self, policy: CommitPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// With these decoding options (word timestamps are turned on).
    pub fn with_decoding(mut self, decoding: DecodeOptions) -> Self {
        self.decoding = decoding;
        self
    }
}

/// A word of a live transcript, times in seconds since the stream began.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveWord {
    /// The word, with its leading space.
    pub text: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// What a live stream reports. `emitted_at` is the stream clock (seconds of
/// audio received) when the event was produced, decoding time included.
/// `utterance` numbers the utterances from 0: a closed utterance's final
/// pass may run while the next one has begun, so events say which they are
/// about.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// The VAD heard speech begin.
    SpeechStarted {
        /// Stream time, seconds (the prefix padding included).
        at: f64,
        /// The utterance.
        utterance: u64,
    },
    /// The utterance ended (a pause, [`Stream::flush`] or the end of the
    /// input): its final pass and [`LiveEvent::UtteranceEnd`] follow.
    SpeechStopped {
        /// Stream time, seconds.
        at: f64,
        /// The utterance.
        utterance: u64,
    },
    /// Words that are final; they are never retracted.
    Committed {
        /// The words.
        words: Vec<LiveWord>,
        /// Their text.
        text: String,
        /// When they were committed.
        emitted_at: f64,
        /// The utterance.
        utterance: u64,
    },
    /// The current guess for the words after the committed ones.
    Tentative {
        /// Its text (may be empty).
        text: String,
        /// When.
        emitted_at: f64,
        /// The utterance.
        utterance: u64,
    },
    /// The utterance is complete: every utterance that began ends with
    /// one (its text may be empty: nothing was said after all).
    UtteranceEnd {
        /// The utterance.
        utterance: u64,
        /// Everything committed in the utterance.
        text: String,
        /// Its start and end, seconds.
        start: f64,
        /// End.
        end: f64,
        /// When.
        emitted_at: f64,
    },
}

/// Where a stream's events go; `Break` stops the stream.
pub trait LiveSink {
    /// One event.
    fn event(&mut self, e: &LiveEvent) -> ControlFlow<()>;
}

impl<F: FnMut(&LiveEvent) -> ControlFlow<()>> LiveSink for F {
    fn event(&mut self, e: &LiveEvent) -> ControlFlow<()> {
        self(e)
    }
}

/// Collects every event.
impl LiveSink for Vec<LiveEvent> {
    fn event(&mut self, e: &LiveEvent) -> ControlFlow<()> {
        self.push(e.clone());
        ControlFlow::Continue(())
    }
}

/// One utterance (speech between pauses) being transcribed.
struct Utterance {
    id: u64,
    /// The audio since the last cut, and the stream sample of its first.
    buf: Vec<f32>,
    buf_start: u64,
    /// Stream time the utterance began, seconds.
    start: f64,
    /// Stream time the VAD heard it end, once it has.
    end: Option<f64>,
    /// Stream sample just after the last chunk the VAD heard as speech.
    last_speech: u64,
    /// The last committed words (to recognise a pass repeating them).
    recent: Vec<LiveWord>,
    /// End of the last committed word, seconds.
    committed_until: f64,
    /// Everything committed in the utterance.
    text: String,
    /// The committed words whose audio is still in `buf`.
    in_buf: Vec<LiveWord>,
    /// The previous pass's uncommitted words.
    last_pass: Vec<LiveWord>,
    /// Stream samples received when the last pass ran.
    last_pass_at: u64,
    /// Stream time of the last commit.
    last_commit_at: f64,
}

impl Utterance {
    fn buffered(&self) -> f64 {
        self.buf.len() as f64 / RATE
    }
}

/// One live transcription (made by [`Engine::stream`]).
pub struct Stream {
    engine: Engine,
    opts: StreamOptions,
    cancel: CancelToken,
    vad: VadStream,
    probs: Vec<f32>,
    /// Samples received so far (the stream clock).
    received: u64,
    /// Samples kept before speech starts (the prefix padding).
    preroll: VecDeque<f32>,
    /// Consecutive silent VAD chunks while in speech.
    silent_chunks: usize,
    /// The utterance being spoken.
    current: Option<Utterance>,
    /// Utterances the VAD closed, waiting for their final decode.
    closing: VecDeque<Utterance>,
    /// Text committed over the whole stream whose audio is no longer in a
    /// buffer (the prompt's source: text whose audio the pass also hears
    /// would tell the model those words came before, and it skips them).
    history: String,
    /// The next utterance's number.
    next_id: u64,
    /// The largest buffer a pass decoded, seconds.
    peak_buffer_s: f64,
    ended: bool,
}

impl Engine {
    /// Start a live transcription (needs the Silero VAD model, loaded once
    /// into the engine, downloaded into the cache unless offline).
    pub fn stream(&self, opts: StreamOptions) -> Result<Stream> {
        let vad = self.vad_model()?;
        Stream::new(self.clone(), opts, vad)
    }
}

impl Stream {
    fn new(engine: Engine, mut opts: StreamOptions, vad: Arc<SileroVad>) -> Result<Self> {
        opts.decoding.word_timestamps = true;
        opts.decoding.temperatures.truncate(1);
        opts.decoding.validate().map_err(Error::from)?;
        opts.vad.validate().map_err(Error::from)?;
        for (name, v) in [
            ("min_chunk_s", opts.min_chunk_s),
            ("max_buffer_s", opts.max_buffer_s),
            ("force_commit_s", opts.force_commit_s),
            ("trim_s", opts.trim_s),
        ] {
            if !v.is_finite() || v <= 0.0 || v > 30.0 {
                return Err(Error::InvalidOption(format!(
                    "{name} must be between 0 and 30 seconds, got {v}"
                )));
            }
        }
        let cancel = opts.cancel.clone().unwrap_or_default();
        Ok(Self {
            engine,
            cancel,
            vad: VadStream::new(vad),
            probs: Vec::new(),
            received: 0,
            preroll: VecDeque::new(),
            silent_chunks: 0,
            current: None,
            closing: VecDeque::new(),
            history: String::new(),
            next_id: 0,
            peak_buffer_s: 0.0,
            ended: false,
            opts,
        })
    }

    /// Seconds of audio received.
    pub fn clock(&self) -> f64 {
        self.received as f64 / RATE
    }

    /// Seconds of audio in the current utterance's buffer (never above
    /// `max_buffer_s` after a poll).
    pub fn buffered(&self) -> f64 {
        self.current.as_ref().map_or(0.0, Utterance::buffered)
    }

    /// The longest buffer any pass decoded so far, seconds.
    pub fn peak_buffered(&self) -> f64 {
        self.peak_buffer_s
    }

    /// Whether the VAD currently hears speech.
    pub fn in_speech(&self) -> bool {
        self.current.is_some()
    }

    /// Feed 16 kHz mono samples in [-1, 1). Cheap — only the VAD runs here,
    /// so an audio callback can call it; decoding happens in [`Stream::poll`].
    pub fn push(&mut self, samples: &[f32], sink: &mut dyn LiveSink) -> Result<()> {
        let pad = (self.opts.vad.speech_pad_ms as f64 / 1000.0 * RATE) as usize;
        let silence_chunks = ((self.opts.vad.min_silence_duration_ms as f64 / 1000.0 * RATE)
            as usize)
            .div_ceil(CHUNK)
            .max(1);
        let threshold = self.opts.vad.threshold;
        let neg = self.opts.vad.effective_neg_threshold();
        // In VAD-chunk pieces, so a state change falls on its chunk.
        for piece in samples.chunks(CHUNK) {
            self.received += piece.len() as u64;
            match &mut self.current {
                Some(u) => u.buf.extend_from_slice(piece),
                None => {
                    self.preroll.extend(piece.iter().copied());
                    while self.preroll.len() > pad + CHUNK {
                        self.preroll.pop_front();
                    }
                }
            }
            self.probs.clear();
            self.vad.push(piece, &mut self.probs);
            for i in 0..self.probs.len() {
                let p = self.probs[i];
                if self.current.is_none() {
                    if p >= threshold {
                        self.start_utterance(sink)?;
                    }
                } else if p < neg {
                    self.silent_chunks += 1;
                    if self.silent_chunks >= silence_chunks {
                        self.close_current(sink)?;
                    }
                } else if p >= threshold {
                    self.silent_chunks = 0;
                }
                if p >= threshold {
                    if let Some(u) = &mut self.current {
                        u.last_speech = self.received;
                    }
                }
            }
        }
        Ok(())
    }

    fn start_utterance(&mut self, sink: &mut dyn LiveSink) -> Result<()> {
        self.silent_chunks = 0;
        let buf: Vec<f32> = self.preroll.drain(..).collect();
        let buf_start = self.received - buf.len() as u64;
        let start = buf_start as f64 / RATE;
        let id = self.next_id;
        self.next_id += 1;
        self.current = Some(Utterance {
            id,
            buf,
            buf_start,
            start,
            end: None,
            last_speech: self.received,
            recent: Vec::new(),
            committed_until: start,
            text: String::new(),
            in_buf: Vec::new(),
            last_pass: Vec::new(),
            last_pass_at: buf_start,
            last_commit_at: self.clock(),
        });
        emit(
            sink,
            &LiveEvent::SpeechStarted {
                at: start,
                utterance: id,
            },
        )
    }

    /// End the current utterance now (its final pass runs at the next poll).
    fn close_current(&mut self, sink: &mut dyn LiveSink) -> Result<()> {
        if let Some(mut u) = self.current.take() {
            let at = self.clock();
            u.end = Some(at);
            let utterance = u.id;
            self.closing.push_back(u);
            emit(sink, &LiveEvent::SpeechStopped { at, utterance })?;
        }
        Ok(())
    }

    /// Decode what is due: the final pass of every utterance the VAD closed,
    /// then the current utterance when at least `min_chunk_s` of new audio
    /// arrived (or its buffer reached the cap). Each pass takes all the
    /// audio received so far.
    pub fn poll(&mut self, sink: &mut dyn LiveSink) -> Result<()> {
        while let Some(mut u) = self.closing.pop_front() {
            self.pass(&mut u, sink, true)?;
            let emitted_at = self.clock();
            emit(
                sink,
                &LiveEvent::UtteranceEnd {
                    utterance: u.id,
                    text: u.text.clone(),
                    start: u.start,
                    end: u.end.unwrap_or(emitted_at),
                    emitted_at,
                },
            )?;
        }
        if let Some(mut u) = self.current.take() {
            let new = self.received.saturating_sub(u.last_pass_at) as f64 / RATE;
            let r = if new >= self.opts.min_chunk_s || u.buffered() >= self.opts.max_buffer_s {
                self.pass(&mut u, sink, false)
            } else {
                Ok(())
            };
            self.current = Some(u);
            r?;
        }
        Ok(())
    }

    /// The end of the audio: the current utterance is finished as at a
    /// pause, and everything still open is decoded.
    pub fn finish(&mut self, sink: &mut dyn LiveSink) -> Result<()> {
        self.flush(sink)?;
        self.ended = true;
        Ok(())
    }

    /// End the current utterance as at a pause and decode everything still
    /// open; the stream goes on (a client's manual commit).
    pub fn flush(&mut self, sink: &mut dyn LiveSink) -> Result<()> {
        self.close_current(sink)?;
        self.poll(sink)
    }

    /// Drop the audio of the current utterance (nothing of it is decoded
    /// any more; what it committed stays committed). Utterances already
    /// closed are still finished by the next poll.
    pub fn clear(&mut self) {
        self.current = None;
        self.preroll.clear();
        self.silent_chunks = 0;
    }

    /// Whether [`Stream::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.ended
    }

    /// One decoding pass over `u`'s buffer; `last` commits everything.
    fn pass(&mut self, u: &mut Utterance, sink: &mut dyn LiveSink, last: bool) -> Result<()> {
        if u.buf.is_empty() || self.ended {
            return Ok(());
        }
        if last {
            // The pause that closed the utterance is not decoded: trailing
            // silence is where Whisper invents words ("Thank you.").
            let keep_until = u.last_speech + (self.opts.vad.speech_pad_ms as u64 * 16);
            let keep = keep_until.saturating_sub(u.buf_start) as usize;
            u.buf.truncate(keep.min(u.buf.len()));
            if u.buf.is_empty() {
                return Ok(());
            }
        }
        self.cancel_check()?;
        let started = self.opts.clock.now();
        let received_at_start = self.clock();
        u.last_pass_at = self.received;
        self.peak_buffer_s = self.peak_buffer_s.max(u.buffered());
        let words = self.decode(u, last)?;
        let audio_end = (u.buf_start + u.buf.len() as u64) as f64 / RATE;
        // The words after the committed ones: by time (a word whose middle
        // lies past the last committed word's end), then by text (a pass may
        // repeat the last committed words); nothing after the speech the VAD
        // heard (plus its padding).
        let speech_end =
            (u.last_speech as f64 + f64::from(self.opts.vad.speech_pad_ms) * 16.0) / RATE;
        // Word times move by a word or so between passes: the boundary by
        // time is corrected by finding the last committed words in the text.
        let by_time = words
            .iter()
            .position(|w| (w.start + w.end) / 2.0 > u.committed_until)
            .unwrap_or(words.len());
        let from = resume_at(&u.recent, &words, by_time);
        let mut fresh: Vec<LiveWord> = words
            .into_iter()
            .skip(from)
            .filter(|w| w.start < speech_end)
            .collect();
        let dup = overlap(&u.recent, &fresh);
        fresh.drain(..dup);
        let stale = received_at_start - u.last_commit_at >= self.opts.force_commit_s;
        let over = u.buffered() >= self.opts.max_buffer_s;
        let n = if last || stale || over {
            fresh.len()
        } else {
            self.opts
                .policy
                .commit_count(&u.last_pass, &fresh, audio_end)
        };
        let emitted_at = received_at_start + (self.opts.clock.now() - started).max(0.0);
        let tentative: Vec<LiveWord> = fresh.split_off(n);
        if !fresh.is_empty() {
            u.committed_until = fresh.last().map_or(u.committed_until, |w| w.end);
            let text: String = fresh.iter().map(|w| w.text.as_str()).collect();
            u.in_buf.extend(fresh.iter().cloned());
            u.text.push_str(&text);
            u.recent.extend(fresh.iter().cloned());
            let keep = u.recent.len().saturating_sub(5);
            u.recent.drain(..keep);
            u.last_commit_at = emitted_at;
            emit(
                sink,
                &LiveEvent::Committed {
                    words: fresh,
                    text,
                    emitted_at,
                    utterance: u.id,
                },
            )?;
        }
        if !last {
            emit(
                sink,
                &LiveEvent::Tentative {
                    text: tentative.iter().map(|w| w.text.as_str()).collect(),
                    emitted_at,
                    utterance: u.id,
                },
            )?;
        }
        u.last_pass = tentative;
        if last {
            // The utterance is done: all its text is context from now on.
            let text: String = u.in_buf.drain(..).map(|w| w.text).collect();
            self.history.push_str(&text);
        }
        self.trim(u);
        Ok(())
    }

    /// Cut the buffer at the last committed word once it is long; at the
    /// cap with nothing committed to cut at, keep only its last `trim_s`.
    fn trim(&mut self, u: &mut Utterance) {
        if u.buffered() < self.opts.trim_s {
            return;
        }
        let at_word = ((u.committed_until * RATE) as u64).saturating_sub(u.buf_start) as usize;
        let mut cut = at_word.min(u.buf.len());
        if u.buffered() >= self.opts.max_buffer_s && cut == 0 {
            cut = u.buf.len() - (self.opts.trim_s * RATE) as usize;
        }
        if cut > 0 {
            u.buf.drain(..cut);
            u.buf_start += cut as u64;
            // Committed words cut out of the buffer become prompt text.
            let start = u.buf_start as f64 / RATE;
            let gone = u
                .in_buf
                .iter()
                .take_while(|w| w.end <= start + 0.01)
                .count();
            let text: String = u.in_buf.drain(..gone).map(|w| w.text).collect();
            self.history.push_str(&text);
        }
    }

    /// Decode `u`'s buffer: its words in stream time. Windows judged silent
    /// by faster-whisper's rule, or repetitive, give none.
    fn decode(&self, u: &Utterance, last: bool) -> Result<Vec<LiveWord>> {
        let mut d = self.opts.decoding.clone();
        if let (true, Some(beam)) = (last, self.opts.final_beam_size) {
            d.beam_size = d.beam_size.max(beam);
        }
        // The prompt: about the last 200 characters committed, whole words.
        let h = self.history.trim_start();
        let tail = match h.char_indices().rev().nth(200) {
            Some((i, _)) => h[i..].split_once(' ').map_or("", |(_, r)| r),
            None => h,
        };
        // A caller's own prompt (vocabulary, style) comes first, then the
        // recent text.
        let own = self.opts.decoding.initial_prompt.as_deref().unwrap_or("");
        let prompt = format!("{} {tail}", own.trim());
        let prompt = prompt.trim();
        d.initial_prompt = (!prompt.is_empty()).then(|| prompt.to_string());
        // Urgent: a live pass goes ahead of file jobs at a shared limit.
        let opts = TranscribeOptions::new(d)
            .with_cancel(self.cancel.clone())
            .urgent();
        let mut segs: Vec<Segment> = Vec::new();
        let audio = Pcm::F32(Cow::Borrowed(&u.buf));
        self.engine.transcribe(audio, &opts, &mut segs)?;
        let offset = u.buf_start as f64 / RATE;
        let mut words: Vec<vkw_segments::Word> = segs
            .into_iter()
            .filter(|s| !(s.no_speech_prob > 0.6 && s.avg_logprob < -1.0))
            .filter(|s| s.compression_ratio <= 2.4)
            .flat_map(|s| s.words.unwrap_or_default())
            .collect();
        drop_hallucinated_tail(&mut words);
        Ok(words
            .into_iter()
            .map(|w| LiveWord {
                text: w.word,
                start: offset + w.start,
                end: offset + w.end,
            })
            .collect())
    }

    fn cancel_check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Decode(vkw_decode::DecodeError::Cancelled))
        } else {
            Ok(())
        }
    }
}

/// Drop the last sentences of a pass while they are short (at most 4
/// words), hold a word of probability below 0.2, and look hallucinated by
/// faster-whisper's rule (`is_segment_anomaly`: improbable, squeezed or
/// stretched words). A buffer that ends in a pause — every utterance's final
/// pass, and passes cut at a comma — is where Whisper adds "Thank you." with
/// words of zero duration; the final pass would commit them.
fn drop_hallucinated_tail(words: &mut Vec<vkw_segments::Word>) {
    // Words crammed into no audio at the end (each as anomalous as a word
    // of under 66 ms): three or more are never speech — Whisper looping
    // after the last word ("There's a lot of stuff. There's a lot of
    // stuff. …", all at one instant). The sentence they began with goes
    // too when it is short.
    let squeezed = words
        .iter()
        .rev()
        .take_while(|w| vkw_decode::word_anomaly_score(w) >= 1.0)
        .count();
    if squeezed >= 3 {
        words.truncate(words.len() - squeezed);
        let start = sentence_start(words);
        if words.len() - start <= 4 {
            words.truncate(start);
        }
    }
    while !words.is_empty() {
        let start = sentence_start(&words[..words.len() - 1]);
        // Only short sentences: a long one flagged by the rule is real
        // speech whose alignment stretched over a pause (seen: "A very few
        // years saw the" with "the" 7.9 s long), which a final pass must
        // not lose. The hallucinations seen were 1–4 words.
        let spoken = words[start..]
            .iter()
            .filter(|w| w.word.chars().any(char::is_alphanumeric))
            .count();
        // And one word the model itself doubted: Whisper's "Thank you."
        // begins with a word of probability 0.01–0.13.
        let doubted = words[start..].iter().any(|w| w.probability < 0.2);
        if spoken > 4 || !doubted || !vkw_decode::words_look_hallucinated(&words[start..]) {
            break;
        }
        words.truncate(start);
    }
}

/// Where the sentence after the last sentence-ending word of `words`
/// begins (0 when none ends one; `words.len()` when the last one does).
fn sentence_start(words: &[vkw_segments::Word]) -> usize {
    words
        .iter()
        .rposition(|w| {
            w.word
                .trim_end()
                .ends_with(['.', '?', '!', '。', '？', '！'])
        })
        .map_or(0, |i| i + 1)
}

fn emit(sink: &mut dyn LiveSink, e: &LiveEvent) -> Result<()> {
    match sink.event(e) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(Error::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::drop_hallucinated_tail;
    use vkw_segments::Word;

    fn w(word: &str, start: f64, end: f64, probability: f64) -> Word {
        Word {
            start,
            end,
            word: word.into(),
            probability,
        }
    }

    #[test]
    fn a_squeezed_thank_you_after_the_last_sentence_is_dropped() {
        // What an utterance's final pass gave on the long-form set.
        let mut words = vec![
            w(" in", 171.17, 171.47, 0.9),
            w(" the", 171.47, 171.63, 0.9),
            w(" year", 171.63, 171.93, 0.9),
            w(" 1462.", 171.91, 172.87, 0.8),
            w(" Thank", 172.87, 172.87, 0.01),
            w(" you.", 172.87, 173.07, 0.98),
            w(" Thank", 173.07, 173.07, 0.09),
            w(" you.", 173.07, 173.17, 0.99),
        ];
        drop_hallucinated_tail(&mut words);
        assert_eq!(words.len(), 4);
        assert_eq!(words[3].word, " 1462.");
        // Squeezed but confident words stay (no word below 0.2).
        let mut sure = vec![w(" Yes.", 1.0, 1.0, 0.9)];
        drop_hallucinated_tail(&mut sure);
        assert_eq!(sure.len(), 1);
        // Ordinary words stay, whatever their punctuation.
        let mut ok = vec![
            w(" Ask", 8.1, 8.6, 0.9),
            w(" not.", 8.6, 9.3, 0.9),
            w(" What", 9.4, 9.7, 0.9),
            w(" you", 9.7, 9.9, 0.9),
        ];
        drop_hallucinated_tail(&mut ok);
        assert_eq!(ok.len(), 4);
        // A longer sentence with one stretched word is kept.
        let mut long = vec![
            w(" letters.", 4.0, 4.5, 0.9),
            w(" A", 4.6, 4.7, 0.97),
            w(" very", 4.7, 5.04, 0.96),
            w(" few", 5.04, 5.4, 1.0),
            w(" years", 5.4, 5.84, 1.0),
            w(" saw", 5.84, 6.3, 0.97),
            w(" the", 6.3, 14.2, 1.0),
        ];
        drop_hallucinated_tail(&mut long);
        assert_eq!(long.len(), 7);
        // Whisper looping after the last word, all at one instant.
        let mut looping = vec![
            w(" letters.", 191.57, 191.89, 0.9),
            w(" There's", 191.89, 192.09, 0.3),
            w(" a", 192.09, 192.39, 0.6),
        ];
        for t in [
            " lot", " of", " stuff.", " There's", " a", " lot", " of", " stuff.",
        ] {
            looping.push(w(t, 192.39, 192.39, 0.9));
        }
        drop_hallucinated_tail(&mut looping);
        assert_eq!(looping.len(), 1);
        let mut none: Vec<Word> = Vec::new();
        drop_hallucinated_tail(&mut none);
    }
}
