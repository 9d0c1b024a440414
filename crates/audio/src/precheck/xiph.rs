//! FLAC metadata blocks and Ogg comment headers.

use std::io::{Read, Seek, SeekFrom};

use super::{corrupt, MAX_CHUNKS, MAX_FLAC_BLOCK};
use crate::decode::Failure;

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
pub(super) fn vorbis_comment(data: &[u8]) -> Result<(), Failure> {
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

/// FLAC metadata blocks: each must fit in the file, and the comment and
/// picture blocks must fit their own fields.
pub(super) fn flac_metadata<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
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
pub(super) fn ogg_comments<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
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
