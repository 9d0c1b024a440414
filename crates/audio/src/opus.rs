//! Opus through libopus (bundled C source, `opusic-sys`), as a symphonia decoder: Opus in Ogg
//! (`.opus`, `.ogg`: voice notes) and in WebM/Matroska (browsers' MediaRecorder, YouTube).
//!
//! What FFmpeg, and therefore faster-whisper, does with the same stream (spec §4.1):
//!
//! * 48 kHz float output whatever the encoder's input rate (RFC 7845 §5.1); swresample then
//!   converts 48 kHz → 16 kHz (`swr.rs`).
//! * The first `pre_skip` samples of the `OpusHead` (RFC 7845 §4.2) are dropped. Symphonia's
//!   Ogg reader already trims them (and the end padding from the last page's granule
//!   position) on the packets it returns; its Matroska reader does not, so this decoder drops
//!   them when the container did not declare a delay.
//! * The header's output gain (Q7.8 dB) is applied.
//! * Channel mapping family 0 (mono/stereo) and 1/255 (multistream, up to 255 channels).
//!
//! FFmpeg decodes Opus with its own float decoder, not libopus: the two agree to float
//! rounding, which after resampling and 16-bit conversion leaves a few samples ±1 LSB apart
//! (measured in `tests/formats.rs`).

use std::collections::HashMap;
use std::ffi::c_int;
use std::io::{Read, Seek, SeekFrom};

use symphonia::core::audio::{
    AsAudioBufferRef, AudioBuffer, AudioBufferRef, Channels, Signal, SignalSpec,
};
use symphonia::core::codecs::{
    CodecDescriptor, CodecParameters, Decoder, DecoderOptions, FinalizeResult, CODEC_TYPE_OPUS,
};
use symphonia::core::errors::{decode_error, unsupported_error, Result};
use symphonia::core::formats::Packet;

/// Opus always decodes at 48 kHz here (RFC 7845 §5.1: the rate FFmpeg outputs).
const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAME: usize = 5760;

/// The parts of an `OpusHead` (RFC 7845 §5.1) the decoder needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub channels: usize,
    pub pre_skip: usize,
    /// Output gain in Q7.8 dB.
    pub gain: i16,
    pub streams: usize,
    pub coupled: usize,
    pub mapping: Vec<u8>,
}

impl Head {
    /// Parse an `OpusHead` packet (the Ogg header packet, Matroska's CodecPrivate).
    pub(crate) fn parse(b: &[u8]) -> Option<Head> {
        if b.len() < 19 || &b[..8] != b"OpusHead" || b[8] >> 4 != 0 {
            return None;
        }
        let channels = usize::from(b[9]);
        let pre_skip = usize::from(u16::from_le_bytes([b[10], b[11]]));
        let gain = i16::from_le_bytes([b[16], b[17]]);
        let family = b[18];
        let (streams, coupled, mapping) = match family {
            0 if (1..=2).contains(&channels) => (1, channels - 1, (0..channels as u8).collect()),
            0 => return None,
            _ => {
                let streams = usize::from(*b.get(19)?);
                let coupled = usize::from(*b.get(20)?);
                let mapping = b.get(21..21 + channels)?.to_vec();
                if streams == 0 || coupled > streams || channels == 0 {
                    return None;
                }
                (streams, coupled, mapping)
            }
        };
        Some(Head {
            channels,
            pre_skip,
            gain,
            streams,
            coupled,
            mapping,
        })
    }
}

/// A symphonia [`Decoder`] for Opus backed by libopus' multistream float decoder.
pub(crate) struct OpusDecoder {
    params: CodecParameters,
    state: *mut opusic_sys::OpusMSDecoder,
    channels: usize,
    /// Samples (per channel) still to drop at the start.
    skip: usize,
    /// Whether a packet was decoded yet.
    started: bool,
    /// Interleaved output of one packet.
    pcm: Vec<f32>,
    buf: AudioBuffer<f32>,
}

// SAFETY: the libopus state is owned by this value alone and only used through `&mut self`.
unsafe impl Send for OpusDecoder {}
// SAFETY: no method touches the state through `&self`.
unsafe impl Sync for OpusDecoder {}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from opus_multistream_decoder_create and is freed once.
        unsafe { opusic_sys::opus_multistream_decoder_destroy(self.state) }
    }
}

/// Channel positions for `n` channels: RFC 7845 §5.1.1.2's Vorbis order for up to 8, mapped
/// to symphonia's (WAVE) bits so the down-mix weights each channel by its position.
fn channels_for(n: usize) -> Option<Channels> {
    let fl = Channels::FRONT_LEFT;
    let fr = Channels::FRONT_RIGHT;
    let fc = Channels::FRONT_CENTRE;
    let lfe = Channels::LFE1;
    Some(match n {
        1 => fc,
        2 => fl | fr,
        3 => fl | fc | fr,
        4 => fl | fr | Channels::REAR_LEFT | Channels::REAR_RIGHT,
        5 => fl | fc | fr | Channels::REAR_LEFT | Channels::REAR_RIGHT,
        6 => fl | fc | fr | Channels::REAR_LEFT | Channels::REAR_RIGHT | lfe,
        7 => {
            fl | fc | fr | Channels::SIDE_LEFT | Channels::SIDE_RIGHT | Channels::REAR_CENTRE | lfe
        }
        8 => {
            fl | fc
                | fr
                | Channels::SIDE_LEFT
                | Channels::SIDE_RIGHT
                | Channels::REAR_LEFT
                | Channels::REAR_RIGHT
                | lfe
        }
        _ => return None,
    })
}

impl Decoder for OpusDecoder {
    fn try_new(params: &CodecParameters, _opts: &DecoderOptions) -> Result<Self> {
        let Some(head) = params.extra_data.as_deref().and_then(Head::parse) else {
            return unsupported_error("opus: missing or unsupported OpusHead");
        };
        let Some(layout) = channels_for(head.channels) else {
            return unsupported_error("opus: more than 8 channels");
        };
        let mut err: c_int = 0;
        // SAFETY: `mapping` holds `channels` entries; libopus validates the counts.
        let state = unsafe {
            opusic_sys::opus_multistream_decoder_create(
                RATE as i32,
                head.channels as c_int,
                head.streams as c_int,
                head.coupled as c_int,
                head.mapping.as_ptr(),
                &mut err,
            )
        };
        if state.is_null() || err != opusic_sys::OPUS_OK {
            if !state.is_null() {
                // SAFETY: created above, freed once.
                unsafe { opusic_sys::opus_multistream_decoder_destroy(state) };
            }
            return unsupported_error("opus: invalid channel mapping");
        }
        if head.gain != 0 {
            // SAFETY: a valid state and the documented variadic int argument.
            unsafe {
                opusic_sys::opus_multistream_decoder_ctl(
                    state,
                    opusic_sys::OPUS_SET_GAIN_REQUEST,
                    c_int::from(head.gain),
                );
            }
        }
        // Dropped by this decoder unless the container trims the first packet itself.
        let skip = head.pre_skip;
        let spec = SignalSpec::new(RATE, layout);
        Ok(OpusDecoder {
            params: params.clone(),
            state,
            channels: head.channels,
            skip,
            started: false,
            pcm: vec![0.0; MAX_FRAME * head.channels],
            buf: AudioBuffer::new(MAX_FRAME as u64, spec),
        })
    }

    fn supported_codecs() -> &'static [CodecDescriptor] {
        &[symphonia::core::support_codec!(
            CODEC_TYPE_OPUS,
            "opus",
            "Opus (libopus)"
        )]
    }

    fn reset(&mut self) {
        // SAFETY: a valid state; OPUS_RESET_STATE takes no argument.
        unsafe {
            opusic_sys::opus_multistream_decoder_ctl(self.state, opusic_sys::OPUS_RESET_STATE);
        }
    }

    fn codec_params(&self) -> &CodecParameters {
        &self.params
    }

    fn decode(&mut self, packet: &Packet) -> Result<AudioBufferRef<'_>> {
        let data = &packet.data;
        let Ok(len) = i32::try_from(data.len()) else {
            return decode_error("opus: packet too large");
        };
        if data.is_empty() {
            return decode_error("opus: empty packet");
        }
        // SAFETY: `data` has `len` bytes; `pcm` holds MAX_FRAME samples per channel.
        let n = unsafe {
            opusic_sys::opus_multistream_decode_float(
                self.state,
                data.as_ptr(),
                len,
                self.pcm.as_mut_ptr(),
                MAX_FRAME as c_int,
                0,
            )
        };
        if n < 0 {
            return decode_error("opus: invalid packet");
        }
        let n = n as usize;
        self.buf.clear();
        self.buf.render_reserved(Some(n));
        for ch in 0..self.channels {
            let plane = self.buf.chan_mut(ch);
            for (j, x) in plane.iter_mut().enumerate() {
                *x = self.pcm[j * self.channels + ch];
            }
        }
        if !std::mem::replace(&mut self.started, true) && packet.trim_start() > 0 {
            // The container applies the pre-skip itself (never both: FFmpeg skips it once).
            self.skip = 0;
        }
        let skip = self.skip.min(n);
        self.skip -= skip;
        let start = (packet.trim_start() as usize).saturating_add(skip);
        self.buf.trim(start, packet.trim_end() as usize);
        Ok(self.buf.as_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> AudioBufferRef<'_> {
        self.buf.as_audio_buffer_ref()
    }
}

/// symphonia's codecs plus this Opus decoder.
pub(crate) fn codecs() -> &'static symphonia::core::codecs::CodecRegistry {
    static REGISTRY: std::sync::OnceLock<symphonia::core::codecs::CodecRegistry> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = symphonia::core::codecs::CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut r);
        r.register_all::<OpusDecoder>();
        r
    })
}

/// Matroska's trimming per track: CodecDelay (audio to drop at the start) and DiscardPadding
/// (audio to drop at the end of a block: WebM's end trimming for Opus). Symphonia 0.5 reads
/// neither; FFmpeg trims the decoded audio by both. Only element headers are read
/// (clusters' blocks are skipped by seeking), so this is cheap even for a long video.
pub(crate) fn mkv_trims<S: Read + Seek + ?Sized>(src: &mut S) -> HashMap<u64, Trim> {
    let mut ns: HashMap<u64, i128> = HashMap::new();
    let mut delays: HashMap<u64, u64> = HashMap::new();
    // The TrackEntry being read: (end, TrackNumber, CodecDelay).
    let mut entry: Option<(u64, Option<u64>, u64)> = None;
    let Ok(len) = src.seek(SeekFrom::End(0)) else {
        return HashMap::new();
    };
    let mut pos = 0u64;
    // The BlockGroup being read: (end, its Block's track, its DiscardPadding).
    let mut group: Option<(u64, Option<u64>, i64)> = None;
    let close = |g: (u64, Option<u64>, i64), ns: &mut HashMap<u64, i128>| {
        if let (Some(t), true) = (g.1, g.2 > 0) {
            *ns.entry(t).or_default() += i128::from(g.2);
        }
    };
    let mut head = [0u8; 24];
    while pos < len {
        if let Some(g) = group {
            if pos >= g.0 {
                close(g, &mut ns);
                group = None;
            }
        }
        if let Some((end, Some(t), d)) = entry {
            if pos >= end {
                delays.insert(t, d);
                entry = None;
            }
        }
        if src.seek(SeekFrom::Start(pos)).is_err() {
            break;
        }
        let n = read_up_to(src, &mut head);
        let h = &head[..n];
        let Some((Some(id), id_len)) = vint(h, false) else {
            break;
        };
        let Some((size, size_len)) = vint(&h[id_len..], true) else {
            break;
        };
        let body = pos + (id_len + size_len) as u64;
        let end = size.map_or(len, |s| body.saturating_add(s).min(len));
        let payload = &h[(id_len + size_len).min(n)..];
        match id {
            // Segment, Cluster, Tracks: read their children.
            0x1853_8067 | 0x1F43_B675 | 0x1654_AE6B => pos = body,
            // TrackEntry
            0xAE => {
                entry = Some((end, None, 0));
                pos = body;
            }
            // TrackNumber, CodecDelay (unsigned, in a TrackEntry)
            0xD7 | 0x56AA => {
                let k = (end - body) as usize;
                if let (Some(e), Some(b)) = (&mut entry, payload.get(..k)) {
                    if k <= 8 {
                        let v = b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x));
                        if id == 0xD7 {
                            e.1 = Some(v);
                        } else {
                            e.2 = v;
                        }
                    }
                }
                pos = end;
            }
            // BlockGroup
            0xA0 => {
                if let Some(g) = group.take() {
                    close(g, &mut ns);
                }
                group = Some((end, None, 0));
                pos = body;
            }
            // Block: the track number is its first vint.
            0xA1 => {
                if let (Some(g), Some((t, _))) = (&mut group, vint(payload, true)) {
                    g.1 = t;
                }
                pos = end;
            }
            // DiscardPadding: a signed big-endian integer of 1–8 bytes.
            0x75A2 => {
                let k = (end - body) as usize;
                if let (Some(g), Some(b)) = (&mut group, payload.get(..k)) {
                    if (1..=8).contains(&k) {
                        let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
                        for &x in b {
                            v = (v << 8) | i64::from(x);
                        }
                        g.2 = v;
                    }
                }
                pos = end;
            }
            _ => {
                if size.is_none() || end <= pos {
                    break;
                }
                pos = end;
            }
        }
    }
    if let Some(g) = group {
        close(g, &mut ns);
    }
    if let Some((_, Some(t), d)) = entry {
        delays.insert(t, d);
    }
    let mut out: HashMap<u64, Trim> = HashMap::new();
    for (t, v) in ns {
        out.entry(t).or_default().discard_ns = v.clamp(0, i128::from(u64::MAX)) as u64;
    }
    for (t, d) in delays {
        out.entry(t).or_default().delay_ns = d;
    }
    out
}

/// What a Matroska track says to trim from its decoded audio (nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Trim {
    /// CodecDelay: decoded audio before the real start (e.g. AAC's 1024 priming samples).
    pub delay_ns: u64,
    /// Sum of the DiscardPadding of its blocks: audio past the real end.
    pub discard_ns: u64,
}

impl Trim {
    /// `ns` in samples at `rate` (av_rescale_q: rounded to nearest).
    pub(crate) fn samples(ns: u64, rate: u32) -> usize {
        let v = (u128::from(ns) * u128::from(rate) + 500_000_000) / 1_000_000_000;
        v.min(u128::from(u32::MAX)) as usize
    }
}

fn read_up_to<S: Read + ?Sized>(src: &mut S, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// An EBML variable-length integer: (value, length). For sizes (`strip`), the marker bit is
/// removed and all-ones means "unknown" (`None`); element IDs keep their marker.
fn vint(b: &[u8], strip: bool) -> Option<(Option<u64>, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mut v = u64::from(first);
    if strip {
        v &= (1u64 << (8 - len)) - 1;
    }
    for &x in &b[1..len] {
        v = (v << 8) | u64::from(x);
    }
    let all_ones = strip && v == (1u64 << (7 * len)) - 1;
    Some((if all_ones { None } else { Some(v) }, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parses_families_0_and_1() {
        let mut h = b"OpusHead".to_vec();
        h.extend([1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        let p = Head::parse(&h).expect("family 0");
        assert_eq!(
            (p.channels, p.pre_skip, p.streams, p.coupled),
            (2, 312, 1, 1)
        );
        assert_eq!(p.mapping, vec![0, 1]);
        // Family 0 with 3 channels is invalid; truncated heads are rejected.
        let mut bad = h.clone();
        bad[9] = 3;
        assert!(Head::parse(&bad).is_none());
        assert!(Head::parse(&h[..12]).is_none());
        let mut m = h.clone();
        m[9] = 3;
        m[18] = 1;
        m.extend([2, 1, 0, 2, 1]);
        let p = Head::parse(&m).expect("family 1");
        assert_eq!(
            (p.streams, p.coupled, p.mapping.clone()),
            (2, 1, vec![0, 2, 1])
        );
    }

    #[test]
    fn ebml_vints() {
        assert_eq!(vint(&[0x81], true), Some((Some(1), 1)));
        assert_eq!(vint(&[0x40, 0x02], true), Some((Some(2), 2)));
        assert_eq!(vint(&[0xFF], true), Some((None, 1)));
        assert_eq!(
            vint(&[0x1A, 0x45, 0xDF, 0xA3], false),
            Some((Some(0x1A45_DFA3), 4))
        );
        assert_eq!(vint(&[0x00], true), None);
        assert_eq!(vint(&[], true), None);
    }
}
