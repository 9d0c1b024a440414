#!/usr/bin/env python3
"""Make tests/fixtures/formats/: small real-format files encoded by FFmpeg's own encoders
(through PyAV), what faster-whisper's decode_audio gives for each (PyAV/FFmpeg decoding and
resampling, stored losslessly as 16 kHz mono FLAC), and faster-whisper's tokens for each.

Run once at fixture-creation time with faster-whisper 1.2.1 / PyAV 18 installed (e.g. the venv
of scripts/bench.sh):  python scripts/make_audio_fixtures.py [--model DIR]
The tests (crates/audio/tests/formats.rs, crates/vkwhisper/tests/formats_golden.rs) never
need Python.
"""
import argparse
import fractions
import hashlib
import json
import os
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests/fixtures/data"
OUT = REPO / "tests/fixtures/formats"


def load(rel, start_s, dur_s):
    """Speech from the shared data set, as float32 mono at its own rate."""
    with av.open(str(DATA / rel)) as c:
        s = c.streams.audio[0]
        rate = s.rate
        frames = [f.to_ndarray() for f in c.decode(s)]
    x = np.concatenate(frames, axis=1).astype(np.float32)
    if x.dtype != np.float32 or np.abs(x).max() > 1.5:
        x = x / 32768.0
    x = x.mean(axis=0) if x.shape[0] > 1 else x[0]
    a, b = int(start_s * rate), int((start_s + dur_s) * rate)
    return x[a:b], rate


def resample(x, rate, out_rate, layout="mono"):
    """Content at another rate (any good resampler will do: this only makes test input)."""
    r = av.audio.resampler.AudioResampler(format="fltp", layout="mono", rate=out_rate)
    f = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="fltp", layout="mono")
    f.sample_rate = rate
    out = r.resample(f) + r.resample(None)
    return np.concatenate([o.to_ndarray()[0] for o in out])


def stereo(x, rate):
    """Left/right that differ (a short delay and a gain on the right)."""
    d = int(0.0007 * rate)
    right = np.concatenate([np.zeros(d, np.float32), x[:-d]]) * 0.8
    return np.stack([x, right]).astype(np.float32)


def encode(path, fmt, codec, planes, rate, layout, bit_rate=None, video=None):
    """Write `planes` (channels x n, float32) with FFmpeg's encoder `codec` into `path`."""
    with av.open(str(path), "w", format=fmt) as c:
        if video:
            v = c.add_stream(video, rate=10)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            a.bit_rate = bit_rate
        sample_fmt = a.codec_context.codec.audio_formats[0].name
        a.format = sample_fmt
        fs = a.codec_context.frame_size or 1024
        n = planes.shape[1]
        res = av.audio.resampler.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        pts = 0
        vframes = int(n / rate * 10) + 1 if video else 0
        vi = 0
        for s in range(0, n, fs):
            chunk = np.ascontiguousarray(planes[:, s : s + fs])
            f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            f.sample_rate = rate
            for g in res.resample(f):
                g.pts = pts
                g.time_base = fractions.Fraction(1, rate)
                pts += g.samples
                for p in a.encode(g):
                    c.mux(p)
            while video and vi < vframes and vi / 10 <= s / rate:
                img = np.full((48, 64, 3), (vi * 20) % 255, np.uint8)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = vi
                for p in v.encode(vf):
                    c.mux(p)
                vi += 1
        for g in res.resample(None):
            g.pts = pts
            pts += g.samples
            for p in a.encode(g):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
        if video:
            for p in v.encode(None):
                c.mux(p)


def write_wav_s16(path, planes, rate):
    import wave

    x = np.clip(np.round(planes.T * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(planes.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())


def write_flac16k(path, samples_f32):
    """faster-whisper's samples (int16 / 32768) as 16 kHz mono 16-bit FLAC (lossless)."""
    s16 = np.round(samples_f32 * 32768).astype(np.int16)
    with av.open(str(path), "w", format="flac") as c:
        a = c.add_stream("flac", rate=16000, layout="mono")
        a.format = "s16"
        f = av.AudioFrame.from_ndarray(s16[None, :], format="s16", layout="mono")
        f.sample_rate = 16000
        f.pts = 0
        for p in a.encode(f):
            c.mux(p)
        for p in a.encode(None):
            c.mux(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/vkwhisper/models/tiny.en"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    jfk, jr = load("jfk/jfk.wav", 0.3, 4.2)  # "And so my fellow Americans, ask not ..."
    lj8, lr8 = load("ljspeech/LJ001-0008.flac", 0.0, 3.0)
    lj13, lr13 = load("ljspeech/LJ001-0013.flac", 0.0, 3.0)
    lj16, lr16 = load("ljspeech/LJ001-0016.flac", 0.0, 4.0)
    lj11, lr11 = load("ljspeech/LJ001-0011.flac", 0.0, 3.5)

    made = {}
    # Opus in Ogg (a voice note): mono, 48 kHz, 24 kb/s, FFmpeg's libopus wrapper.
    x = resample(jfk, jr, 48000)
    encode(OUT / "voice.opus", "ogg", "libopus", x[None, :], 48000, "mono", 24000)
    made["voice.opus"] = "Opus in Ogg, mono, libopus 24 kb/s"
    # WebM/Opus as browsers record it: stereo 48 kHz.
    x = stereo(resample(lj8, lr8, 48000), 48000)
    encode(OUT / "recording.webm", "webm", "libopus", x, 48000, "stereo", 48000)
    made["recording.webm"] = "WebM, Opus stereo 48 kHz, libopus 48 kb/s"
    # Matroska video (a video track first) with AAC audio at 44.1 kHz stereo.
    x = stereo(resample(lj13, lr13, 44100), 44100)
    encode(OUT / "video.mkv", "matroska", "aac", x, 44100, "stereo", 96000, video="mpeg4")
    made["video.mkv"] = "Matroska: MPEG-4 video + AAC-LC stereo 44.1 kHz (FFmpeg aac)"
    # MP4 video with AAC mono at 22.05 kHz.
    x = resample(lj16, lr16, 22050)
    encode(OUT / "video.mp4", "mp4", "aac", x[None, :], 22050, "mono", 48000, video="mpeg4")
    made["video.mp4"] = "MP4: MPEG-4 video + AAC-LC mono 22.05 kHz (FFmpeg aac)"
    # An 8 kHz telephone WAV.
    x = resample(lj11, lr11, 8000)
    write_wav_s16(OUT / "phone_8k.wav", x[None, :], 8000)
    made["phone_8k.wav"] = "WAV, 8 kHz mono 16-bit"
    # 48 kHz stereo 16-bit WAV.
    x = stereo(resample(jfk[: int(2.0 * jr)], jr, 48000), 48000)
    write_wav_s16(OUT / "stereo_48k.wav", x, 48000)
    made["stereo_48k.wav"] = "WAV, 48 kHz stereo 16-bit"

    import ctranslate2
    import faster_whisper
    from faster_whisper import WhisperModel, decode_audio

    model = WhisperModel(args.model, device="cpu", compute_type="float32", cpu_threads=2, num_workers=1)
    golden = {
        "about": "faster-whisper 1.2.1 on tests/fixtures/formats (scripts/make_audio_fixtures.py): "
        "decode_audio (PyAV/FFmpeg) samples are in pcm/<file>.flac; tiny.en float32, beam_size 5, "
        "all other options default, cpu_threads 2.",
        "environment": {
            "faster_whisper": faster_whisper.__version__,
            "ctranslate2": ctranslate2.__version__,
            "av": av.__version__,
            "ffmpeg_libs": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()},
        },
        "files": {},
    }
    (OUT / "pcm").mkdir(exist_ok=True)
    for name, what in made.items():
        samples = decode_audio(str(OUT / name))
        write_flac16k(OUT / "pcm" / f"{name}.flac", samples)
        ctranslate2.set_random_seed(1234)
        segments, info = model.transcribe(samples, beam_size=5)
        segs = [
            {"id": s.id, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text,
             "tokens": s.tokens, "temperature": s.temperature}
            for s in segments
        ]
        golden["files"][name] = {
            "what": what,
            "file_sha256": hashlib.sha256((OUT / name).read_bytes()).hexdigest(),
            "num_samples": int(samples.shape[0]),
            "samples_sha256": hashlib.sha256(samples.astype("<f4").tobytes()).hexdigest(),
            "language": info.language,
            "text": "".join(s["text"] for s in segs),
            "segments": segs,
        }
        print(name, samples.shape[0], repr(golden["files"][name]["text"]))
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
