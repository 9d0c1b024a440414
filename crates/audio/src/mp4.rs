//! MP4/M4A edit lists (`moov/trak/edts/elst`).
//!
//! AAC encoders prepend priming samples (1024 for FFmpeg's encoder, 2112 for
//! Apple's) and record in the edit list where the real audio starts and how
//! long it lasts. FFmpeg, and therefore faster-whisper, applies the edit list;
//! symphonia 0.5 does not, which would shift every timestamp by 64–132 ms.
//! This module reads the first audio track's edit list so the decoder can trim
//! the same samples.

use std::io::{Read, Seek, SeekFrom};

/// The part of an audio track's edit list the decoder applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edit {
    /// Silence to insert first (a leading empty edit), in seconds.
    pub delay_s: f64,
    /// Media to skip at the start (the first real edit's media time), in seconds.
    pub skip_s: f64,
    /// Length of the first real edit in seconds, when stated.
    pub duration_s: Option<f64>,
}

/// Largest `moov` box read into memory (real files have a few MB at most).
const MAX_MOOV: u64 = 64 << 20;

/// Read the edit list of the first sound track, if the source is an MP4 with
/// one. Any parsing problem yields `None` (decode without trimming).
pub(crate) fn edit_list<S: Read + Seek + ?Sized>(src: &mut S) -> Option<Edit> {
    let end = src.seek(SeekFrom::End(0)).ok()?;
    let mut pos = 0u64;
    while pos + 8 <= end {
        src.seek(SeekFrom::Start(pos)).ok()?;
        let mut h = [0u8; 16];
        src.read_exact(&mut h[..8]).ok()?;
        let mut size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let mut header = 8;
        if size == 1 {
            src.read_exact(&mut h[8..16]).ok()?;
            size = u64::from_be_bytes(h[8..16].try_into().ok()?);
            header = 16;
        } else if size == 0 {
            size = end - pos;
        }
        if size < header {
            return None;
        }
        if &h[4..8] == b"moov" {
            let len = size - header;
            // Allocate only what the file can hold: a declared size past its
            // end is a damaged box.
            if len > MAX_MOOV || pos.checked_add(size)? > end {
                return None;
            }
            let mut moov = vec![0u8; len as usize];
            src.read_exact(&mut moov).ok()?;
            return parse_moov(&moov);
        }
        pos = pos.checked_add(size)?;
    }
    None
}

/// Child boxes of a box payload: `(type, payload)`.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes(data[0..4].try_into().ok()?) as usize;
        let (size, header) = match size32 {
            0 => (data.len(), 8),
            1 => (
                usize::try_from(u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)).ok()?,
                16,
            ),
            n => (n, 8),
        };
        if size < header || size > data.len() {
            return None;
        }
        let kind = &data[4..8];
        let payload = &data[header..size];
        data = &data[size..];
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// Timescale of an `mvhd` or `mdhd` payload (same layout for the field).
fn timescale(full_box: &[u8]) -> Option<u32> {
    let at = if *full_box.first()? == 1 { 20 } else { 12 };
    be_u32(full_box, at).filter(|&t| t > 0)
}

fn parse_moov(moov: &[u8]) -> Option<Edit> {
    let movie_scale = f64::from(timescale(child(moov, b"mvhd")?)?);
    for (kind, trak) in boxes(moov) {
        if kind != b"trak" {
            continue;
        }
        let Some(mdia) = child(trak, b"mdia") else {
            continue;
        };
        // hdlr: version/flags, pre_defined, then the handler type.
        if child(mdia, b"hdlr").and_then(|h| h.get(8..12)) != Some(b"soun") {
            continue;
        }
        let media_scale = f64::from(timescale(child(mdia, b"mdhd")?)?);
        let elst = child(child(trak, b"edts")?, b"elst")?;
        let version = *elst.first()?;
        let count = be_u32(elst, 4)? as usize;
        let entry = if version == 1 { 20 } else { 12 };
        let mut edit = Edit {
            delay_s: 0.0,
            skip_s: 0.0,
            duration_s: None,
        };
        for i in 0..count.min(16) {
            let at = 8 + i * entry;
            let (duration, media_time) = if version == 1 {
                (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64)
            } else {
                (
                    u64::from(be_u32(elst, at)?),
                    i64::from(be_u32(elst, at + 4)? as i32),
                )
            };
            if media_time == -1 {
                // An empty edit: the track starts later.
                edit.delay_s += duration as f64 / movie_scale;
                continue;
            }
            edit.skip_s = media_time.max(0) as f64 / media_scale;
            edit.duration_s = (duration > 0).then(|| duration as f64 / movie_scale);
            return Some(edit);
        }
        return None;
    }
    None
}

/// Apply an edit to 16 kHz samples.
pub(crate) fn apply<T: Copy + Default>(samples: Vec<T>, edit: Edit, rate: f64) -> Vec<T> {
    let skip = ((edit.skip_s * rate).round() as usize).min(samples.len());
    let mut out: Vec<T> = vec![T::default(); (edit.delay_s * rate).round() as usize];
    let body = &samples[skip..];
    let keep = edit.duration_s.map_or(body.len(), |d| {
        ((d * rate).round() as usize).min(body.len())
    });
    out.extend_from_slice(&body[..keep]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn mp4(elst_entries: &[(u32, i32)]) -> Vec<u8> {
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        let mut mdhd = vec![0u8; 24];
        mdhd[12..16].copy_from_slice(&44100u32.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"soun");
        let mut elst = vec![0u8; 8];
        elst[4..8].copy_from_slice(&(elst_entries.len() as u32).to_be_bytes());
        for &(d, t) in elst_entries {
            elst.extend_from_slice(&d.to_be_bytes());
            elst.extend_from_slice(&t.to_be_bytes());
            elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let mdia = [bx(b"mdhd", &mdhd), bx(b"hdlr", &hdlr)].concat();
        let trak = [bx(b"edts", &bx(b"elst", &elst)), bx(b"mdia", &mdia)].concat();
        let moov = [bx(b"mvhd", &mvhd), bx(b"trak", &trak)].concat();
        [
            bx(b"ftyp", b"M4A \0\0\0\0"),
            bx(b"mdat", &[0; 32]),
            bx(b"moov", &moov),
        ]
        .concat()
    }

    #[test]
    fn reads_priming_skip_and_duration() {
        let file = mp4(&[(11_000, 2112)]);
        let e = edit_list(&mut std::io::Cursor::new(file)).unwrap();
        assert!((e.skip_s - 2112.0 / 44100.0).abs() < 1e-12);
        assert_eq!(e.duration_s, Some(11.0));
        assert_eq!(e.delay_s, 0.0);
        let out = apply(vec![1.0; 20_000], e, 16_000.0);
        // 2112 priming samples at 44.1 kHz are 766 samples at 16 kHz.
        assert_eq!(out.len(), 20_000 - 766);
    }

    #[test]
    fn leading_empty_edit_delays() {
        let file = mp4(&[(500, -1), (1000, 0)]);
        let e = edit_list(&mut std::io::Cursor::new(file)).unwrap();
        assert_eq!((e.delay_s, e.skip_s, e.duration_s), (0.5, 0.0, Some(1.0)));
        let out = apply(vec![1.0; 20_000], e, 16_000.0);
        assert_eq!(out.len(), 8000 + 16_000);
        assert_eq!(out[7999], 0.0);
    }

    #[test]
    fn garbage_gives_none() {
        assert_eq!(
            edit_list(&mut std::io::Cursor::new(vec![0xffu8; 100])),
            None
        );
        let mut f = mp4(&[(11_000, 2112)]);
        f.truncate(f.len() - 10);
        assert_eq!(edit_list(&mut std::io::Cursor::new(f)), None);
    }
}
