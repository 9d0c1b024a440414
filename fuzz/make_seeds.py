#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora into fuzz/seeds/<target>/.

The seeds are committed; this script documents (and can redo) how they were
made. Everything is small (a few KB) so that libFuzzer mutates quickly:

* audio: short tones written with the `soundfile` package (libsndfile 1.2:
  WAV/WAVEX/RF64/AIFF/CAF in PCM, float, A-law, mu-law, IMA and MS ADPCM;
  FLAC; MP3; Ogg Vorbis and Opus), plus MP4 and Matroska files assembled
  here around PCM, FLAC, Vorbis and AAC payloads (the AAC frames are the
  first frames of tests/fixtures/extra/jfk_aac.m4a);
* models: a one-layer Whisper with d_model 8 and a 30-token vocabulary in
  Whisper's special-token layout, as CTranslate2 model.bin files (binary
  versions 1-6, aliases) and as a transformers checkpoint (safetensors);
* the Silero VAD: a minimal ONNX graph with two float initializers.

Usage: python3 fuzz/make_seeds.py   (needs `pip install soundfile numpy`)
"""

import io
import json
import math
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
# Regression fixtures (crafted reproductions of the inputs; the
# minimized crashes of the campaigns are copied next to them).
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "fuzz")
# Multi-file inputs: the parts of one fuzz input, in a fixed order.
SEP = b"\n\xff\xfeVKW-PART\xfe\xff\n"


def out(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tone(sr, seconds, channels, freq=440.0):
    import numpy as np

    t = np.arange(int(sr * seconds)) / sr
    x = 0.4 * np.sin(2 * math.pi * freq * t)
    return np.stack([x * (0.5 + 0.5 * c / max(1, channels)) for c in range(channels)], axis=1)


def sf_bytes(data, sr, fmt, subtype):
    import soundfile as sf

    b = io.BytesIO()
    sf.write(b, data, sr, format=fmt, subtype=subtype)
    return b.getvalue()


# --------------------------------------------------------------------------- audio


def audio_seeds():
    pcm = [
        ("WAV", "PCM_16", 16000, 1), ("WAV", "PCM_U8", 8000, 1), ("WAV", "PCM_24", 44100, 2),
        ("WAV", "PCM_32", 48000, 1), ("WAV", "FLOAT", 22050, 2), ("WAV", "DOUBLE", 11025, 1),
        ("WAV", "ALAW", 8000, 1), ("WAV", "ULAW", 8000, 2), ("WAV", "IMA_ADPCM", 16000, 1),
        ("WAV", "MS_ADPCM", 22050, 2), ("WAVEX", "PCM_16", 96000, 6), ("RF64", "PCM_16", 16000, 1),
        ("AIFF", "PCM_16", 44100, 1), ("AIFF", "PCM_S8", 8000, 2), ("AIFF", "FLOAT", 16000, 1),
        ("CAF", "PCM_16", 48000, 2), ("CAF", "ALAC_16", 16000, 1), ("CAF", "ULAW", 8000, 1),
    ]
    for fmt, sub, sr, ch in pcm:
        out("audio_pcm", f"{fmt}_{sub}_{sr}_{ch}ch".lower(), sf_bytes(tone(sr, 0.03, ch), sr, fmt, sub))
    stream = [
        ("FLAC", "PCM_16", 16000, 1, 0.2), ("FLAC", "PCM_24", 44100, 2, 0.1),
        ("FLAC", "PCM_S8", 8000, 1, 0.2), ("MP3", "MPEG_LAYER_III", 16000, 1, 0.3),
        ("MP3", "MPEG_LAYER_III", 44100, 2, 0.1), ("OGG", "VORBIS", 16000, 1, 0.2),
        ("OGG", "VORBIS", 44100, 2, 0.1), ("OGG", "OPUS", 48000, 1, 0.1),
    ]
    for fmt, sub, sr, ch, sec in stream:
        out("audio_stream", f"{fmt}_{sub}_{sr}_{ch}ch".lower(), sf_bytes(tone(sr, sec, ch), sr, fmt, sub))
    # A little of a real MP3 (ID3 + Xing + frames; truncated, which is itself a case).
    mp3 = open(os.path.join(ROOT, "tests/fixtures/data/jfk/jfk.mp3"), "rb").read()
    out("audio_stream", "jfk_head.mp3", mp3[:3000])

    flac = sf_bytes(tone(16000, 0.1, 1), 16000, "FLAC", "PCM_16")
    vorbis = sf_bytes(tone(16000, 0.2, 1), 16000, "OGG", "VORBIS")
    aac_entry, aac_frames = jfk_aac(12)
    s16 = (tone(16000, 0.03, 2) * 32767).astype("<i2").tobytes()
    for name, data in mp4_seeds(s16, flac, aac_entry, aac_frames):
        out("audio_mp4", name, data)
    for name, data in mkv_seeds(s16, flac, vorbis, aac_entry, aac_frames):
        out("audio_mkv", name, data)
    # The resample target reads: rate (u32 LE), channels (u8), sample bits
    # (u8: 8/16/24/32, 0 for float), then sample bytes.
    for rate, ch, bits in [(44100, 2, 16), (8000, 1, 8), (767999, 3, 24), (1000, 1, 0), (22050, 32, 32)]:
        body = bytes((i * 37 + 11) & 0xFF for i in range(300))
        out("resample", f"r{rate}_{ch}_{bits}", struct.pack("<IBB", rate, ch, bits) + body)


def boxes(*items):
    return b"".join(items)


def box(kind, payload):
    return struct.pack(">I", len(payload) + 8) + kind + payload


def full(kind, version, flags, payload):
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def jfk_aac(n):
    """The mp4a sample entry and the first n AAC frames of jfk_aac.m4a."""
    d = open(os.path.join(ROOT, "tests/fixtures/extra/jfk_aac.m4a"), "rb").read()
    found = {}

    def walk(off, end):
        while off + 8 <= end:
            size, kind = struct.unpack(">I4s", d[off:off + 8])
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                walk(off + 8, off + size)
            found.setdefault(kind, d[off + 8:off + size])
            off += size

    walk(0, len(d))
    entry = found[b"stsd"]  # version/flags, count, then the mp4a box
    stsz = found[b"stsz"]
    count = struct.unpack(">I", stsz[8:12])[0]
    sizes = struct.unpack(f">{count}I", stsz[12:12 + 4 * count])
    offset = struct.unpack(">I", found[b"stco"][8:12])[0]
    frames = []
    for s in sizes[:n]:
        frames.append(d[offset:offset + s])
        offset += s
    return entry, frames


def mp4(entry, frames, timescale, frame_dur, edits):
    def moov(chunk_offset):
        mvhd = full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 1000) + b"\x00\x01\x00\x00\x01\x00"
                    + b"\x00" * 10 + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
                    + b"\x00" * 24 + struct.pack(">I", 2))
        tkhd = full(b"tkhd", 0, 7, struct.pack(">IIIII", 0, 0, 1, 0, 1000) + b"\x00" * 8
                    + struct.pack(">hhhh", 0, 0, 0x100, 0)
                    + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000) + b"\x00" * 8)
        elst = full(b"elst", 0, 0, struct.pack(">I", len(edits))
                    + b"".join(struct.pack(">Iii", d, t, 0x10000) for d, t in edits))
        mdhd = full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, frame_dur * len(frames)) + b"\x55\xc4\x00\x00")
        hdlr = full(b"hdlr", 0, 0, b"\x00" * 4 + b"soun" + b"\x00" * 12 + b"snd\x00")
        dinf = box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1) + full(b"url ", 0, 1, b"")))
        stbl = box(b"stbl", boxes(
            box(b"stsd", entry),
            full(b"stts", 0, 0, struct.pack(">III", 1, len(frames), frame_dur)),
            full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(frames), 1)),
            full(b"stsz", 0, 0, struct.pack(">II", 0, len(frames)) + b"".join(struct.pack(">I", len(f)) for f in frames)),
            full(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        ))
        minf = box(b"minf", full(b"smhd", 0, 0, b"\x00" * 4) + dinf + stbl)
        trak = box(b"trak", tkhd + box(b"edts", elst) + box(b"mdia", mdhd + hdlr + minf))
        return box(b"moov", mvhd + trak)

    ftyp = box(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42isom")
    head = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(head) + box(b"mdat", b"".join(frames))


def audio_entry(kind, channels, bits, rate, extra=b""):
    body = b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 8
    body += struct.pack(">HHHHI", channels, bits, 0, 0, rate << 16) + extra
    return struct.pack(">II", 0, 1) + box(kind, body)


def mp4_seeds(s16, flac, aac_entry, aac_frames):
    yield "aac_priming.m4a", mp4(aac_entry, aac_frames, 16000, 1024, [(700, 1024)])
    yield "aac_empty_edit.m4a", mp4(aac_entry, aac_frames, 16000, 1024, [(100, -1), (700, 1024)])
    frames = [s16[i:i + 4 * 120] for i in range(0, len(s16), 4 * 120)]
    entry = audio_entry(b"sowt", 2, 16, 16000)
    yield "sowt.mp4", mp4(entry, frames, 16000, 120, [(30, 0)])
    # fLaC: the dfLa box holds the FLAC metadata blocks; frames follow them.
    meta_end = 4 + 4 + 34
    dfla = full(b"dfLa", 0, 0, b"\x80" + flac[5:meta_end])
    entry = audio_entry(b"fLaC", 1, 16, 16000, dfla)
    yield "flac.mp4", mp4(entry, [flac[meta_end:]], 16000, 1600, [(100, 0)])


def ebml_id(i):
    n = (i.bit_length() + 7) // 8
    return i.to_bytes(n, "big")


def ebml_size(n):
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(n)


def el(i, payload):
    if isinstance(payload, int):
        payload = payload.to_bytes(max(1, (payload.bit_length() + 7) // 8), "big")
    elif isinstance(payload, float):
        payload = struct.pack(">d", payload)
    elif isinstance(payload, str):
        payload = payload.encode()
    return ebml_id(i) + ebml_size(len(payload)) + payload


def xiph_lace(packets):
    out_ = bytes([len(packets) - 1])
    for p in packets[:-1]:
        n = len(p)
        out_ += b"\xff" * (n // 255) + bytes([n % 255])
    return out_ + b"".join(packets)


def ogg_packets(data):
    packets, cur, off = [], b"", 0
    while off + 27 <= len(data) and data[off:off + 4] == b"OggS":
        nseg = data[off + 26]
        table = data[off + 27:off + 27 + nseg]
        pos = off + 27 + nseg
        for lace in table:
            cur += data[pos:pos + lace]
            pos += lace
            if lace < 255:
                packets.append(cur)
                cur = b""
        off = pos
    return packets


def mkv(codec, private, rate, channels, bits, frames, frame_ms, scale=1000000):
    ebml = el(0x1A45DFA3, el(0x4286, 1) + el(0x42F7, 1) + el(0x42F2, 4) + el(0x42F3, 8)
              + el(0x4282, "matroska") + el(0x4287, 4) + el(0x4285, 2))
    info = el(0x1549A966, el(0x2AD7B1, scale) + el(0x4489, float(frame_ms * len(frames))))
    audio = el(0xE1, el(0xB5, float(rate)) + el(0x9F, channels) + (el(0x6264, bits) if bits else b""))
    entry = el(0xD7, 1) + el(0x73C5, 1) + el(0x83, 2) + el(0x86, codec) + audio
    if private:
        entry += el(0x63A2, private)
    tracks = el(0x1654AE6B, el(0xAE, entry))
    blocks = b""
    for k, f in enumerate(frames):
        blocks += el(0xA3, b"\x81" + struct.pack(">h", k * frame_ms) + b"\x80" + f)
    cluster = el(0x1F43B675, el(0xE7, 0) + blocks)
    return ebml + el(0x18538067, info + tracks + cluster)


def mkv_seeds(s16, flac, vorbis, aac_entry, aac_frames):
    frames = [s16[i:i + 4 * 160] for i in range(0, len(s16), 4 * 160)]
    yield "pcm.mkv", mkv("A_PCM/INT/LIT", None, 16000, 2, 16, frames, 10)
    meta_end = 4 + 4 + 34
    yield "flac.mka", mkv("A_FLAC", flac[:meta_end], 16000, 1, 16, [flac[meta_end:]], 100)
    pk = ogg_packets(vorbis)
    yield "vorbis.webm", mkv("A_VORBIS", xiph_lace(pk[:3]), 16000, 1, 0, pk[3:12], 20)
    # AudioSpecificConfig from the esds: the bytes after the 0x05 tag and its length.
    esds = aac_entry[aac_entry.index(b"esds"):]
    i = esds.index(b"\x05\x80\x80\x80")
    asc = esds[i + 5:i + 5 + esds[i + 4]]
    yield "aac.mka", mkv("A_AAC", asc, 16000, 1, 0, aac_frames[:8], 64)


# --------------------------------------------------------------------------- models

D, HEADS, FFN, MELS, AUDIO_CTX, TEXT_CTX = 8, 2, 32, 80, 1500, 448
TEXT = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "\u0120"]
SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>",
           "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
           "<|notimestamps|>"]
VOCAB = TEXT + SPECIAL + ["<|%.2f|>" % (i * 0.02) for i in range(10)]
V = len(VOCAB)


def values(n, seed, scale=0.05):
    x = seed * 2654435761 & 0xFFFFFFFF
    res = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        res.append(((x / 0x7FFFFFFF) - 0.5) * 2 * scale)
    return res


def ct2_vars():
    """(name, shape, values) of the one-layer model, CTranslate2 names."""
    v = []
    k = [0]

    def t(name, shape, ones=False):
        n = 1
        for s in shape:
            n *= s
        k[0] += 1
        v.append((name, shape, [1.0] * n if ones else values(n, k[0])))

    t("encoder/conv1/weight", [D, MELS, 3]); t("encoder/conv1/bias", [D])
    t("encoder/conv2/weight", [D, D, 3]); t("encoder/conv2/bias", [D])
    t("encoder/position_encodings/encodings", [AUDIO_CTX, D])
    t("encoder/layer_norm/gamma", [D], True); t("encoder/layer_norm/beta", [D])
    t("decoder/embeddings/weight", [V, D])
    t("decoder/position_encodings/encodings", [TEXT_CTX, D])
    t("decoder/layer_norm/gamma", [D], True); t("decoder/layer_norm/beta", [D])
    for side in ["encoder", "decoder"]:
        p = f"{side}/layer_0"
        t(f"{p}/self_attention/layer_norm/gamma", [D], True); t(f"{p}/self_attention/layer_norm/beta", [D])
        t(f"{p}/self_attention/linear_0/weight", [3 * D, D]); t(f"{p}/self_attention/linear_0/bias", [3 * D])
        t(f"{p}/self_attention/linear_1/weight", [D, D]); t(f"{p}/self_attention/linear_1/bias", [D])
        if side == "decoder":
            t(f"{p}/attention/layer_norm/gamma", [D], True); t(f"{p}/attention/layer_norm/beta", [D])
            t(f"{p}/attention/linear_0/weight", [D, D]); t(f"{p}/attention/linear_0/bias", [D])
            t(f"{p}/attention/linear_1/weight", [2 * D, D]); t(f"{p}/attention/linear_1/bias", [2 * D])
            t(f"{p}/attention/linear_2/weight", [D, D]); t(f"{p}/attention/linear_2/bias", [D])
        t(f"{p}/ffn/layer_norm/gamma", [D], True); t(f"{p}/ffn/layer_norm/beta", [D])
        t(f"{p}/ffn/linear_0/weight", [FFN, D]); t(f"{p}/ffn/linear_0/bias", [FFN])
        t(f"{p}/ffn/linear_1/weight", [D, FFN]); t(f"{p}/ffn/linear_1/bias", [D])
    return v


def f16(xs):
    return struct.pack(f"<{len(xs)}e", *xs)


def model_bin(version=6, dtype="f16", nan=None):
    def string(s):
        b = s.encode() + b"\x00"
        return struct.pack("<H", len(b)) + b

    body = struct.pack("<I", version)
    if version >= 2:
        body += string("WhisperSpec") + struct.pack("<I", 3)
    vars_ = ct2_vars()
    scalars = [("encoder/num_heads", HEADS), ("decoder/num_heads", HEADS)]
    body += struct.pack("<I", len(vars_) + len(scalars))
    for name, shape, vals in vars_:
        if nan is not None and name == nan:
            vals = [float("nan")] * len(vals)
        body += string(name) + struct.pack("<B", len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
        if version >= 4:
            data = f16(vals) if dtype == "f16" else struct.pack(f"<{len(vals)}f", *vals)
            body += struct.pack("<BI", 4 if dtype == "f16" else 0, len(data)) + data
        else:
            data = struct.pack(f"<{len(vals)}f", *vals)
            body += struct.pack("<BI", 4, len(vals)) + data
    for name, val in scalars:
        body += string(name) + b"\x00"
        if version >= 4:
            body += struct.pack("<BIh", 2, 2, val)
        else:
            body += struct.pack("<BIh", 2, 1, val)
    if version >= 3:
        body += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    return body


def tokenizer_json():
    added = [{"id": len(TEXT) + i, "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i, s in enumerate(SPECIAL)]
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(TEXT)}, "merges": []},
    }, ensure_ascii=False).encode()


CT2_CONFIG = json.dumps({"alignment_heads": [[0, 0], [0, 1]], "lang_ids": [12, 13],
                         "suppress_ids": [1, 2], "suppress_ids_begin": [9, 10],
                         "layer_norm_epsilon": 1e-05}).encode()


def model_seeds():
    for version in range(1, 7):
        out("model_bin", f"v{version}.bin", model_bin(version, "f32" if version < 4 else "f16"))
    out("model_bin", "v6_f32.bin", model_bin(6, "f32"))
    out("model_bin", "v6_nan_gamma.bin", model_bin(6, "f16", nan="decoder/layer_norm/gamma"))
    # model_dir fuzzes the small files around this fixed model.bin; the
    # regression tests load the same directory.
    tok = tokenizer_json()
    vocab_json = json.dumps(VOCAB, ensure_ascii=False).encode()
    vocab_txt = "\n".join(VOCAB).encode() + b"\n"
    tiny = os.path.join(FIXTURES, "tiny-ct2")
    os.makedirs(tiny, exist_ok=True)
    for name, data in [("model.bin", model_bin(6, "f16")), ("tokenizer.json", tok),
                       ("vocabulary.txt", vocab_txt), ("config.json", CT2_CONFIG)]:
        with open(os.path.join(tiny, name), "wb") as f:
            f.write(data)
    # model_dir: config.json | vocabulary (first byte 'j' json / 't' txt) | tokenizer.json
    out("model_dir", "json_vocab", SEP.join([CT2_CONFIG, b"j" + vocab_json, tok]))
    out("model_dir", "txt_vocab", SEP.join([CT2_CONFIG, b"t" + vocab_txt, tok]))
    shuffled = VOCAB[:]
    shuffled[0], shuffled[19] = shuffled[19], shuffled[0]  # <|notimestamps|> at id 0
    out("model_dir", "notimestamps_first", SEP.join([b"{}", b"j" + json.dumps(shuffled).encode(), tok]))
    out("model_dir", "no_config", SEP.join([b"", b"t" + vocab_txt, tok]))
    hf_seeds(tok)


def safetensors(tensors):
    header, data = {}, b""
    for name, shape, vals in tensors:
        raw = f16(vals)
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def hf_parts():
    names = {
        "encoder/conv1/weight": "model.encoder.conv1.weight", "encoder/conv1/bias": "model.encoder.conv1.bias",
        "encoder/conv2/weight": "model.encoder.conv2.weight", "encoder/conv2/bias": "model.encoder.conv2.bias",
        "encoder/layer_norm/gamma": "model.encoder.layer_norm.weight",
        "encoder/layer_norm/beta": "model.encoder.layer_norm.bias",
        "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
        "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
        "decoder/layer_norm/gamma": "model.decoder.layer_norm.weight",
        "decoder/layer_norm/beta": "model.decoder.layer_norm.bias",
    }
    tensors = []
    for name, shape, vals in ct2_vars():
        if name in names:
            tensors.append((names[name], shape, vals))
    for side in ["encoder", "decoder"]:
        p = f"model.{side}.layers.0"
        for ln in ["self_attn_layer_norm", "final_layer_norm"] + (["encoder_attn_layer_norm"] if side == "decoder" else []):
            tensors.append((f"{p}.{ln}.weight", [D], [1.0] * D))
            tensors.append((f"{p}.{ln}.bias", [D], values(D, 7)))
        for att in ["self_attn"] + (["encoder_attn"] if side == "decoder" else []):
            for proj in ["q", "k", "v", "out"]:
                tensors.append((f"{p}.{att}.{proj}_proj.weight", [D, D], values(D * D, 3)))
                if proj != "k":
                    tensors.append((f"{p}.{att}.{proj}_proj.bias", [D], values(D, 4)))
        tensors.append((f"{p}.fc1.weight", [FFN, D], values(FFN * D, 5)))
        tensors.append((f"{p}.fc1.bias", [FFN], values(FFN, 6)))
        tensors.append((f"{p}.fc2.weight", [D, FFN], values(FFN * D, 8)))
        tensors.append((f"{p}.fc2.bias", [D], values(D, 9)))
    config = json.dumps({
        "model_type": "whisper", "d_model": D, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": HEADS, "decoder_attention_heads": HEADS,
        "encoder_ffn_dim": FFN, "decoder_ffn_dim": FFN, "num_mel_bins": MELS,
        "max_source_positions": AUDIO_CTX, "max_target_positions": TEXT_CTX, "vocab_size": V,
        "activation_function": "gelu", "scale_embedding": False, "tie_word_embeddings": True,
        "suppress_tokens": [1], "begin_suppress_tokens": [9, 10],
    }).encode()
    gen = json.dumps({
        "alignment_heads": [[0, 1]], "lang_to_id": {"<|en|>": 12, "<|de|>": 13},
        "task_to_id": {"translate": 14, "transcribe": 15}, "no_timestamps_token_id": 19,
        "decoder_start_token_id": 11, "suppress_tokens": [1, 2], "begin_suppress_tokens": [9, 10],
    }).encode()
    return config, safetensors(tensors), gen


def hf_seeds(tok):
    config, st, gen = hf_parts()
    # hf_checkpoint: config.json | model.safetensors | generation_config.json | tokenizer.json
    out("hf_checkpoint", "tiny", SEP.join([config, st, gen, tok]))
    out("hf_checkpoint", "no_generation_config", SEP.join([config, st, b"", tok]))
    big = config.replace(b'"vocab_size": %d' % V, b'"vocab_size": 1000000000000')
    out("hf_checkpoint", "vocab_1e12", SEP.join([big, st, gen, tok]))


# --------------------------------------------------------------------------- VAD


def varint(v):
    b = b""
    while v >= 0x80:
        b += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return b + bytes([v])


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def onnx_seeds():
    def tensor(name, dims, vals):
        t = field(1, b"".join(varint(d) for d in dims)) + varint(2 << 3) + varint(1)
        return t + field(8, name.encode()) + field(9, struct.pack(f"<{len(vals)}f", *vals))

    graph = field(1, b"node") + field(5, tensor("encoder.conv_layers.0.bias", [4], [0.5] * 4))
    graph += field(5, tensor("decoder.decoder.2.bias", [1], [0.0]))
    out("vad_onnx", "tiny.onnx", varint(1 << 3) + varint(8) + field(7, graph))


# --------------------------------------------------------------------------- fixtures


def fix(kind, name, data):
    d = os.path.join(FIXTURES, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def wav(rate, channels=1, bits=16, tag=1, block_align=None, data=b"\x00\x01" * 500):
    block = block_align if block_align is not None else channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF, block, bits)
    if tag in (2, 0x11):
        fmt += struct.pack("<H", 32 if tag == 2 else 2) + b"\x00" * (32 if tag == 2 else 2)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def aiff(rate_exp, rate_mant):
    comm = struct.pack(">hIh", 1, 500, 16) + struct.pack(">HQ", rate_exp, rate_mant)
    ssnd = struct.pack(">II", 0, 0) + b"\x00\x01" * 500
    body = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm + b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    return b"FORM" + struct.pack(">I", len(body)) + body


def caf(rate):
    desc = struct.pack(">d4sIIIII", rate, b"lpcm", 0xC, 2, 1, 1, 16)
    data = struct.pack(">I", 0) + b"\x00\x01" * 500
    return (b"caff\x00\x01\x00\x00" + b"desc" + struct.pack(">q", len(desc)) + desc
            + b"data" + struct.pack(">q", len(data)) + data)


def fixtures():
    """Crafted inputs of every class the issue lists (MANIFEST.tsv says what
    each must give)."""
    fix("audio", "wav_rate_0.wav", wav(0))
    fix("audio", "wav_rate_1hz_200k.wav", wav(1, data=b"\x10\x00" * 100_000))
    fix("audio", "wav_rate_4294967295.wav", wav(0xFFFFFFFF))
    fix("audio", "wav_rate_768001.wav", wav(768_001))
    fix("audio", "wav_channels_0.wav", wav(16000, channels=0, block_align=2))
    fix("audio", "wav_channels_33.wav", wav(16000, channels=33))
    fix("audio", "wav_block_align_0.wav", wav(16000, block_align=0))
    fix("audio", "wav_ms_adpcm_block_too_small.wav", wav(22050, channels=2, bits=4, tag=2, block_align=10))
    fix("audio", "wav_ima_adpcm_block_overflow.wav", wav(16000, channels=1, bits=4, tag=0x11, block_align=60000))
    fix("audio", "aiff_rate_half.aiff", aiff(16382, 1 << 63))
    fix("audio", "caf_rate_nan.caf", caf(float("nan")))
    fix("audio", "caf_rate_0.3.caf", caf(0.3))
    aac_entry, aac_frames = jfk_aac(6)

    def m4a(movie_scale, edits):
        data = mp4(aac_entry, aac_frames, 16000, 1024, edits)
        # mvhd timescale is at a fixed offset inside mvhd: patch it.
        i = data.index(b"mvhd") + 4 + 4 + 8
        return data[:i] + struct.pack(">I", movie_scale) + data[i + 4:]

    # A FLAC Vorbis comment whose length field claims 2,362,046,719 bytes
    # inside a block that is itself consistent.
    flac = bytearray(sf_bytes(tone(16000, 0.1, 1), 16000, "FLAC", "PCM_16"))
    pos = 4
    while True:
        kind, length = flac[pos] & 0x7F, int.from_bytes(flac[pos + 1:pos + 4], "big")
        if kind == 4:
            vendor = int.from_bytes(flac[pos + 4:pos + 8], "little")
            body = bytes(flac[pos + 4:pos + 8 + vendor]) + (1).to_bytes(4, "little")
            body += (2362046719).to_bytes(4, "little") + b"TITLE=x"
            head = bytes([flac[pos]]) + len(body).to_bytes(3, "big")
            flac[pos:pos + 4 + length] = head + body
            break
        if flac[pos] & 0x80:
            raise SystemExit("FLAC seed without a comment block")
        pos += 4 + length
    fix("audio", "flac_comment_length_2gb.flac", bytes(flac))
    # Matroska TimestampScale 0 / past 32 bits: symphonia's demuxer panics
    # (TimeBase::new(0, _), u32::try_from(..).unwrap()); contained.
    flac = sf_bytes(tone(16000, 0.1, 1), 16000, "FLAC", "PCM_16")
    meta_end = 4 + 4 + 34
    fix("audio", "mkv_timestamp_scale_0.mka", mkv("A_FLAC", flac[:meta_end], 16000, 1, 16, [flac[meta_end:]], 100, scale=0))
    fix("audio", "mkv_timestamp_scale_2p40.mka", mkv("A_FLAC", flac[:meta_end], 16000, 1, 16, [flac[meta_end:]], 100, scale=2**40))
    fix("audio", "m4a_empty_edit_4294967295s.m4a", m4a(1, [(0xFFFFFFFF, -1), (300, 1024)]))
    fix("audio", "m4a_empty_edit_100000s.m4a", m4a(1000, [(100_000_000, -1), (300, 1024)]))

    tok = tokenizer_json()
    vocab_txt = "\n".join(VOCAB).encode() + b"\n"
    sep = SEP.join

    def vocab(v):
        return b"t" + "\n".join(v).encode() + b"\n"

    shuffled = VOCAB[:]
    shuffled[0], shuffled[19] = shuffled[19], shuffled[0]
    fix("model_dir", "notimestamps_at_id_0", sep([CT2_CONFIG, vocab(shuffled), tok]))
    sot_last = VOCAB[:]
    sot_last[11], sot_last[-1] = sot_last[-1], sot_last[11]
    fix("model_dir", "sot_last", sep([CT2_CONFIG, vocab(sot_last), tok]))
    # Whisper's layout up to <|notimestamps|>, which is the last token.
    no_ts = TEXT + ["x%d" % i for i in range(10)] + SPECIAL
    fix("model_dir", "no_timestamp_tokens", sep([b"{}", vocab(no_ts), tok]))
    cfg = json.loads(CT2_CONFIG)

    def config(**kw):
        c = dict(cfg)
        c.update(kw)
        return json.dumps(c).encode()

    fix("model_dir", "alignment_head_layer_5", sep([config(alignment_heads=[[5, 0]]), vocab(VOCAB), tok]))
    fix("model_dir", "alignment_heads_scalar", sep([config(alignment_heads=3), vocab(VOCAB), tok]))
    fix("model_dir", "lang_id_out_of_range", sep([config(lang_ids=[12, 4000000000]), vocab(VOCAB), tok]))
    fix("model_dir", "suppress_id_2p40", sep([config(suppress_ids=[2**40]), vocab(VOCAB), tok]))
    fix("model_dir", "layer_norm_epsilon_0", sep([config(layer_norm_epsilon=0), vocab(VOCAB), tok]))
    fix("model_dir", "duplicate_key", sep([CT2_CONFIG[:-1] + b', "lang_ids": [1]}', vocab(VOCAB), tok]))
    bad_tok = tok.replace(b'"decoder": {', b'"decoder": {#', 1)
    fix("model_dir", "tokenizer_decoder_syntax_error", sep([CT2_CONFIG, vocab(VOCAB), bad_tok]))
    far = json.loads(tok)
    # (tokenizers renumbers added tokens, but keeps the model's own ids.)
    far["model"]["vocab"]["zz"] = 4000000000
    fix("model_dir", "tokenizer_id_4e9", sep([CT2_CONFIG, vocab(VOCAB), json.dumps(far).encode()]))

    fix("model_bin", "nan_decoder_layer_norm_gamma.bin", model_bin(6, "f16", nan="decoder/layer_norm/gamma"))
    good = model_bin(6, "f16")
    # The spec name's length field (2 bytes after the version) claims 2000
    # bytes: the "name" becomes binary data with control characters.
    fix("model_bin", "garbage_spec_name.bin", good[:4] + struct.pack("<H", 2000) + good[6:])
    # A variable name's length field pointing into the data.
    i = good.index(b"encoder/conv1/bias") - 2
    fix("model_bin", "garbage_variable_name.bin", good[:i] + struct.pack("<H", 900) + good[i + 2:])
    # The first variable stored twice (the count raised by one).
    first_end = good.index(b"encoder/conv1/bias") - 2
    nvars_at = 4 + 2 + len(b"WhisperSpec\x00") + 4
    n = struct.unpack("<I", good[nvars_at:nvars_at + 4])[0]
    dup = good[:nvars_at] + struct.pack("<I", n + 1) + good[nvars_at + 4:first_end] + good[nvars_at + 4:first_end] + good[first_end:]
    fix("model_bin", "duplicate_variable.bin", dup)
    fix("model_bin", "encoder_positions_6.bin", small_ctx_model())

    config_hf, st, gen = hf_parts()
    for name, key, value in [("vocab_size_1e12", "vocab_size", 10**12), ("vocab_size_2p62", "vocab_size", 2**62),
                             ("max_source_positions_1e12", "max_source_positions", 10**12),
                             ("max_target_positions_2p62", "max_target_positions", 2**62),
                             ("d_model_1e12", "d_model", 10**12), ("num_mel_bins_1e12", "num_mel_bins", 10**12)]:
        c = json.loads(config_hf)
        c[key] = value
        fix("hf_checkpoint", name, sep([json.dumps(c).encode(), st, gen, tok]))
    fix("hf_checkpoint", "tokenizer_id_4e9", sep([config_hf, st, gen, json.dumps(far).encode()]))

    def tensor(name, dims, vals):
        t = field(1, b"".join(varint(d) for d in dims)) + varint(2 << 3) + varint(1)
        return t + field(8, name.encode()) + field(9, struct.pack(f"<{len(vals)}f", *vals))

    g = field(5, tensor("encoder.feature_extractor.forward_basis_buffer", [258, 1, 256], [float("nan")] * (258 * 256)))
    fix("vad_onnx", "nan_basis.onnx", field(7, g))
    g = field(5, tensor("x\n\x1b[31m" * 40, [4000000000, 4000000000], []))
    fix("vad_onnx", "huge_dims_and_control_name.onnx", field(7, g))


def small_ctx_model():
    """The tiny model with 6 encoder positions (consistent shapes, but not
    runnable on 30 s windows)."""
    global AUDIO_CTX
    saved = AUDIO_CTX
    AUDIO_CTX = 6
    try:
        return model_bin(6, "f16")
    finally:
        AUDIO_CTX = saved


def server_seeds():
    """HTTP requests for server_request: a head (method, path, headers,
    @-directives), SEP, a body."""
    wav = open(os.path.join(ROOT, "samples", "jfk.wav"), "rb").read()[:4096]

    def multipart(fields, boundary="vkwB"):
        b = b""
        for name, value, filename in fields:
            disp = f'form-data; name="{name}"'
            if filename is not None:
                disp += f'; filename="{filename}"'
            b += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"
        return b + f"--{boundary}--\r\n".encode()

    mp = "Content-Type: multipart/form-data; boundary=vkwB"
    ok = multipart([("file", wav, "a.wav"), ("model", b"whisper-1", None)])
    reqs = {
        "health": ("GET /health", b""),
        "models": ("GET /v1/models", b""),
        "model_one": ("GET /v1/models/whisper-1", b""),
        "metrics": ("GET /metrics", b""),
        "page": ("GET /", b""),
        "head": ("HEAD /health", b""),
        "transcribe": (f"POST /v1/audio/transcriptions\n{mp}", ok),
        "translate": (f"POST /v1/audio/translations\n{mp}", ok),
        "chunked": (f"POST /v1/audio/transcriptions\n{mp}\n@chunk 7", ok),
        "gone": (f"POST /v1/audio/transcriptions\n{mp}\n@fail\n@chunk 100", ok),
        "keyed": (f"POST /v1/audio/transcriptions\n{mp}\nAuthorization: Bearer sk-fuzz\n@key", ok),
        "options": (
            f"POST /v1/audio/transcriptions\n{mp}",
            multipart([
                ("file", wav, "a.wav"), ("model", b"tiny.en", None),
                ("response_format", b"verbose_json", None),
                ("timestamp_granularities[]", b"word", None),
                ("timestamp_granularities[]", b"segment", None),
                ("temperature", b"0.2", None), ("language", b"en", None),
                ("prompt", b"hello", None), ("stream", b"true", None),
                ("include[]", b"logprobs", None),
            ]),
        ),
        "bad_field": (f"POST /v1/audio/transcriptions\n{mp}", multipart([("temperature", b"hot", None)])),
        "urlencoded": ("POST /v1/audio/transcriptions\nContent-Type: application/x-www-form-urlencoded", b"model=whisper-1"),
        "method": ("DELETE /v1/audio/transcriptions", b""),
    }
    for name, (head, body) in reqs.items():
        out("server_request", name, head.encode() + SEP + body)


if __name__ == "__main__":
    which = sys.argv[1:] or ["audio", "models", "vad", "server", "fixtures"]
    if "audio" in which:
        audio_seeds()
    if "models" in which:
        model_seeds()
    if "vad" in which:
        onnx_seeds()
    if "server" in which:
        server_seeds()
    if "fixtures" in which:
        fixtures()
