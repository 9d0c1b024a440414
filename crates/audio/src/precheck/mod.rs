//! Header checks before symphonia sees the data.
//!
//! symphonia 0.5 trusts some header fields in ways that panic or abort: a
//! sample rate that rounds to 0 Hz builds a `TimeBase` with a zero
//! denominator (WAV, AIFF, CAF), the ADPCM block arithmetic of the WAV
//! reader underflows or divides by zero on small `block_align` values, and
//! a chunk is read into a buffer of its *declared* size before a byte of it
//! is read (a CAF `kuki` chunk declaring 1 TB asks for 1 TB). Panics are
//! contained (`vkw_guard::contain`), but a library should not depend on
//! unwinding for inputs it can recognise, and a failed allocation cannot be
//! contained at all. So the chunks of the PCM containers are walked here
//! first: a chunk (other than the sample data) larger than the rest of the
//! file, a rate outside `MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE`, a channel
//! count outside 1–26 (the most symphonia maps) or an impossible block
//! layout is refused with a typed error. Anything this walk does not
//! understand is left to symphonia, which reports it as damaged or
//! unsupported. The other containers' checks are in `xiph.rs` (FLAC
//! metadata, Ogg comment headers), `mp4.rs` and `matroska.rs`.

use std::io::{Read, Seek, SeekFrom};

use crate::decode::{check_rate, Failure};
use matroska::Matroska;
use mp4::mp4_boxes;
use xiph::{flac_metadata, ogg_comments};

/// Chunks examined before giving up (each is at least 8 bytes, so this only
/// bounds the work on files made of millions of empty chunks).
const MAX_CHUNKS: usize = 4096;

/// Bytes symphonia's probe searches for a container marker (it skips
/// anything before one, and reads ID3v2 tags on the way).
const PROBE_SCAN: u64 = 1 << 20;

/// Check the header of the source whose first bytes are `head`; the source
/// is rewound afterwards.
///
/// symphonia's probe does not need the container at offset 0: it skips
/// ID3v2 tags and any bytes before a known marker (fuzzing found a FLAC
/// behind an ID3 tag, and an MP4 whose real `ftyp` followed a junk box,
/// each asking for gigabytes). So when the start is not a container this
/// walk knows, the first megabyte (ID3v2 tag bodies skipped) is searched for
/// the first marker, and its container is checked as if the file began there.
pub(crate) fn check<S: Read + Seek + ?Sized>(head: &[u8], src: &mut S) -> Result<(), Failure> {
    if known(head) {
        return check_at(head, src);
    }
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return Ok(());
    };
    src.seek(SeekFrom::Start(0)).map_err(Failure::Io)?;
    let mut buf = Vec::new();
    if src.take(PROBE_SCAN.min(end)).read_to_end(&mut buf).is_err() {
        src.seek(SeekFrom::Start(0)).map_err(Failure::Io)?;
        return Ok(());
    }
    // As symphonia's probe: ID3v2 tags are skipped whole, and the first
    // marker decides. An MPEG audio or ADTS frame sync is a marker too (of a
    // format these checks leave to symphonia), so an MP3's frames are never
    // searched for other formats' markers by chance.
    let mut i = 0;
    while i + 4 <= buf.len() {
        if let Some(len) = id3v2_len(&buf[i..]) {
            i = i.saturating_add(len);
            continue;
        }
        if frame_sync(buf[i], buf[i + 1]) {
            break;
        }
        if let Some(at) = marker_start(&buf, i) {
            let mut view = Offset {
                inner: &mut *src,
                base: at as u64,
            };
            let head = &buf[at..buf.len().min(at + 16)];
            let r = check_at(head, &mut view);
            src.seek(SeekFrom::Start(0)).map_err(Failure::Io)?;
            return r;
        }
        i += 1;
    }
    src.seek(SeekFrom::Start(0)).map_err(Failure::Io)?;
    Ok(())
}

/// The container markers symphonia's probe registers that these checks
/// walk (an MP4 `ftyp` sits 4 bytes into its box). symphonia has no RF64
/// reader, so it looks past one, and so do the checks.
const MARKERS: [&[u8; 4]; 6] = [
    b"RIFF",
    b"FORM",
    b"caff",
    b"fLaC",
    b"OggS",
    &[0x1a, 0x45, 0xdf, 0xa3],
];

/// Whether `head` starts a container this walk checks.
fn known(head: &[u8]) -> bool {
    marker_start(head, 0) == Some(0) || marker_start(head, 4) == Some(0)
}

/// symphonia's MPEG audio (layers 1-3, MPEG 1/2/2.5) and ADTS markers.
fn frame_sync(a: u8, b: u8) -> bool {
    a == 0xff && matches!(b, 0xe2..=0xe7 | 0xf1..=0xf7 | 0xfa..=0xff)
}

/// The file offset a container starts at if a marker is at `i` (an MP4
/// `ftyp` is 4 bytes into its box).
fn marker_start(buf: &[u8], i: usize) -> Option<usize> {
    let m = buf.get(i..i + 4)?;
    if m == b"ftyp" {
        return i.checked_sub(4);
    }
    MARKERS.iter().any(|k| m == *k).then_some(i)
}

/// The whole length of an ID3v2 tag starting `d` (header, syncsafe size,
/// footer), so its body (cover art) is not searched for markers.
fn id3v2_len(d: &[u8]) -> Option<usize> {
    if d.len() < 10 || &d[..3] != b"ID3" || d[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = d[6..10]
        .iter()
        .fold(0usize, |a, &b| (a << 7) | usize::from(b));
    let footer = if d[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// A source seen from `base` on: the checks address a container from its
/// first byte.
struct Offset<'a, S: ?Sized> {
    inner: &'a mut S,
    base: u64,
}

impl<S: Read + ?Sized> Read for Offset<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Seek + ?Sized> Seek for Offset<'_, S> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let p = match pos {
            SeekFrom::Start(n) => self
                .inner
                .seek(SeekFrom::Start(self.base.saturating_add(n)))?,
            other => self.inner.seek(other)?,
        };
        Ok(p.saturating_sub(self.base))
    }
}

/// [`check`] for a container that starts at the source's first byte.
fn check_at<S: Read + Seek + ?Sized>(head: &[u8], src: &mut S) -> Result<(), Failure> {
    let res = if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        walk(src, 12, Endian::Little, 4, |id, body, src| {
            (id == b"fmt ").then(|| wave_fmt(body, src))
        })
    } else if head.len() >= 12
        && head.starts_with(b"FORM")
        && (&head[8..12] == b"AIFF" || &head[8..12] == b"AIFC")
    {
        walk(src, 12, Endian::Big, 4, |id, body, src| {
            (id == b"COMM").then(|| aiff_comm(body, src))
        })
    } else if head.starts_with(b"caff") {
        // (bytes, frames) per packet from `desc`, for `pakt` after it.
        let mut packets: Option<(u32, u32)> = None;
        walk(src, 8, Endian::Big, 8, |id, body, src| match id {
            b"desc" => Some(caf_desc(body, src).map(|p| packets = p)),
            b"pakt" => Some(caf_pakt(body, src, packets)),
            _ => None,
        })
    } else if head.get(4..8) == Some(b"ftyp") {
        mp4_boxes(src)
    } else if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        Matroska::new(src)?.check()
    } else if head.starts_with(b"fLaC") {
        flac_metadata(src)
    } else if head.starts_with(b"OggS") {
        ogg_comments(src)
    } else {
        Ok(())
    };
    src.seek(SeekFrom::Start(0)).map_err(Failure::Io)?;
    res
}

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

/// A chunk's body: where it starts and its declared length.
#[derive(Clone, Copy)]
struct Body {
    start: u64,
    len: u64,
}

/// Walk the chunks from `start` (4-byte ids, sizes of `size_len` bytes),
/// checking that each fits in the file, and run `visit` on each (it returns
/// `Some` for the chunk it checked). Stops at the sample data (whose size
/// may legitimately be unknown or past a truncated end), at the end, or at
/// anything unreadable (left to symphonia).
fn walk<S: Read + Seek + ?Sized>(
    src: &mut S,
    start: u64,
    endian: Endian,
    size_len: usize,
    mut visit: impl FnMut(&[u8; 4], Body, &mut S) -> Option<Result<(), Failure>>,
) -> Result<(), Failure> {
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return Ok(());
    };
    let mut pos = start;
    for _ in 0..MAX_CHUNKS {
        if src.seek(SeekFrom::Start(pos)).is_err() {
            return Ok(());
        }
        let mut id = [0u8; 4];
        let mut size = [0u8; 8];
        if src.read_exact(&mut id).is_err() || src.read_exact(&mut size[..size_len]).is_err() {
            return Ok(());
        }
        let len = match (endian, size_len) {
            (Endian::Little, _) => {
                u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]]))
            }
            (Endian::Big, 4) => u64::from(u32::from_be_bytes([size[0], size[1], size[2], size[3]])),
            (Endian::Big, _) => u64::from_be_bytes(size),
        };
        let body = Body {
            start: pos + 4 + size_len as u64,
            len,
        };
        if matches!(&id, b"data" | b"SSND") {
            return Ok(());
        }
        if body.start.checked_add(len).is_none_or(|e| e > end) {
            return corrupt(&format!(
                "the {} chunk declares {len} bytes, more than the file holds",
                vkw_guard::one_line(&String::from_utf8_lossy(&id), 4)
            ));
        }
        if let Some(r) = visit(&id, body, src) {
            r?;
        }
        // RIFF and AIFF chunks are padded to an even length; CAF's are not.
        let padded = if size_len == 4 { len + (len & 1) } else { len };
        match body.start.checked_add(padded) {
            Some(next) if next > pos => pos = next,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// The first `n` bytes of a chunk body, or `None` when the file ends first.
fn read_body<S: Read + Seek + ?Sized>(src: &mut S, body: Body, n: usize) -> Option<Vec<u8>> {
    if body.len < n as u64 {
        return None;
    }
    src.seek(SeekFrom::Start(body.start)).ok()?;
    let mut b = vec![0u8; n];
    src.read_exact(&mut b).ok()?;
    Some(b)
}

fn corrupt(what: &str) -> Result<(), Failure> {
    Err(Failure::Corrupt(what.to_string()))
}

/// Most channels symphonia 0.5 can describe (its channel bit set).
const MAX_CHANNELS: u64 = 26;

fn check_channels(n: u64) -> Result<(), Failure> {
    if (1..=MAX_CHANNELS).contains(&n) {
        Ok(())
    } else {
        corrupt(&format!(
            "the header declares {n} channels (1 to {MAX_CHANNELS} are supported)"
        ))
    }
}

/// WAVE `fmt `: format tag, channels, rate, byte rate, block align, bits.
fn wave_fmt<S: Read + Seek + ?Sized>(body: Body, src: &mut S) -> Result<(), Failure> {
    let Some(b) = read_body(src, body, 16) else {
        return Ok(());
    };
    let u16le = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let tag = u16le(0);
    let channels = u16le(2);
    let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let block_align = u16le(12);
    check_channels(u64::from(channels))?;
    check_rate(u64::from(rate))?;
    if block_align == 0 {
        return corrupt("the WAV header declares a block size of 0 bytes");
    }
    // symphonia computes frames per ADPCM block as
    // `(block_align − k·channels)·8 / (4·channels) + c` in 16-bit arithmetic
    // (k = 7 for Microsoft ADPCM, 4 for IMA): the block must hold its
    // per-channel header, and the product must fit 16 bits.
    let header = match tag {
        0x0002 => Some(7),
        0x0011 => Some(4),
        _ => None,
    };
    if let Some(k) = header {
        let min = k * u32::from(channels);
        let align = u32::from(block_align);
        if align < min || (align - min) * 8 > u32::from(u16::MAX) {
            return corrupt(&format!(
                "the ADPCM block size {block_align} does not fit {channels} channel(s)"
            ));
        }
    }
    Ok(())
}

/// AIFF `COMM`: channels (i16), frames (u32), sample size (i16), rate as an
/// 80-bit extended float.
fn aiff_comm<S: Read + Seek + ?Sized>(body: Body, src: &mut S) -> Result<(), Failure> {
    let Some(b) = read_body(src, body, 18) else {
        return Ok(());
    };
    let channels = i16::from_be_bytes([b[0], b[1]]);
    check_channels(u64::try_from(channels).unwrap_or(0))?;
    let exp = i32::from(u16::from_be_bytes([b[8], b[9]]) & 0x7fff);
    let mantissa = u64::from_be_bytes([b[10], b[11], b[12], b[13], b[14], b[15], b[16], b[17]]);
    let negative = b[8] & 0x80 != 0;
    // value = mantissa · 2^(exp − 16383 − 63); symphonia truncates it to u32.
    let rate = if negative || exp == 0x7fff {
        0.0
    } else {
        mantissa as f64 * 2f64.powi(exp - 16383 - 63)
    };
    check_rate(rate_to_u64(rate)).map(|_| ())
}

/// CAF `desc`: rate (f64), format id, flags, bytes and frames per packet,
/// channels per frame, bits per channel.
fn caf_desc<S: Read + Seek + ?Sized>(
    body: Body,
    src: &mut S,
) -> Result<Option<(u32, u32)>, Failure> {
    let Some(b) = read_body(src, body, 32) else {
        return Ok(None);
    };
    let u32_at = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let rate = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    check_rate(rate_to_u64(rate))?;
    check_channels(u64::from(u32_at(24)))?;
    Ok(Some((u32_at(16), u32_at(20))))
}

/// CAF `pakt`: packet count, frame counts, then a variable-length size
/// (and frame count) per packet. symphonia reserves the packet count before
/// reading the entries and reads each packet at its size: the count must
/// fit the chunk (an entry takes at least a byte) and every size the file.
fn caf_pakt<S: Read + Seek + ?Sized>(
    body: Body,
    src: &mut S,
    packets: Option<(u32, u32)>,
) -> Result<(), Failure> {
    let Some(b) = read_body(src, body, body.len.clamp(24, MAX_FLAC_BLOCK) as usize) else {
        return Ok(());
    };
    let count = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let room = b.len() as i64 - 24;
    if count > room.max(0) {
        return corrupt(&format!(
            "the CAF packet table declares {count} packets, more than its {room} bytes hold"
        ));
    }
    let Some((bytes_per_packet, frames_per_packet)) = packets else {
        return Ok(());
    };
    if bytes_per_packet != 0 {
        return Ok(());
    }
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return Ok(());
    };
    let mut at = 24;
    let varint = |at: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..10 {
            let x = *b.get(*at)?;
            *at += 1;
            v = (v << 7) | u64::from(x & 0x7f);
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        Some(v)
    };
    for _ in 0..count {
        let Some(size) = varint(&mut at) else {
            return Ok(());
        };
        if size > end {
            return corrupt(&format!(
                "a CAF packet of {size} bytes, more than the file holds"
            ));
        }
        if frames_per_packet == 0 && varint(&mut at).is_none() {
            return Ok(());
        }
    }
    Ok(())
}
/// Largest metadata block examined (the format's limit: 24-bit lengths).
const MAX_FLAC_BLOCK: u64 = 1 << 24;

/// A float rate as symphonia reads it (`as u32`, truncating; NaN is 0).
fn rate_to_u64(rate: f64) -> u64 {
    if rate.is_finite() && rate >= 0.0 {
        // Saturates for huge values, which `check_rate` refuses.
        rate as u64
    } else {
        0
    }
}

mod matroska;
mod mp4;
#[cfg(test)]
mod tests;
mod xiph;
