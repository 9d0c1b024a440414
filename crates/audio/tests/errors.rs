//! Bad inputs give one-line errors that name the file, never a panic; damaged files decode
//! as far as they can (policy documented on `decode_bytes`).

mod common;

use common::{fixture, wav_mono16};
use std::path::Path;
use vkw_audio::{decode_bytes, load_audio, AudioError};

fn ffmpeg_available() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn one_line_naming(err: &AudioError, name: &str) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    assert!(
        msg.starts_with(name),
        "message does not start with {name}: {msg}"
    );
    println!("{msg}");
    msg
}

#[test]
fn missing_file() {
    let p = Path::new("/definitely/not/here/talk.wav");
    let err = load_audio(p).expect_err("missing");
    assert!(matches!(err, AudioError::NotFound { .. }), "{err:?}");
    one_line_naming(&err, "/definitely/not/here/talk.wav");
}

#[test]
fn empty_file_and_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("empty.mp3");
    std::fs::write(&p, b"").expect("write");
    let err = load_audio(&p).expect_err("empty");
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
    one_line_naming(&err, &p.display().to_string());

    let err = load_audio(dir.path()).expect_err("directory");
    assert!(matches!(err, AudioError::NotAFile { .. }), "{err:?}");

    let err = decode_bytes(Vec::new(), Some("wav"), "upload.wav").expect_err("empty bytes");
    assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
}

#[test]
fn a_wav_with_no_frames_is_empty_audio_but_a_cut_one_is_an_error() {
    // A well-formed recording of zero length decodes to no samples (faster-whisper
    // transcribes it to no segments), not to "damaged".
    let s =
        decode_bytes(wav_mono16(16_000, 0, &[]), Some("wav"), "silence.wav").expect("zero frames");
    assert!(s.is_empty(), "{} samples", s.len());
    // The same header declaring 1 s of data that is not there is cut off.
    let err =
        decode_bytes(wav_mono16(16_000, 32_000, &[]), Some("wav"), "cut.wav").expect_err("cut");
    assert!(
        matches!(
            err,
            AudioError::Corrupt { .. } | AudioError::Truncated { .. } | AudioError::Ffmpeg { .. }
        ),
        "{err:?}"
    );
    one_line_naming(&err, "cut.wav");
}

#[test]
fn text_file_is_not_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["notes.txt", "notes.wav", "notes.mp3"] {
        let p = dir.path().join(name);
        std::fs::write(&p, "These are meeting notes, not audio.\n".repeat(20)).expect("write");
        let err = load_audio(&p).expect_err(name);
        let msg = one_line_naming(&err, &p.display().to_string());
        if ffmpeg_available() {
            assert!(
                matches!(err, AudioError::Ffmpeg { .. } | AudioError::Corrupt { .. }),
                "{err:?}"
            );
        } else {
            assert!(
                matches!(
                    err,
                    AudioError::Unsupported { .. } | AudioError::Corrupt { .. }
                ),
                "{err:?}"
            );
            if matches!(err, AudioError::Unsupported { .. }) {
                assert!(msg.contains("install ffmpeg"), "{msg}");
            }
        }
    }
}

#[test]
fn truncated_files_are_reported() {
    // WAV (data size), FLAC (STREAMINFO) and this MP3 (Info header) declare
    // their length: a file cut in half is an error that says how much is there.
    for (rel, ext) in [
        ("data/jfk/jfk.wav", "wav"),
        ("data/jfk/jfk.flac", "flac"),
        ("data/jfk/jfk.mp3", "mp3"),
    ] {
        let bytes = std::fs::read(fixture(rel)).expect(rel);
        decode_bytes(bytes.clone(), Some(ext), rel).expect(rel);
        match decode_bytes(bytes[..bytes.len() / 2].to_vec(), Some(ext), rel) {
            Err(e @ AudioError::Truncated { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("11.00 s") && msg.starts_with(rel), "{msg}");
            }
            Ok(_) => panic!("{rel} cut in half decoded without an error"),
            Err(e) => panic!("{rel} cut in half: unexpected error {e}"),
        }
    }
}

#[test]
fn header_only_or_broken_header_is_an_error() {
    let wav = std::fs::read(fixture("data/jfk/jfk.wav")).expect("jfk.wav");
    // RIFF header and fmt chunk but no sample data.
    for cut in [12, 30, 44, 60] {
        let err = decode_bytes(wav[..cut].to_vec(), Some("wav"), "cut.wav").expect_err("cut");
        one_line_naming(&err, "cut.wav");
    }
    let flac = std::fs::read(fixture("data/jfk/jfk.flac")).expect("jfk.flac");
    let err = decode_bytes(flac[..10].to_vec(), Some("flac"), "cut.flac").expect_err("cut");
    one_line_naming(&err, "cut.flac");
}

#[test]
fn damaged_inputs_never_panic() {
    // Prefixes, bit flips and garbage: every call returns (Ok or Err), none panics.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (rel, ext) in [
        ("data/jfk/jfk.wav", "wav"),
        ("data/jfk/jfk.flac", "flac"),
        ("data/jfk/jfk.mp3", "mp3"),
        ("data/fw_testdata/stereo_diarization.wav", "wav"),
    ] {
        let bytes = std::fs::read(fixture(rel)).expect(rel);
        for i in 0..12 {
            let cut = (next() as usize) % bytes.len().min(4096 * (i + 1));
            let _ = decode_bytes(bytes[..cut].to_vec(), Some(ext), rel);
            let mut flipped = bytes[..bytes.len().min(64 * 1024)].to_vec();
            for _ in 0..20 {
                let at = (next() as usize) % flipped.len();
                flipped[at] ^= (next() & 0xff) as u8;
            }
            let _ = decode_bytes(flipped, Some(ext), rel);
        }
    }
    let garbage: Vec<u8> = (0..10_000).map(|_| (next() & 0xff) as u8).collect();
    for ext in [
        None,
        Some("wav"),
        Some("mp3"),
        Some("flac"),
        Some("ogg"),
        Some("m4a"),
    ] {
        let r = decode_bytes(garbage.clone(), ext, "garbage.bin");
        if let Err(e) = r {
            one_line_naming(&e, "garbage.bin");
        }
    }
}

#[test]
fn stereo_wav_downmix() {
    // fw_testdata/stereo_diarization.wav: 16 kHz stereo 16-bit; the mono mix is (L+R)/2,
    // rounded to 16 bits (FFmpeg's default matrix for stereo -> mono, normalised).
    let (rate, ch, raw) = common::read_wav_s16("data/fw_testdata/stereo_diarization.wav");
    assert_eq!((rate, ch), (16000, 2));
    let ours = load_audio(&fixture("data/fw_testdata/stereo_diarization.wav")).expect("stereo");
    assert_eq!(ours.len(), raw.len() / 2);
    for (i, &y) in ours.iter().enumerate() {
        let mean = (f64::from(raw[2 * i]) + f64::from(raw[2 * i + 1])) / 2.0;
        assert!((f64::from(y) * 32768.0 - mean).abs() <= 0.5, "sample {i}");
    }
}

#[test]
fn opus_decodes_without_ffmpeg() {
    // Opus is decoded natively now (bundled libopus): a minimal Ogg Opus stream (five
    // 20 ms packets of one-byte CELT silence) decodes with the ffmpeg fallback disabled.
    let limits = vkw_audio::Limits {
        ffmpeg: None,
        ..Default::default()
    };
    let s = vkw_audio::decode_bytes_with(ogg_opus_headers(), Some("opus"), "input.opus", &limits)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.is_empty() && s.len() <= 5 * 320, "{} samples", s.len());
    assert!(s.iter().all(|&x| x.abs() < 1e-3));
}

/// One Ogg page (RFC 3533) holding `body` as a single packet.
fn ogg_page(header_type: u8, seq: u32, granule: u64, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 255);
    let mut page = b"OggS".to_vec();
    page.push(0); // version
    page.push(header_type);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&0x5eed_u32.to_le_bytes()); // serial
    page.extend_from_slice(&seq.to_le_bytes());
    page.extend_from_slice(&[0; 4]); // CRC, filled below
    page.push(1);
    page.push(body.len() as u8);
    page.extend_from_slice(body);
    // CRC-32, polynomial 0x04c11db7, MSB first, initial 0, over the page with CRC = 0.
    let mut crc = 0u32;
    for &b in &page {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

/// A mono Ogg Opus stream (RFC 7845): the two header pages and a few audio pages (their
/// packets are silence frames: TOC 0xf8 = CELT FB 20 ms, code 0, no payload).
fn ogg_opus_headers() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&16000u32.to_le_bytes()); // input sample rate
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&4u32.to_le_bytes());
    tags.extend_from_slice(b"test");
    tags.extend_from_slice(&0u32.to_le_bytes());
    let mut out = ogg_page(0x02, 0, 0, &head);
    out.extend(ogg_page(0x00, 1, 0, &tags));
    for i in 0..5u32 {
        let flags = if i == 4 { 0x04 } else { 0x00 };
        out.extend(ogg_page(flags, 2 + i, u64::from(i + 1) * 960, &[0xf8]));
    }
    out
}
