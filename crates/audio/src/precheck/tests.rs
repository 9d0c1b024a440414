use super::xiph::vorbis_comment;
use super::*;
use std::io::Cursor;

fn wav(tag: u16, channels: u16, rate: u32, block_align: u16) -> Vec<u8> {
    let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
    v.extend_from_slice(b"LIST\x03\0\0\0abc\0"); // odd chunk, padded
    v.extend_from_slice(b"fmt \x10\0\0\0");
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(2).to_le_bytes());
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
