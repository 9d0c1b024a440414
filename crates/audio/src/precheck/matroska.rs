//! Matroska/WebM elements.

use std::io::{Read, Seek, SeekFrom};

use super::corrupt;
use crate::decode::Failure;

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
pub(super) struct Matroska<'a, S: ?Sized> {
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
    pub(super) fn new(src: &'a mut S) -> Result<Self, Failure> {
        let end = src.seek(SeekFrom::End(0)).map_err(Failure::Io)?;
        Ok(Matroska {
            src,
            end,
            elements: 0,
            resynced: Vec::new(),
            scan: vec![0; 4096],
        })
    }

    pub(super) fn check(mut self) -> Result<(), Failure> {
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
