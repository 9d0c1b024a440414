//! Header checks before symphonia sees the data.
//!
//! symphonia 0.5 trusts some header fields in ways that panic or abort: a
//! sample rate that rounds to 0 Hz builds a `TimeBase` with a zero
//! denominator (WAV, AIFF, CAF), the ADPCM block arithmetic of the WAV
//! reader underflows or divides by zero on small `block_align` values, and
//! a chunk is read into a buffer of its *declared* size before a byte of it
//! is read (a CAF `kuki` chunk declaring 1 TB asks for 1 TB). Panics are
//! contained (`guard.rs`), but a library should not depend on unwinding for
//! inputs it can recognise, and a failed allocation cannot be contained at
//! all. So the chunks of the PCM containers are walked here first: a chunk
//! (other than the sample data) larger than the rest of the file, a rate
//! outside `MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE`, a channel count outside 1–26
//! (the most symphonia maps) or an impossible block layout is refused with a
//! typed error. Anything this walk does not understand is left to
//! symphonia, which reports it as damaged or unsupported.

use std::io::{Read, Seek, SeekFrom};

use crate::decode::{check_rate, Failure};

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
                crate::text::one_line(&String::from_utf8_lossy(&id), 4)
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

/// Reads fields of a metadata structure held in memory; running out of
/// bytes ends the check (symphonia then fails to read too, before any large
/// allocation).
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    fn u32(&mut self, big_endian: bool) -> Option<u64> {
        let b: [u8; 4] = self.data.get(self.pos..self.pos + 4)?.try_into().ok()?;
        self.pos += 4;
        Some(u64::from(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    }

    /// Skip a field of `len` bytes, which must fit in what is left.
    fn skip(&mut self, len: u64, what: &str) -> Result<(), Failure> {
        let left = (self.data.len() - self.pos) as u64;
        if len > left {
            return corrupt(&format!(
                "{what} declares {len} bytes, more than its header holds ({left})"
            ));
        }
        self.pos += len as usize;
        Ok(())
    }
}

/// A Vorbis comment list (vendor string, count, strings; little-endian
/// lengths), as FLAC, Ogg Vorbis and Opus store it. symphonia allocates each
/// comment at its declared length before reading it.
fn vorbis_comment(data: &[u8]) -> Result<(), Failure> {
    let mut f = Fields { data, pos: 0 };
    let Some(vendor) = f.u32(false) else {
        return Ok(());
    };
    f.skip(vendor, "a Vorbis comment's vendor string")?;
    let Some(count) = f.u32(false) else {
        return Ok(());
    };
    for _ in 0..count {
        let Some(len) = f.u32(false) else {
            return Ok(());
        };
        f.skip(len, "a Vorbis comment")?;
    }
    Ok(())
}

/// A FLAC PICTURE block: type, MIME type, description, four numbers, data
/// (big-endian lengths, each allocated as declared by symphonia).
fn flac_picture(data: &[u8]) -> Result<(), Failure> {
    let mut f = Fields { data, pos: 4 };
    for what in ["a picture's MIME type", "a picture's description"] {
        let Some(len) = f.u32(true) else {
            return Ok(());
        };
        f.skip(len, what)?;
    }
    f.pos = (f.pos + 16).min(data.len());
    match f.u32(true) {
        Some(len) => f.skip(len, "a picture"),
        None => Ok(()),
    }
}

/// Largest metadata block examined (the format's limit: 24-bit lengths).
const MAX_FLAC_BLOCK: u64 = 1 << 24;

/// FLAC metadata blocks: each must fit in the file, and the comment and
/// picture blocks must fit their own fields.
fn flac_metadata<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return Ok(());
    };
    let mut pos = 4u64;
    for _ in 0..MAX_CHUNKS {
        let mut h = [0u8; 4];
        if src.seek(SeekFrom::Start(pos)).is_err() || src.read_exact(&mut h).is_err() {
            return Ok(());
        }
        let last = h[0] & 0x80 != 0;
        let kind = h[0] & 0x7f;
        let len = u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]]));
        let start = pos + 4;
        if start + len > end {
            return corrupt(&format!(
                "a FLAC metadata block declares {len} bytes, more than the file holds"
            ));
        }
        if kind == 4 || kind == 6 {
            let mut body = vec![0u8; len.min(MAX_FLAC_BLOCK) as usize];
            if src.read_exact(&mut body).is_err() {
                return Ok(());
            }
            if kind == 4 {
                vorbis_comment(&body)?;
            } else {
                flac_picture(&body)?;
            }
        }
        if last {
            return Ok(());
        }
        pos = start + len;
    }
    Ok(())
}

/// Pages read when looking for an Ogg stream's header packets.
const MAX_OGG_PAGES: usize = 64;
/// Bytes of one header packet kept (a comment header is small; one with
/// pictures may be large, and is checked up to here).
const MAX_OGG_PACKET: usize = 4 << 20;

/// Ogg: the comment header of each Vorbis or Opus stream (reassembled from
/// the first pages) must fit its own lengths.
fn ogg_comments<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
    // Packet being assembled, per stream serial number.
    let mut streams: Vec<(u32, Vec<u8>, usize)> = Vec::new();
    let mut pos = 0u64;
    for _ in 0..MAX_OGG_PAGES {
        let mut h = [0u8; 27];
        if src.seek(SeekFrom::Start(pos)).is_err() || src.read_exact(&mut h).is_err() {
            return Ok(());
        }
        if &h[..4] != b"OggS" {
            return Ok(());
        }
        let serial = u32::from_le_bytes([h[14], h[15], h[16], h[17]]);
        let mut lacing = vec![0u8; usize::from(h[26])];
        if src.read_exact(&mut lacing).is_err() {
            return Ok(());
        }
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let mut body = vec![0u8; body_len];
        if src.read_exact(&mut body).is_err() {
            return Ok(());
        }
        pos += 27 + lacing.len() as u64 + body_len as u64;
        let i = match streams.iter().position(|s| s.0 == serial) {
            Some(i) => i,
            None => {
                streams.push((serial, Vec::new(), 0));
                streams.len() - 1
            }
        };
        let mut at = 0;
        for &l in &lacing {
            let (_, packet, count) = &mut streams[i];
            let piece = &body[at..at + usize::from(l)];
            at += usize::from(l);
            if packet.len() < MAX_OGG_PACKET {
                packet.extend_from_slice(piece);
            }
            if l < 255 {
                // A complete packet: only the first few are headers.
                if *count < 3 {
                    if let Some(c) = packet.strip_prefix(b"\x03vorbis") {
                        vorbis_comment(c)?;
                    } else if let Some(c) = packet.strip_prefix(b"OpusTags") {
                        vorbis_comment(c)?;
                    }
                }
                *count += 1;
                packet.clear();
            }
        }
        if streams.iter().all(|s| s.2 >= 3) {
            return Ok(());
        }
    }
    Ok(())
}

/// Largest `moov`/`moof` box validated (real files have a few MB).
const MAX_MP4_META: u64 = 64 << 20;

/// MP4/M4A: symphonia's isomp4 reader allocates tables at the counts their
/// boxes declare (`stts`, `stsc`, `stsz`, `stco`, …), each packet at the
/// size `stsz` gives it, and some boxes at their length minus a header
/// (which underflows on a short box); and it `unwrap`s a missing `esds`
/// descriptor. So the metadata boxes (`moov`, `moof`) are read and every
/// box in them checked: inside its parent, tables that fit their box,
/// sample sizes within the file, fixed parts present, an `esds` with its
/// decoder configuration.
fn mp4_boxes<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return Ok(());
    };
    let mut pos = 0u64;
    for _ in 0..MAX_CHUNKS {
        let mut h = [0u8; 16];
        if src.seek(SeekFrom::Start(pos)).is_err() || src.read_exact(&mut h[..8]).is_err() {
            return Ok(());
        }
        let kind: [u8; 4] = [h[4], h[5], h[6], h[7]];
        let (size, header) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
            0 => (end - pos, 8),
            1 => {
                if src.read_exact(&mut h[8..16]).is_err() {
                    return Ok(());
                }
                (
                    u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
                    16,
                )
            }
            n => (u64::from(n), 8),
        };
        if size < header {
            return corrupt(&format!("an MP4 {} box of {size} bytes", fourcc(&kind)));
        }
        let fits = pos.checked_add(size).is_some_and(|e| e <= end);
        if &kind == b"moov" || &kind == b"moof" {
            if !fits || size > MAX_MP4_META {
                return corrupt(&format!(
                    "the MP4 {} box declares {size} bytes, more than the file holds or than metadata needs",
                    fourcc(&kind)
                ));
            }
            let mut payload = vec![0u8; (size - header) as usize];
            if src.read_exact(&mut payload).is_err() {
                return Ok(());
            }
            Mp4Check { file_len: end }.children(&payload, &kind)?;
        }
        if !fits {
            // The media data of a cut-off file: symphonia reports the rest.
            return Ok(());
        }
        pos += size;
    }
    Ok(())
}

fn fourcc(k: &[u8]) -> String {
    crate::text::one_line(&String::from_utf8_lossy(k), 4)
}

fn be32(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(
        d.get(at..at + 4)?.try_into().ok()?,
    )))
}

struct Mp4Check {
    file_len: u64,
}

impl Mp4Check {
    /// The boxes that make up `data`, the payload of a `parent` box.
    fn children(&self, mut data: &[u8], parent: &[u8]) -> Result<(), Failure> {
        while data.len() >= 8 {
            let size32 = be32(data, 0).unwrap_or(0);
            let kind: [u8; 4] = [data[4], data[5], data[6], data[7]];
            let (size, header) = match size32 {
                0 => (data.len() as u64, 8),
                1 => match data.get(8..16) {
                    Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0; 8])), 16),
                    None => return corrupt("a truncated MP4 box header"),
                },
                n => (n, 8),
            };
            if size < header || size > data.len() as u64 {
                return corrupt(&format!(
                    "an MP4 {} box declares {size} bytes, more than its {} box holds",
                    fourcc(&kind),
                    fourcc(parent)
                ));
            }
            let payload = &data[header as usize..size as usize];
            self.one(&kind, payload, parent)?;
            data = &data[size as usize..];
        }
        Ok(())
    }

    fn one(&self, kind: &[u8; 4], p: &[u8], parent: &[u8]) -> Result<(), Failure> {
        let short = |need: usize| {
            corrupt(&format!(
                "an MP4 {} box of {} bytes is shorter than its {need}-byte header",
                fourcc(kind),
                p.len()
            ))
        };
        match kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" | b"dinf" | b"udta"
            | b"mvex" | b"moof" | b"traf" | b"ilst" => self.children(p, kind),
            // An `ilst` item holds `data` (and `mean`/`name`) boxes.
            _ if parent == b"ilst" => self.children(p, kind),
            b"meta" => {
                // A full box in MP4, a plain container in QuickTime.
                let body = if p.get(..4) == Some(&[0, 0, 0, 0]) {
                    &p[4..]
                } else {
                    p
                };
                self.children(body, kind)
            }
            b"data" if p.len() < 8 => short(8),
            b"mean" | b"name" if p.len() < 4 => short(4),
            b"hdlr" if p.len() < 24 => short(24),
            b"stsd" => match p.get(8..) {
                Some(entries) => self.sample_entries(entries),
                None => short(8),
            },
            b"stts" | b"ctts" => self.table(kind, p, 8, 8),
            b"stsc" => self.table(kind, p, 8, 12),
            b"stco" | b"stss" => self.table(kind, p, 8, 4),
            b"co64" => self.table(kind, p, 8, 8),
            b"elst" => self.table(kind, p, 8, if p.first() == Some(&1) { 20 } else { 12 }),
            b"stsz" => {
                let (Some(sample_size), Some(_)) = (be32(p, 4), be32(p, 8)) else {
                    return short(12);
                };
                if sample_size == 0 {
                    self.table(kind, p, 12, 4)?;
                    self.packet_sizes(p[12..].chunks_exact(4).map(|c| be32(c, 0).unwrap_or(0)))
                } else {
                    self.packet_sizes(std::iter::once(sample_size))
                }
            }
            b"trun" => self.trun(p),
            b"esds" => esds(p),
            _ => Ok(()),
        }
    }

    /// A full box whose entry count (at `count_at − 4`) times `entry` bytes
    /// must fit after its fixed part of `count_at` bytes.
    fn table(&self, kind: &[u8], p: &[u8], count_at: usize, entry: u64) -> Result<(), Failure> {
        let Some(count) = be32(p, count_at - 4) else {
            return corrupt(&format!(
                "an MP4 {} box without its entry count",
                fourcc(kind)
            ));
        };
        let room = (p.len() - count_at.min(p.len())) as u64;
        if count.saturating_mul(entry) > room {
            return corrupt(&format!(
                "an MP4 {} box declares {count} entries, more than its {room} bytes hold",
                fourcc(kind)
            ));
        }
        Ok(())
    }

    /// Every packet is read into a buffer of its declared size.
    fn packet_sizes(&self, sizes: impl Iterator<Item = u64>) -> Result<(), Failure> {
        for s in sizes {
            if s > self.file_len {
                return corrupt(&format!(
                    "an MP4 sample of {s} bytes, more than the file holds"
                ));
            }
        }
        Ok(())
    }

    /// `stsd` entries: each a box whose children follow the fixed fields of
    /// an audio sample entry (28 bytes; 44 or 64 in QuickTime versions 1
    /// and 2).
    fn sample_entries(&self, mut data: &[u8]) -> Result<(), Failure> {
        while data.len() >= 8 {
            let size = be32(data, 0).unwrap_or(0);
            if size < 8 || size > data.len() as u64 {
                return corrupt(&format!(
                    "an MP4 sample description declares {size} bytes, more than its stsd box holds"
                ));
            }
            let kind = &data[4..8];
            let p = &data[8..size as usize];
            // Video, subtitle and timed-metadata entries of a video file have other fixed
            // fields (78 bytes for a visual entry, ISO 14496-12 §12.1.3) and only matter to
            // the audio decoder as something to skip.
            const NOT_AUDIO: [&[u8; 4]; 19] = [
                b"mp4v", b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09", b"av01", b"s263",
                b"jpeg", b"mjpa", b"mjpb", b"apcn", b"encv", b"tx3g", b"text", b"wvtt", b"stpp",
                b"mp4s",
            ];
            if NOT_AUDIO.iter().any(|k| k.as_slice() == kind) {
                data = &data[size as usize..];
                continue;
            }
            let version = p.get(8..10).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
            let base = match version {
                1 => 44,
                2 => 64,
                _ => 28,
            };
            if let Some(children) = p.get(base..) {
                self.children(children, kind)?;
            }
            data = &data[size as usize..];
        }
        Ok(())
    }

    /// `trun`: a sample count, optional fields by flag, then per-sample
    /// fields by flag.
    fn trun(&self, p: &[u8]) -> Result<(), Failure> {
        let (Some(vf), Some(count)) = (be32(p, 0), be32(p, 4)) else {
            return corrupt("an MP4 trun box without its sample count");
        };
        let flags = vf & 0xff_ffff;
        let fixed = 8 + 4 * ((flags & 0x1 != 0) as usize + (flags & 0x4 != 0) as usize);
        let per = 4 * [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&f| flags & f != 0)
            .count() as u64;
        let room = p.len().saturating_sub(fixed) as u64;
        if count.saturating_mul(per) > room || (per == 0 && count > self.file_len) {
            return corrupt(&format!(
                "an MP4 trun box declares {count} samples, more than it holds"
            ));
        }
        if flags & 0x200 != 0 {
            let step = per as usize;
            let at = fixed + 4 * (flags & 0x100 != 0) as usize;
            self.packet_sizes((0..count as usize).filter_map(|i| be32(p, at + i * step)))?;
        }
        Ok(())
    }
}

/// An MPEG-4 descriptor header: tag, then a length in up to four 7-bit
/// groups. Returns (tag, length, header length).
fn descriptor(d: &[u8]) -> Option<(u8, u64, usize)> {
    let tag = *d.first()?;
    let mut len = 0u64;
    for i in 1..=4 {
        let b = *d.get(i)?;
        len = (len << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((tag, len, i + 1));
        }
    }
    Some((tag, len, 5))
}

/// The descriptors in `d`, each checked to fit: (tag, body).
fn descriptors(mut d: &[u8]) -> Result<Vec<(u8, &[u8])>, Failure> {
    let mut out = Vec::new();
    // symphonia stops when two bytes or fewer are left.
    while d.len() > 2 {
        let Some((tag, len, h)) = descriptor(d) else {
            break;
        };
        if len > (d.len() - h) as u64 {
            return corrupt(&format!(
                "an MP4 descriptor declares {len} bytes, more than its esds box holds"
            ))
            .map(|_| Vec::new());
        }
        out.push((tag, &d[h..h + len as usize]));
        d = &d[h + len as usize..];
    }
    Ok(out)
}

/// `esds`: version/flags, then an ES descriptor (tag 3) holding a decoder
/// configuration (tag 4) and an SL configuration (tag 6), which symphonia
/// requires (it `unwrap`s them).
fn esds(p: &[u8]) -> Result<(), Failure> {
    let missing = || corrupt("the MP4 esds box lacks its decoder configuration");
    let Some(body) = p.get(4..) else {
        return missing();
    };
    let Some(&(_, es)) = descriptors(body)?.iter().find(|(t, _)| *t == 3) else {
        return missing();
    };
    // ES_ID, flags, and the optional fields the flags announce.
    let Some(&flags) = es.get(2) else {
        return missing();
    };
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at).unwrap_or(&0));
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let Some(rest) = es.get(at..) else {
        return missing();
    };
    let subs = descriptors(rest)?;
    let Some(&(_, dec)) = subs.iter().find(|(t, _)| *t == 4) else {
        return missing();
    };
    if !subs.iter().any(|(t, _)| *t == 6) || dec.len() < 13 {
        return missing();
    }
    descriptors(&dec[13..]).map(|_| ())
}

/// Matroska master elements symphonia 0.5 parses into their children.
const EBML_MASTERS: [u32; 30] = [
    0x1A45_DFA3,
    0x1853_8067,
    0x114D_9B74,
    0x4DBB,
    0x1549_A966,
    0x1F43_B675,
    0xA0,
    0x75A1,
    0xA6,
    0x1654_AE6B,
    0xAE,
    0xE0,
    0xE1,
    0x6D80,
    0x6240,
    0x5035,
    0x47E7,
    0x55B0,
    0x55D0,
    0x1C53_BB6B,
    0xBB,
    0xB7,
    0x1043_A770,
    0x45B9,
    0xB6,
    0x80,
    0x1254_C367,
    0x7373,
    0x63C0,
    0x67C8,
];
/// Segment-level elements: one of these ends a Cluster of unknown size.
const EBML_SEGMENT_LEVEL: [u32; 10] = [
    0x114D_9B74,
    0x1549_A966,
    0x1F43_B675,
    0x1654_AE6B,
    0x1C53_BB6B,
    0x1043_A770,
    0x1254_C367,
    0x1941_A469,
    0x1853_8067,
    0x1A45_DFA3,
];
/// Largest element allowed to run past the end of the file (the last block
/// of a cut-off download); anything larger must fit.
const MAX_EBML_TAIL: u64 = 16 << 20;
/// Elements examined (a bound on the work for absurd files; real ones have
/// a few per frame).
const MAX_EBML_ELEMENTS: usize = 20_000_000;
/// Nesting examined (chapters may nest; audio metadata is shallow).
const MAX_EBML_DEPTH: usize = 16;

/// Matroska/WebM: symphonia's reader reads every binary element into a
/// buffer of its declared size, splits laced blocks at declared frame
/// sizes (an EBML lace size is a 56-bit number), and asserts that elements
/// end where their sizes say (a failed assertion is a panic). So the
/// element tree is walked first: every element must end within its parent
/// (a container running past the end of the file is a cut-off download and
/// is allowed, as is a last element of at most [`MAX_EBML_TAIL`] bytes),
/// and laced frame sizes and the Vorbis headers' Xiph sizes must fit their
/// element.
struct Matroska<'a, S: ?Sized> {
    src: &'a mut S,
    end: u64,
    elements: usize,
    /// Where resyncs landed (each is walked once) and a scan buffer.
    resynced: Vec<u64>,
    scan: Vec<u8>,
}

/// Resyncs followed before a file is judged too damaged to check.
const MAX_EBML_RESYNCS: usize = 256;

impl<'a, S: Read + Seek + ?Sized> Matroska<'a, S> {
    fn new(src: &'a mut S) -> Result<Self, Failure> {
        let end = src.seek(SeekFrom::End(0)).map_err(Failure::Io)?;
        Ok(Matroska {
            src,
            end,
            elements: 0,
            resynced: Vec::new(),
            scan: vec![0; 4096],
        })
    }

    fn check(mut self) -> Result<(), Failure> {
        self.children(0, self.end, 0, false).map(|_| ())
    }

    /// An EBML variable-length number at the current position: (value,
    /// length, all value bits set). IDs keep their length marker.
    fn vint(&mut self, id: bool) -> Option<(u64, u64, bool)> {
        let mut b = [0u8; 9];
        self.src.read_exact(&mut b[..1]).ok()?;
        let len = b[0].leading_zeros() as usize + 1;
        if id && len > 4 {
            return None;
        }
        // A size whose first byte is 0: symphonia (release build) reads
        // eight more bytes and takes them as the size (its marker bit is
        // shifted out), so the same is done here.
        self.src.read_exact(&mut b[1..len]).ok()?;
        let mut v = if id {
            u64::from(b[0])
        } else {
            u64::from(b[0] & 0xffu8.checked_shr(len as u32).unwrap_or(0))
        };
        for &x in &b[1..len] {
            v = (v << 8) | u64::from(x);
        }
        let all = 1u64.checked_shl(7 * len as u32).map_or(u64::MAX, |x| x - 1);
        Some((v, len as u64, !id && len < 9 && v == all))
    }

    /// symphonia's `read_tag` on a byte that cannot begin an ID: it skips
    /// ahead to the next top-level element ID (Cluster, Cues, Info,
    /// SeekHead, Tags, Tracks) anywhere after it and parses on from there.
    /// Returns where that ID begins.
    fn resync(&mut self, from: u64) -> Option<u64> {
        const TOP: [u32; 6] = [
            0x1F43_B675,
            0x1C53_BB6B,
            0x1549_A966,
            0x114D_9B74,
            0x1254_C367,
            0x1654_AE6B,
        ];
        self.src.seek(SeekFrom::Start(from)).ok()?;
        let mut tag = 0u32;
        let mut at = from;
        loop {
            let n = self.src.read(&mut self.scan).ok()?;
            if n == 0 {
                return None;
            }
            for &x in &self.scan[..n] {
                tag = (tag << 8) | u32::from(x);
                at += 1;
                if at >= from + 4 && TOP.contains(&tag) {
                    return Some(at - 4);
                }
            }
        }
    }

    /// Check the elements in `[start, stop)`; returns where they ended (for
    /// a container of unknown size: at the first segment-level element).
    fn children(
        &mut self,
        start: u64,
        stop: u64,
        depth: usize,
        unknown: bool,
    ) -> Result<u64, Failure> {
        let mut pos = start;
        let mut codec: Option<Vec<u8>> = None;
        let mut private: Option<(u64, u64)> = None;
        while pos < stop {
            self.elements += 1;
            if self.elements > MAX_EBML_ELEMENTS || self.src.seek(SeekFrom::Start(pos)).is_err() {
                return Ok(stop);
            }
            let Some((id, id_len, _)) = self.vint(true) else {
                // Not an ID: follow symphonia to the next top-level element.
                // Each landing point is walked once (nested elements that
                // all resync to it would otherwise walk the rest of the file
                // again at every level).
                let Some(q) = self.resync(pos + 1) else {
                    return Ok(stop);
                };
                if self.resynced.contains(&q) {
                    return Ok(stop);
                }
                if self.resynced.len() >= MAX_EBML_RESYNCS {
                    return corrupt("the Matroska file has too many damaged elements to check")
                        .map(|_| stop);
                }
                self.resynced.push(q);
                if q < stop {
                    pos = q;
                    continue;
                }
                // Past this element's end: symphonia reads on from there.
                if depth < MAX_EBML_DEPTH {
                    self.children(q, self.end, depth + 1, false)?;
                }
                return Ok(stop);
            };
            let id = id as u32;
            if unknown && EBML_SEGMENT_LEVEL.contains(&id) {
                return Ok(pos);
            }
            let Some((size, size_len, unknown_size)) = self.vint(false) else {
                return Ok(stop);
            };
            let data = pos + id_len + size_len;
            let master = EBML_MASTERS.contains(&id);
            if unknown_size {
                if master && depth < MAX_EBML_DEPTH {
                    pos = self.children(data, stop, depth + 1, true)?;
                } else {
                    // symphonia reads an unknown size as 0 and goes on
                    // right after the header.
                    pos = data;
                }
                continue;
            }
            let elem_end = data.checked_add(size).filter(|&e| e <= stop);
            let elem_end = match elem_end {
                Some(e) => e,
                // Past the end of the file (inside a container that runs to
                // it): a cut-off download, if the element is a container or small.
                None if stop >= self.end && (master || size <= MAX_EBML_TAIL) => self.end,
                None => {
                    return corrupt(&format!(
                        "a Matroska element (id {id:#x}) declares {size} bytes, more than its parent holds"
                    ))
                    .map(|_| stop)
                }
            };
            if master && depth < MAX_EBML_DEPTH {
                self.children(data, elem_end, depth + 1, false)?;
            } else if id == 0xA3 || id == 0xA1 {
                self.block(data, elem_end - data)?;
            } else if id == 0x86 {
                codec = self.read_at(data, (elem_end - data).min(64));
            } else if id == 0x63A2 {
                private = Some((data, elem_end - data));
            }
            pos = data.saturating_add(size).max(pos + 1);
        }
        if let (Some(c), Some((at, len))) = (codec, private) {
            if c.starts_with(b"A_VORBIS") {
                if let Some(p) = self.read_at(at, len.min(MAX_EBML_TAIL)) {
                    vorbis_private(&p)?;
                }
            } else if c.starts_with(b"A_FLAC") {
                if let Some(p) = self.read_at(at, len.min(8)) {
                    flac_private(&p)?;
                }
            }
        }
        Ok(pos.min(stop))
    }

    fn read_at(&mut self, at: u64, len: u64) -> Option<Vec<u8>> {
        self.src.seek(SeekFrom::Start(at)).ok()?;
        let mut v = vec![0u8; len as usize];
        self.src.read_exact(&mut v).ok()?;
        Some(v)
    }

    /// A (Simple)Block: track, timecode, flags, then for Xiph or EBML lacing
    /// the frame sizes, which must fit in the block.
    fn block(&mut self, at: u64, len: u64) -> Result<(), Failure> {
        let Some(b) = self.read_at(at, len.min(MAX_EBML_TAIL)) else {
            return Ok(());
        };
        let Some(track_len) = b.first().map(|x| x.leading_zeros() as usize + 1) else {
            return Ok(());
        };
        let Some(&flags) = b.get(track_len + 2) else {
            return Ok(());
        };
        let lacing = (flags >> 1) & 3;
        if lacing != 1 && lacing != 3 {
            return Ok(());
        }
        let Some(&n) = b.get(track_len + 3) else {
            return Ok(());
        };
        let mut at = track_len + 4;
        let mut total: i128 = 0;
        let mut last: i128 = 0;
        let too_big = || {
            corrupt(&format!(
                "a Matroska block's laced frame sizes exceed its {len} bytes"
            ))
        };
        for i in 0..usize::from(n) {
            let size: i128 = if lacing == 1 {
                let mut s = 0i128;
                loop {
                    let Some(&x) = b.get(at) else { return Ok(()) };
                    at += 1;
                    s += i128::from(x);
                    if x != 255 {
                        break;
                    }
                }
                s
            } else {
                let Some(&first) = b.get(at) else {
                    return Ok(());
                };
                let l = first.leading_zeros() as usize + 1;
                let Some(bytes) = b.get(at..at + l).filter(|_| l <= 8) else {
                    return Ok(());
                };
                at += l;
                let mut v = i128::from(first & (0xffu8.checked_shr(l as u32).unwrap_or(0)));
                for &x in &bytes[1..] {
                    v = (v << 8) | i128::from(x);
                }
                if i == 0 {
                    v
                } else {
                    // Signed: subtract half the range.
                    last + v - ((1i128 << (7 * l - 1)) - 1)
                }
            };
            if size < 0 {
                return too_big();
            }
            last = size;
            total += size;
            if total > i128::from(len) {
                return too_big();
            }
        }
        Ok(())
    }
}

/// An A_VORBIS CodecPrivate: a count, Xiph-laced sizes of the first headers,
/// then the headers; the sizes must fit.
fn vorbis_private(p: &[u8]) -> Result<(), Failure> {
    let Some(&n) = p.first() else {
        return Ok(());
    };
    let mut at = 1;
    let mut total = 0u64;
    for _ in 0..n {
        loop {
            let Some(&x) = p.get(at) else { return Ok(()) };
            at += 1;
            total += u64::from(x);
            if x != 255 {
                break;
            }
        }
    }
    if total > p.len() as u64 {
        return corrupt("the Vorbis headers of a Matroska track declare more bytes than they hold");
    }
    Ok(())
}

/// An A_FLAC CodecPrivate: `fLaC`, then metadata blocks. symphonia 0.5
/// (`flac_extra_data_from_codec_private`) reads the first block header once
/// and, unless it is STREAMINFO, skips its length over and over: a first
/// block of length 0 loops forever, any other ends in an error after
/// skipping to the end. So the first block must be STREAMINFO.
fn flac_private(p: &[u8]) -> Result<(), Failure> {
    match p {
        [b'f', b'L', b'a', b'C', header, ..] if header & 0x7f != 0 => {
            corrupt("the FLAC header of a Matroska track does not begin with its STREAMINFO block")
        }
        _ => Ok(()),
    }
}

/// A float rate as symphonia reads it (`as u32`, truncating; NaN is 0).
fn rate_to_u64(rate: f64) -> u64 {
    if rate.is_finite() && rate >= 0.0 {
        // Saturates for huge values, which `check_rate` refuses.
        rate as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn wav(tag: u16, channels: u16, rate: u32, block_align: u16) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
        v.extend_from_slice(b"LIST\x03\0\0\0abc\0"); // odd chunk, padded
        v.extend_from_slice(b"fmt \x10\0\0\0");
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * 2).to_le_bytes());
        v.extend_from_slice(&block_align.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v
    }

    fn run(v: &[u8]) -> Result<(), Failure> {
        check(&v[..16.min(v.len())], &mut Cursor::new(v.to_vec()))
    }

    #[test]
    fn only_the_first_marker_past_id3_is_checked() {
        // A FLAC header whose first block claims 16 MB: refused wherever
        // symphonia would start on it.
        let bad_flac = b"fLaC\x00\xff\xff\xff".to_vec();
        let id3 = |body: &[u8]| {
            let n = body.len();
            let mut v = b"ID3\x04\x00\x00".to_vec();
            v.extend([
                (n >> 21) as u8 & 0x7f,
                (n >> 14) as u8 & 0x7f,
                (n >> 7) as u8 & 0x7f,
                n as u8 & 0x7f,
            ]);
            v.extend_from_slice(body);
            v
        };
        let mut behind_tag = id3(b"title");
        behind_tag.extend_from_slice(&bad_flac);
        behind_tag.extend_from_slice(&[0; 64]);
        assert!(matches!(run(&behind_tag), Err(Failure::Corrupt(_))));
        let mut behind_junk = vec![7u8; 100];
        behind_junk.extend_from_slice(&bad_flac);
        behind_junk.extend_from_slice(&[0; 64]);
        assert!(matches!(run(&behind_junk), Err(Failure::Corrupt(_))));
        // An MP3: the marker inside its tag (cover art) and the one among
        // its frames are not where symphonia starts, so they are not checked.
        let mut mp3 = id3(&bad_flac);
        mp3.extend_from_slice(&[0xff, 0xfb, 0x90, 0x00]);
        mp3.extend_from_slice(&bad_flac);
        mp3.extend_from_slice(&[0; 64]);
        assert!(run(&mp3).is_ok());
    }

    #[test]
    fn wave_fields() {
        assert!(run(&wav(1, 2, 44_100, 4)).is_ok());
        assert!(matches!(run(&wav(1, 1, 0, 2)), Err(Failure::SampleRate(0))));
        assert!(matches!(
            run(&wav(1, 1, u32::MAX, 2)),
            Err(Failure::SampleRate(4_294_967_295))
        ));
        assert!(matches!(
            run(&wav(1, 0, 16_000, 2)),
            Err(Failure::Corrupt(_))
        ));
        assert!(matches!(
            run(&wav(1, 1, 16_000, 0)),
            Err(Failure::Corrupt(_))
        ));
        assert!(matches!(
            run(&wav(2, 2, 16_000, 10)),
            Err(Failure::Corrupt(_))
        ));
        assert!(run(&wav(2, 2, 16_000, 512)).is_ok());
        assert!(matches!(
            run(&wav(0x11, 1, 16_000, 60_000)),
            Err(Failure::Corrupt(_))
        ));
        // Not a WAV, or a header cut short: left to symphonia.
        assert!(run(b"hello world, not audio").is_ok());
        assert!(run(&wav(1, 1, 0, 2)[..30]).is_ok());
    }

    #[test]
    fn chunks_larger_than_the_file_are_refused_before_symphonia_allocates_them() {
        let mut v = b"caff\0\x01\0\0kuki".to_vec();
        v.extend_from_slice(&0xf8_0000_0000u64.to_be_bytes());
        v.extend_from_slice(&[0; 64]);
        let e = run(&v);
        assert!(
            matches!(&e, Err(Failure::Corrupt(m)) if m.contains("kuki chunk declares")),
            "{e:?}"
        );
        let mut w = wav(1, 1, 16_000, 2);
        w.extend_from_slice(b"LIST\xff\xff\xff\xff");
        assert!(matches!(run(&w), Err(Failure::Corrupt(_))));
        // A data chunk of unknown length (streamed WAV) is fine.
        let mut w = wav(1, 1, 16_000, 2);
        w.extend_from_slice(b"data\xff\xff\xff\xff\0\0");
        assert!(run(&w).is_ok());
    }

    #[test]
    fn comment_lengths_must_fit_their_block() {
        let comment = |len: u32| {
            let mut c = 3u32.to_le_bytes().to_vec();
            c.extend_from_slice(b"abc");
            c.extend_from_slice(&1u32.to_le_bytes());
            c.extend_from_slice(&len.to_le_bytes());
            c.extend_from_slice(b"TITLE=x");
            c
        };
        assert!(vorbis_comment(&comment(7)).is_ok());
        assert!(matches!(
            vorbis_comment(&comment(2_362_046_719)),
            Err(Failure::Corrupt(_))
        ));
        // In a FLAC stream, after STREAMINFO.
        let flac = |c: &[u8]| {
            let mut v = b"fLaC\x00\x00\x00\x22".to_vec();
            v.extend_from_slice(&[0; 34]);
            v.push(0x84);
            v.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            v.extend_from_slice(c);
            v
        };
        assert!(run(&flac(&comment(7))).is_ok());
        assert!(matches!(
            run(&flac(&comment(1 << 31))),
            Err(Failure::Corrupt(_))
        ));
        // In an Ogg page (Vorbis comment header, one packet).
        let ogg = |c: &[u8]| {
            let mut p = b"\x03vorbis".to_vec();
            p.extend_from_slice(c);
            let mut v = b"OggS\0\0".to_vec();
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&7u32.to_le_bytes());
            v.extend_from_slice(&[0; 8]);
            v.push(1);
            v.push(p.len() as u8);
            v.extend_from_slice(&p);
            v
        };
        assert!(run(&ogg(&comment(7))).is_ok());
        assert!(matches!(
            run(&ogg(&comment(1 << 31))),
            Err(Failure::Corrupt(_))
        ));
    }

    #[test]
    fn mp4_tables_and_descriptors_must_fit() {
        let bx = |kind: &[u8], payload: &[u8]| {
            let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(payload);
            v
        };
        let file = |stbl_child: Vec<u8>| {
            let moov = bx(
                b"moov",
                &bx(
                    b"trak",
                    &bx(b"mdia", &bx(b"minf", &bx(b"stbl", &stbl_child))),
                ),
            );
            [bx(b"ftyp", b"M4A \0\0\0\0"), moov, bx(b"mdat", &[0; 64])].concat()
        };
        // stts with one entry: fine; claiming 2^31 entries: refused.
        let stts = |n: u32| [vec![0, 0, 0, 0], n.to_be_bytes().to_vec(), vec![0; 8]].concat();
        assert!(run(&file(bx(b"stts", &stts(1)))).is_ok());
        assert!(matches!(
            run(&file(bx(b"stts", &stts(1 << 31)))),
            Err(Failure::Corrupt(_))
        ));
        // A sample of 4 GB.
        let stsz = [
            vec![0; 4],
            0u32.to_be_bytes().to_vec(),
            1u32.to_be_bytes().to_vec(),
            u32::MAX.to_be_bytes().to_vec(),
        ]
        .concat();
        assert!(matches!(
            run(&file(bx(b"stsz", &stsz))),
            Err(Failure::Corrupt(_))
        ));
        // A child box larger than its parent.
        let mut bad = bx(b"stco", &[0; 8]);
        bad[3] = 200;
        assert!(matches!(run(&file(bad)), Err(Failure::Corrupt(_))));
        // An esds without its decoder configuration (symphonia unwraps it).
        let entry = |esds_payload: &[u8]| {
            let mut e = vec![0u8; 28];
            e.extend_from_slice(&bx(b"esds", esds_payload));
            [vec![0, 0, 0, 0, 0, 0, 0, 1], bx(b"mp4a", &e)].concat()
        };
        assert!(matches!(
            run(&file(bx(b"stsd", &entry(&[0, 0, 0, 0, 3, 3, 0, 1, 0])))),
            Err(Failure::Corrupt(m)) if m.contains("decoder configuration")
        ));
        let mut ok = vec![0, 0, 0, 0, 3, 25, 0, 1, 0, 4, 17, 0x40, 0x15];
        ok.extend_from_slice(&[0; 11]);
        ok.extend_from_slice(&[5, 2, 0x14, 0x08, 6, 1, 2]);
        assert!(run(&file(bx(b"stsd", &entry(&ok)))).is_ok());
    }

    #[test]
    fn matroska_elements_must_fit_their_parents() {
        fn el(id: &[u8], payload: &[u8]) -> Vec<u8> {
            let mut v = id.to_vec();
            v.push(0x01); // an 8-byte size
            v.extend_from_slice(&(payload.len() as u64).to_be_bytes()[1..]);
            v.extend_from_slice(payload);
            v
        }
        let file = |cluster: Vec<u8>| {
            let header = el(&[0x1a, 0x45, 0xdf, 0xa3], &el(&[0x42, 0x82], b"webm"));
            [
                header,
                el(
                    &[0x18, 0x53, 0x80, 0x67],
                    &el(&[0x1f, 0x43, 0xb6, 0x75], &cluster),
                ),
            ]
            .concat()
        };
        let block = |lacing: u8, sizes: &[u8]| {
            let mut b = vec![0x81, 0, 0, lacing << 1];
            b.extend_from_slice(sizes);
            b.extend_from_slice(&[0; 40]);
            el(&[0xa3], &b)
        };
        let r = run(&file(block(0, &[])));
        assert!(r.is_ok(), "{r:?}");
        assert!(run(&file(block(1, &[1, 10]))).is_ok());
        // Xiph lacing claiming 255·100 bytes in a 40-byte block.
        let mut xiph = vec![1];
        xiph.extend_from_slice(&[255; 100]);
        assert!(matches!(
            run(&file(block(1, &xiph))),
            Err(Failure::Corrupt(_))
        ));
        // EBML lacing with a 56-bit first size.
        let ebml = [1, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            run(&file(block(3, &ebml))),
            Err(Failure::Corrupt(_))
        ));
        // A child element larger than its (complete) parent.
        let mut inner = el(&[0xe7], &[0]);
        inner[4] = 0x40; // Timecode claims 2^46 bytes... inside the cluster
        let f = [file(inner), el(&[0x1c, 0x53, 0xbb, 0x6b], &[])].concat();
        let _ = run(&f); // (either refused or left to symphonia; never a panic)
                         // A binary element of 2^40 bytes inside a complete Tracks element.
        let mut big = el(&[0x63, 0xa2], &[0; 4]);
        big[3..10].copy_from_slice(&(1u64 << 40).to_be_bytes()[1..]);
        let tracks = el(&[0x16, 0x54, 0xae, 0x6b], &el(&[0xae], &big));
        let f = [
            el(&[0x1a, 0x45, 0xdf, 0xa3], &[]),
            el(
                &[0x18, 0x53, 0x80, 0x67],
                &[tracks, el(&[0x1f, 0x43, 0xb6, 0x75], &block(0, &[]))].concat(),
            ),
        ]
        .concat();
        assert!(matches!(run(&f), Err(Failure::Corrupt(_))));
        // A cut-off file: the last block runs past the end (small): allowed.
        let mut cut = file(block(0, &[]));
        cut.truncate(cut.len() - 10);
        assert!(run(&cut).is_ok());
        // A byte that cannot begin an ID: symphonia skips to the next
        // top-level ID (here a Cluster) and reads on, so the walk does too.
        let resynced = [
            el(&[0x1a, 0x45, 0xdf, 0xa3], &[]),
            el(
                &[0x18, 0x53, 0x80, 0x67],
                &[
                    vec![0x00, 0x42],
                    el(&[0x1f, 0x43, 0xb6, 0x75], &block(3, &ebml)),
                ]
                .concat(),
            ),
        ]
        .concat();
        assert!(matches!(run(&resynced), Err(Failure::Corrupt(_))));
        // An element of unknown size that is not a container: symphonia
        // takes it as empty and reads on, into a DocType of 2^54 bytes.
        let mut doc_type = el(&[0x42, 0x82], b"matroska");
        doc_type[3..10].copy_from_slice(&(1u64 << 54).to_be_bytes()[1..]);
        let unknown = [
            vec![0x1a, 0x45, 0xdf, 0xa3, 0xff, 0xbf, 0xff],
            doc_type,
            vec![0; 64],
        ]
        .concat();
        assert!(matches!(run(&unknown), Err(Failure::Corrupt(_))));
        // A FLAC track whose CodecPrivate begins with a 0-byte PADDING
        // block: symphonia would skip 0 bytes forever.
        let flac_track = |first_block: u8| {
            let entry = [
                el(&[0x86], b"A_FLAC"),
                el(
                    &[0x63, 0xa2],
                    &[b'f', b'L', b'a', b'C', first_block, 0, 0, 0],
                ),
            ]
            .concat();
            let tracks = el(&[0x16, 0x54, 0xae, 0x6b], &el(&[0xae], &entry));
            [
                el(&[0x1a, 0x45, 0xdf, 0xa3], &[]),
                el(&[0x18, 0x53, 0x80, 0x67], &tracks),
            ]
            .concat()
        };
        assert!(matches!(
            run(&flac_track(0x81)),
            Err(Failure::Corrupt(m)) if m.contains("STREAMINFO")
        ));
        assert!(run(&flac_track(0x80)).is_ok());
    }

    #[test]
    fn caf_packet_tables_must_fit() {
        let caf = |count: i64, entries: &[u8]| {
            let mut v = b"caff\0\x01\0\0desc".to_vec();
            v.extend_from_slice(&32u64.to_be_bytes());
            v.extend_from_slice(&16_000f64.to_be_bytes());
            v.extend_from_slice(b"aac \0\0\0\0\0\0\0\0\0\0\x04\0\0\0\0\x01\0\0\0\0");
            let mut pakt = count.to_be_bytes().to_vec();
            pakt.extend_from_slice(&[0; 16]);
            pakt.extend_from_slice(entries);
            v.extend_from_slice(b"pakt");
            v.extend_from_slice(&(pakt.len() as u64).to_be_bytes());
            v.extend_from_slice(&pakt);
            v
        };
        assert!(run(&caf(2, &[10, 12])).is_ok());
        let e = run(&caf(1 << 62, &[10, 12]));
        assert!(
            matches!(&e, Err(Failure::Corrupt(m)) if m.contains("packet table")),
            "{e:?}"
        );
        // A packet of 2^35 bytes.
        assert!(matches!(
            run(&caf(1, &[0x81, 0x80, 0x80, 0x80, 0x80, 0])),
            Err(Failure::Corrupt(_))
        ));
    }

    #[test]
    fn aiff_and_caf_rates() {
        // 44100 Hz as an 80-bit extended: exponent 16383 + 15, mantissa 44100 << 48.
        let comm = |exp: u16, mant: u64| {
            let mut v = b"FORM\0\0\0\0AIFFCOMM\0\0\0\x12".to_vec();
            v.extend_from_slice(&1i16.to_be_bytes());
            v.extend_from_slice(&0u32.to_be_bytes());
            v.extend_from_slice(&16i16.to_be_bytes());
            v.extend_from_slice(&exp.to_be_bytes());
            v.extend_from_slice(&mant.to_be_bytes());
            v
        };
        assert!(run(&comm(16383 + 15, 44_100u64 << 48)).is_ok());
        assert!(matches!(
            run(&comm(16383 - 1, 1 << 63)),
            Err(Failure::SampleRate(0))
        ));
        let desc = |rate: f64| {
            let mut v = b"caff\0\x01\0\0desc".to_vec();
            v.extend_from_slice(&32u64.to_be_bytes());
            v.extend_from_slice(&rate.to_be_bytes());
            v.extend_from_slice(b"lpcm\0\0\0\0\0\0\0\x02\0\0\0\x01\0\0\0\x01\0\0\0\x10");
            v
        };
        assert!(run(&desc(48_000.0)).is_ok());
        assert!(matches!(run(&desc(0.25)), Err(Failure::SampleRate(0))));
        assert!(matches!(run(&desc(f64::NAN)), Err(Failure::SampleRate(0))));
    }
}
