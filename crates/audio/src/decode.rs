//! Decoding with symphonia: container probe, first decodable audio track, per-packet downmix
//! to mono, streaming resample to 16 kHz.

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::pcm::{downmix_weights, MonoResampler, PcmStore};

/// Why symphonia gave up, sorted by what the caller should do about it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Not a format/codec symphonia knows (or not audio at all): try ffmpeg.
    Unsupported(String),
    /// A known format whose header or data is broken, and nothing could be decoded.
    Corrupt(String),
    /// The stream ends well before the length its header declares.
    Truncated {
        /// Seconds the header declares.
        declared: f64,
        /// Seconds actually decoded.
        decoded: f64,
    },
    /// Reading the source failed.
    Io(std::io::Error),
    /// Resampler failure (an internal limit, e.g. an absurd sample rate).
    Resample(String),
}

/// Mono, 16 kHz samples from `source`, quantised to 16 bits as they are
/// decoded (spec §4.1) into `P` (f32 or i16).
///
/// Policy for damaged input: the container header must parse, then every packet that decodes
/// is kept and undecodable packets are skipped, and the stream ends at the first read error.
/// The result is an error when no sample at all could be decoded, or when the stream ends
/// well before the length the header declares (a cut-off download): transcribing only the
/// first part without saying so would silently lose the rest. Streams without a declared
/// length (e.g. MP3 without a Xing header) yield what could be decoded.
pub(crate) fn decode<P: PcmStore>(
    mut source: Box<dyn MediaSource>,
    ext: Option<&str>,
) -> Result<P, Failure> {
    let head = peek_head(&mut source).map_err(Failure::Io)?;
    // MP4/M4A: the edit list says which decoded samples are real audio.
    let edit = if head.get(4..8) == Some(b"ftyp") {
        let e = crate::mp4::edit_list(&mut source);
        source
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Failure::Io)?;
        e
    } else {
        None
    };
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    // Gapless: drop MP3/AAC encoder delay and padding like FFmpeg does (jfk.mp3 -> 176,000).
    let format_opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &format_opts, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                Failure::Io(io)
            }
            // The probe scans the whole input for a container signature and runs into the
            // end when there is none: a known signature at the start means a damaged file,
            // anything else is simply not (supported) audio.
            SymError::IoError(_) | SymError::DecodeError(_) if known_container(&head) => {
                Failure::Corrupt(describe(&e))
            }
            SymError::IoError(_) | SymError::DecodeError(_) | SymError::Unsupported(_) => {
                Failure::Unsupported("not a recognised audio container".into())
            }
            other => Failure::Corrupt(describe(&other)),
        })?;
    let mut format = probed.format;

    // The first track whose codec symphonia can build a decoder for (video containers may
    // list other streams first).
    let registry = symphonia::default::get_codecs();
    let mut chosen = None;
    let mut any_track = false;
    for track in format.tracks() {
        if track.codec_params.codec == CODEC_TYPE_NULL {
            continue;
        }
        any_track = true;
        if let Ok(dec) = registry.make(&track.codec_params, &DecoderOptions::default()) {
            chosen = Some((track.id, dec));
            break;
        }
    }
    // The declared length (WAV data size, FLAC STREAMINFO, MP3 Xing/Info), to tell a
    // truncated file from a complete one.
    let declared = format
        .tracks()
        .iter()
        .find(|t| chosen.as_ref().is_some_and(|(id, _)| *id == t.id))
        .and_then(|t| Some((t.codec_params.n_frames?, t.codec_params.sample_rate?)));
    let Some((track_id, mut decoder)) = chosen else {
        return Err(Failure::Unsupported(if any_track {
            "codec not supported by the built-in decoders".into()
        } else {
            "no audio track found".into()
        }));
    };

    let mut sink: Option<Sink<P>> = None;
    let mut last_error: Option<String> = None;
    let mut frames_decoded: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            // End of stream, or a truncated file: keep what we have.
            Err(SymError::IoError(e)) => {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    last_error = Some(e.to_string());
                }
                break;
            }
            // A chained stream with new parameters; not needed for speech files.
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                last_error = Some(describe(&e));
                break;
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                frames_decoded += buf.frames() as u64;
                let s = match &mut sink {
                    Some(s) => s,
                    None => sink.insert(Sink::default()),
                };
                s.push(buf).map_err(Failure::Resample)?;
            }
            // A damaged packet: skip it, as FFmpeg does.
            Err(SymError::DecodeError(e)) => last_error = Some(format!("malformed stream: {e}")),
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                last_error = Some(describe(&e));
                break;
            }
        }
    }

    if let Some((n, rate)) = declared {
        // Encoder delay/padding and a damaged last packet account for a few
        // thousand frames; a cut-off download loses far more.
        let slack = (n / 100).max(4608);
        if sink.as_ref().is_some_and(|s| s.decoded_any) && frames_decoded + slack < n && rate > 0 {
            return Err(Failure::Truncated {
                declared: n as f64 / f64::from(rate),
                decoded: frames_decoded as f64 / f64::from(rate),
            });
        }
    }
    match sink {
        Some(s) if s.decoded_any => {
            let samples = s.finish().map_err(Failure::Resample)?;
            Ok(match edit {
                Some(e) => samples.edit(e, f64::from(crate::SAMPLE_RATE)),
                None => samples,
            })
        }
        _ => {
            Err(Failure::Corrupt(last_error.unwrap_or_else(|| {
                "the file ends before any audio data".into()
            })))
        }
    }
}

/// Symphonia's error text, with its terse "end of stream" made explicit.
fn describe(e: &SymError) -> String {
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends unexpectedly".into()
        }
        other => other.to_string(),
    }
}

/// The first bytes of the source (then rewound), for [`known_container`].
fn peek_head(source: &mut Box<dyn MediaSource>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = Vec::with_capacity(16);
    source.by_ref().take(16).read_to_end(&mut head)?;
    source.seek(SeekFrom::Start(0))?;
    Ok(head)
}

/// Whether `head` starts with the signature of a container symphonia reads.
fn known_container(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 9] = [
        b"RIFF",
        b"RIFX",
        b"RF64",
        b"fLaC",
        b"OggS",
        b"ID3",
        b"FORM",
        b"caff",
        &[0x1a, 0x45, 0xdf, 0xa3], // EBML (Matroska / WebM)
    ];
    MAGICS.iter().any(|m| head.starts_with(m))
        || head.get(4..8) == Some(b"ftyp")
        // MPEG audio frame sync (11 set bits).
        || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0)
}

/// Accumulates decoded buffers: downmix, resample, quantise into `P`.
#[derive(Default)]
struct Sink<P> {
    resampler: Option<MonoResampler>,
    /// The quantised output so far; the resampler's output is moved here
    /// after every packet, so only the compact form grows with the input.
    done: P,
    weights: Vec<f64>,
    layout: Option<(usize, u32)>,
    planar: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    decoded_any: bool,
}

impl<P: PcmStore> Sink<P> {
    fn push(&mut self, buf: AudioBufferRef<'_>) -> Result<(), String> {
        let spec = *buf.spec();
        let frames = buf.frames();
        if frames == 0 {
            return Ok(());
        }
        let count = spec.channels.count();
        let rate = spec.rate;
        if rate == 0 || count == 0 {
            return Err("stream reports 0 Hz or 0 channels".into());
        }
        let layout = (count, spec.channels.bits());
        if self.layout != Some(layout) {
            self.weights = downmix_weights(count, Some(layout.1));
            self.layout = Some(layout);
        }
        if self.resampler.as_ref().map(MonoResampler::rate) != Some(rate) {
            if let Some(old) = self.resampler.take() {
                self.done.extend_quantised(&old.finish()?);
            }
            self.resampler = Some(MonoResampler::new(rate)?);
        }

        // Convert to planar f32 (integer PCM becomes x / 2^(bits-1), exact for 16/24-bit).
        let need = buf.capacity() as u64;
        let planar = match &mut self.planar {
            Some(p) if p.capacity() >= frames * count => p,
            slot => slot.insert(SampleBuffer::new(need, spec)),
        };
        planar.copy_planar_ref(buf);
        let samples = planar.samples();

        self.mono.clear();
        if count == 1 {
            self.mono.extend_from_slice(&samples[..frames]);
        } else {
            self.mono.resize(frames, 0.0);
            let mut acc = vec![0f64; frames];
            for (ch, w) in samples.chunks_exact(frames).zip(&self.weights) {
                if *w != 0.0 {
                    for (a, &x) in acc.iter_mut().zip(ch) {
                        *a += w * f64::from(x);
                    }
                }
            }
            for (m, a) in self.mono.iter_mut().zip(acc) {
                *m = a as f32;
            }
        }
        self.decoded_any = true;
        if let Some(r) = &mut self.resampler {
            r.push(&self.mono)?;
            self.done.extend_quantised(r.drain().as_slice());
        }
        Ok(())
    }

    fn finish(mut self) -> Result<P, String> {
        if let Some(r) = self.resampler.take() {
            self.done.extend_quantised(&r.finish()?);
        }
        Ok(self.done)
    }
}
