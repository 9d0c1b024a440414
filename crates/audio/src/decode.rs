//! Decoding with symphonia: container probe, first decodable audio track, per-packet downmix
//! to mono, streaming resample to 16 kHz.

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::pcm::{downmix_weights, PcmStore};
use crate::swr::Converter;
use crate::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE};

/// How much 16 kHz audio one input may produce ([`crate::Limits::max_samples`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Output samples (16 kHz mono), edit-list silence included.
    pub max_samples: u64,
}

/// A sample rate the pipeline accepts, or the failure naming it.
pub(crate) fn check_rate(rate: u64) -> Result<u32, Failure> {
    match u32::try_from(rate) {
        Ok(r) if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&r) => Ok(r),
        _ => Err(Failure::SampleRate(rate)),
    }
}

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
    /// Resampler failure.
    Resample(String),
    /// A sample rate outside `MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE`.
    SampleRate(u64),
    /// More output than the [`Budget`] allows.
    TooLong,
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
    budget: &Budget,
) -> Result<P, Failure> {
    let head = peek_head(&mut source).map_err(Failure::Io)?;
    // Header fields symphonia would trip over (a zero rate panics inside it).
    crate::precheck::check(&head, &mut source)?;
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
    // WebM/Matroska: the end trimming of Opus tracks, which symphonia does not apply.
    let discard = if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        let d = crate::opus::mkv_trims(&mut source);
        source
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Failure::Io)?;
        d
    } else {
        Default::default()
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
            SymError::IoError(io) if !format_problem(&io) => Failure::Io(io),
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
    let registry = crate::opus::codecs();
    let mut chosen = None;
    let mut any_track = false;
    let mut unknown_codec = None;
    for track in format.tracks() {
        if track.codec_params.codec == CODEC_TYPE_NULL {
            continue;
        }
        any_track = true;
        unknown_codec.get_or_insert(track.codec_params.codec);
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
    let int16 = format
        .tracks()
        .iter()
        .find(|t| chosen.as_ref().is_some_and(|(id, _)| *id == t.id))
        .is_some_and(|t| int16_decoder(&t.codec_params));
    // Matroska trims (FFmpeg applies them, symphonia 0.5 does not), in decoded frames. Opus
    // decodes at 48 kHz and drops its pre-skip itself, which is what CodecDelay states again.
    let (mut lead, tail) = chosen.as_ref().map_or((0, 0), |(id, d)| {
        let p = d.codec_params();
        let t = discard.get(&u64::from(*id)).copied().unwrap_or_default();
        if p.codec == symphonia::core::codecs::CODEC_TYPE_OPUS {
            (0, crate::opus::Trim::samples(t.discard_ns, 48_000))
        } else {
            let rate = p.sample_rate.unwrap_or(0);
            (
                crate::opus::Trim::samples(t.delay_ns, rate),
                crate::opus::Trim::samples(t.discard_ns, rate),
            )
        }
    });
    // MP4 edit list: FFmpeg drops the priming samples at the decoded rate, before resampling
    // (a 1024-sample skip at 22.05 kHz is not a whole number of 16 kHz samples), and keeps the
    // decoded end (it does not cut to the edit's duration).
    if let (Some(e), Some((_, d))) = (&edit, &chosen) {
        let rate = d.codec_params().sample_rate.unwrap_or(0);
        lead += (e.skip_s * f64::from(rate)).round().max(0.0) as usize;
    }
    let Some((track_id, mut decoder)) = chosen else {
        return Err(Failure::Unsupported(match unknown_codec {
            Some(c) if any_track => format!(
                "{} audio, which the built-in decoders do not read",
                codec_name(c)
            ),
            _ => "no audio track the built-in decoders read".into(),
        }));
    };
    if let Some(rate) = format
        .tracks()
        .iter()
        .find(|t| t.id == track_id)
        .and_then(|t| t.codec_params.sample_rate)
    {
        check_rate(u64::from(rate))?;
    }

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
                    None => sink.insert(Sink::new(budget.max_samples, int16, lead, tail)),
                };
                s.push(buf)?;
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
                Some(e) => {
                    // A leading empty edit is silence the file does not
                    // contain: it counts against the budget before it is
                    // allocated (an edit of 2^32 s at timescale 1 exists).
                    let rate = f64::from(SAMPLE_RATE);
                    let silence = (e.delay_s * rate).round();
                    if silence + samples.len() as f64 > budget.max_samples as f64 {
                        return Err(Failure::TooLong);
                    }
                    // The skip was applied before resampling; only the leading silence is left.
                    let e = crate::mp4::Edit {
                        skip_s: 0.0,
                        duration_s: None,
                        ..e
                    };
                    samples.edit(e, rate)
                }
                None => samples,
            })
        }
        // A well-formed file whose header declares no frames (a WAV with an
        // empty data chunk, a zero-length recording) is empty audio, not a
        // damaged file: faster-whisper transcribes it to no segments.
        None if last_error.is_none() && declared.is_some_and(|(n, _)| n == 0) => Ok(P::default()),
        _ => {
            Err(Failure::Corrupt(last_error.unwrap_or_else(|| {
                "the file ends before any audio data".into()
            })))
        }
    }
}

/// A codec's common name, for the error that says what could not be decoded.
fn codec_name(c: symphonia::core::codecs::CodecType) -> String {
    use symphonia::core::codecs::*;
    let known = [
        (CODEC_TYPE_WMA, "WMA"),
        (CODEC_TYPE_EAC3, "E-AC-3"),
        (CODEC_TYPE_AC4, "AC-4"),
        (CODEC_TYPE_DCA, "DTS"),
        (CODEC_TYPE_SPEEX, "Speex"),
        (CODEC_TYPE_MUSEPACK, "Musepack"),
        (CODEC_TYPE_ATRAC1, "ATRAC1"),
        (CODEC_TYPE_ATRAC3, "ATRAC3"),
        (CODEC_TYPE_ATRAC3PLUS, "ATRAC3plus"),
        (CODEC_TYPE_ATRAC9, "ATRAC9"),
        (CODEC_TYPE_WAVPACK, "WavPack"),
        (CODEC_TYPE_MONKEYS_AUDIO, "Monkey's Audio"),
        (CODEC_TYPE_TTA, "TTA"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == c)
        .map(|(_, n)| n.to_string())
        .or_else(|| {
            symphonia::default::get_codecs()
                .get_codec(c)
                .map(|d| d.short_name.to_string())
        })
        .unwrap_or_else(|| format!("an unknown codec ({c})"))
}

/// Whether an I/O error symphonia reports is the data's fault rather than
/// the device's: the end of the data, or a seek the data asked for that
/// cannot be done (an offset before the start or past any size). Those are
/// damaged files, not "cannot read" conditions.
fn format_problem(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    matches!(io.kind(), UnexpectedEof | InvalidInput | InvalidData)
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

/// Whether FFmpeg's decoder for this stream outputs integers of at most 16 bits (`s16`,
/// `s16p`, `u8`): swresample then down-mixes 16 kHz input in 16-bit arithmetic (`swr.rs`).
pub(crate) fn int16_decoder(params: &symphonia::core::codecs::CodecParameters) -> bool {
    use symphonia::core::codecs::*;
    let c = params.codec;
    let small = params.bits_per_sample.is_some_and(|b| b <= 16);
    [
        CODEC_TYPE_PCM_S16LE,
        CODEC_TYPE_PCM_S16BE,
        CODEC_TYPE_PCM_U16LE,
        CODEC_TYPE_PCM_U16BE,
        CODEC_TYPE_PCM_S8,
        CODEC_TYPE_PCM_U8,
        CODEC_TYPE_PCM_ALAW,
        CODEC_TYPE_PCM_MULAW,
        CODEC_TYPE_ADPCM_MS,
        CODEC_TYPE_ADPCM_IMA_WAV,
    ]
    .contains(&c)
        || ((c == CODEC_TYPE_FLAC || c == CODEC_TYPE_ALAC) && small)
}

/// Accumulates decoded buffers: FFmpeg's down-mix, resampling and 16-bit conversion
/// (`swr.rs`) into `P`.
struct Sink<P> {
    /// Output samples allowed ([`Budget::max_samples`]).
    max_samples: u64,
    /// Output samples the input pushed so far will produce (16 kHz units).
    expected: f64,
    /// Whether the decoder's samples are integers of at most 16 bits.
    int16: bool,
    converter: Option<Converter>,
    /// The 16-bit output so far; the converter's output is moved here after every packet.
    done: P,
    out: Vec<i16>,
    planar: Option<SampleBuffer<f32>>,
    decoded_any: bool,
    /// Decoded frames to drop at the very end (Matroska's DiscardPadding), and the last
    /// frames held back until the end is known.
    tail: usize,
    held: Vec<Vec<f32>>,
    /// Decoded frames still to drop at the start (Matroska's CodecDelay).
    lead: usize,
}

impl<P: PcmStore> Sink<P> {
    fn new(max_samples: u64, int16: bool, lead: usize, tail: usize) -> Self {
        Sink {
            max_samples,
            expected: 0.0,
            int16,
            converter: None,
            done: P::default(),
            out: Vec::new(),
            planar: None,
            decoded_any: false,
            tail,
            held: Vec::new(),
            lead,
        }
    }

    fn push(&mut self, buf: AudioBufferRef<'_>) -> Result<(), Failure> {
        let spec = *buf.spec();
        let frames = buf.frames();
        if frames == 0 {
            return Ok(());
        }
        let count = spec.channels.count();
        let rate = check_rate(u64::from(spec.rate))?;
        if count == 0 {
            return Err(Failure::Corrupt("the stream reports 0 channels".into()));
        }
        // The budget is checked on what this packet will become, before
        // anything of it is stored.
        self.expected += frames as f64 * f64::from(SAMPLE_RATE) / f64::from(rate);
        if self.expected > self.max_samples as f64 + 1.0 {
            return Err(Failure::TooLong);
        }
        let params = self.converter.as_ref().map(|c| {
            let (r, n, _) = c.params();
            (r, n)
        });
        if params != Some((rate, count)) {
            // A new rate or channel count mid-stream (chained Ogg, a broken header): FFmpeg's
            // filter graph would be rebuilt; flush the old conversion and start a new one.
            if let Some(mut old) = self.converter.take() {
                old.finish(&mut self.out);
                self.done.extend_s16(&self.out);
                self.out.clear();
            }
            let weights = downmix_weights(count, Some(spec.channels.bits()));
            self.converter = Some(Converter::new(rate, count, &weights, self.int16));
        }

        // Planar f32: integer PCM becomes x / 2^(bits-1), exact for up to 24 bits.
        let need = buf.capacity() as u64;
        let planar = match &mut self.planar {
            Some(p) if p.capacity() >= frames * count => p,
            slot => slot.insert(SampleBuffer::new(need, spec)),
        };
        planar.copy_planar_ref(buf);
        let samples = &planar.samples()[..frames * count];
        let drop = self.lead.min(frames);
        self.lead -= drop;
        let planes: Vec<&[f32]> = samples.chunks_exact(frames).map(|p| &p[drop..]).collect();
        self.decoded_any = true;
        let Some(c) = &mut self.converter else {
            return Ok(());
        };
        if self.tail == 0 {
            c.push(&planes, &mut self.out);
        } else {
            // Hold back the last `tail` frames: they are dropped if the stream ends here.
            self.held.resize(count, Vec::new());
            for (h, p) in self.held.iter_mut().zip(&planes) {
                h.extend_from_slice(p);
            }
            let ready = self.held[0].len().saturating_sub(self.tail);
            let planes: Vec<&[f32]> = self.held.iter().map(|h| &h[..ready]).collect();
            c.push(&planes, &mut self.out);
            for h in &mut self.held {
                h.drain(..ready);
            }
        }
        self.done.extend_s16(&self.out);
        self.out.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<P, String> {
        if let Some(mut c) = self.converter.take() {
            c.finish(&mut self.out);
            self.done.extend_s16(&self.out);
        }
        Ok(self.done)
    }
}
