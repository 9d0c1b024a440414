//! MP4/M4A boxes.

use std::io::{Read, Seek, SeekFrom};

use super::{corrupt, MAX_CHUNKS};
use crate::decode::Failure;

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
pub(super) fn mp4_boxes<S: Read + Seek + ?Sized>(src: &mut S) -> Result<(), Failure> {
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
    vkw_guard::one_line(&String::from_utf8_lossy(k), 4)
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
