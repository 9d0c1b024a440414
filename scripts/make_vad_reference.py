#!/usr/bin/env python3
"""Record faster-whisper 1.2.1's Silero VAD v6 (run by onnxruntime) on a few
inputs, as tests/fixtures/vad/silero_v6_reference.json for crates/vad/tests/,
and faster-whisper's `transcribe(vad_filter=True)` on inputs where the VAD
really cuts (silence inserted, non-default options), as
tests/fixtures/vad/fw_vad_transcripts.json for crates/decode/tests/vad_golden.rs.

For each input: the per-512-sample speech probabilities exactly as
`get_speech_timestamps` computes them (faster-whisper's own framing and model
call), and the speech chunks `get_speech_timestamps` returns for several
VadOptions (the defaults, the batched pipeline's and two stricter sets, so
splits, hysteresis and padding are exercised, not only whole-file chunks).
Probabilities are stored with 8 significant digits (the test's tolerance is 1e-4).

Run with the benchmark venv's Python (faster-whisper 1.2.1, onnxruntime):

    .venv-bench/bin/python scripts/make_vad_reference.py [TINY_EN_MODEL_DIR]
"""

import json
import sys
from pathlib import Path

import faster_whisper
import numpy as np
from faster_whisper import WhisperModel, decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
OUT = FIXTURES / "vad" / "silero_v6_reference.json"
OUT_TRANSCRIPTS = FIXTURES / "vad" / "fw_vad_transcripts.json"
MODEL = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache/vkwhisper/models/tiny.en"

# 16-bit 16 kHz mono WAVs: read bit-exactly (int16 / 32768) by both sides.
FILES = [
    "data/jfk/jfk.wav",
    "data/longform/ljspeech_LJ001_0001-0032.wav",
    "data/fw_testdata/stereo_diarization_right.wav",
    "data/espeak/espeak_01.wav",
]

OPTIONS = {
    "default": {},
    "batched": {"max_speech_duration_s": 30, "min_silence_duration_ms": 160},
    "tight": {"min_silence_duration_ms": 100, "speech_pad_ms": 30, "min_speech_duration_ms": 250},
    "split": {
        "threshold": 0.6,
        "neg_threshold": 0.4,
        "max_speech_duration_s": 3.0,
        "min_silence_duration_ms": 300,
        "speech_pad_ms": 100,
    },
}


def main():
    model = get_vad_model()
    out = {
        "faster_whisper": faster_whisper.__version__,
        "options": OPTIONS,
        "files": {},
    }
    for rel in FILES:
        audio = decode_audio(str(FIXTURES / rel))
        # The framing get_speech_timestamps uses (spec §8.3); the model call
        # zeroes the last chunk's tail in place, so pass a copy.
        padded = np.pad(audio, (0, 512 - audio.shape[0] % 512))
        probs = model(padded.copy())
        chunks = {
            name: [[c["start"], c["end"]] for c in get_speech_timestamps(audio, VadOptions(**kw))]
            for name, kw in OPTIONS.items()
        }
        out["files"][rel] = {
            "num_samples": int(audio.shape[0]),
            "probs": [float("%.8g" % p) for p in np.asarray(probs).reshape(-1)],
            "chunks": chunks,
        }
        print(rel, len(probs), {k: len(v) for k, v in chunks.items()})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", OUT, OUT.stat().st_size, "bytes")
    transcripts()


def build(case):
    """The samples of a transcript case, from its recipe (the Rust test builds
    the same): `parts` = list of ["file", rel, start, end] (sample range of a
    16-bit WAV) or ["silence", n]."""
    out = []
    for p in case["parts"]:
        if p[0] == "silence":
            out.append(np.zeros(p[1], np.float32))
        else:
            a = decode_audio(str(FIXTURES / p[1]))
            out.append(a[p[2] : p[3]])
    return np.concatenate(out)


TRANSCRIPT_CASES = {
    # Leading silence and a gap inserted at jfk's pause (8.31 s): two chunks.
    "jfk_gaps": {
        "parts": [
            ["silence", 96000],
            ["file", "data/jfk/jfk.wav", 0, 133000],
            ["silence", 96000],
            ["file", "data/jfk/jfk.wav", 133000, 176000],
        ],
        "vad": {},
    },
    # Short silences end speech: five chunks, segments spanning chunk bounds.
    "jfk_tight": {
        "parts": [["file", "data/jfk/jfk.wav", 0, 176000]],
        "vad": {"min_silence_duration_ms": 100, "speech_pad_ms": 30, "min_speech_duration_ms": 250},
    },
    # As jfk_tight, with word timestamps: words are mapped back by the chunk
    # of their midpoint, segments then span their words.
    "jfk_tight_words": {
        "parts": [["file", "data/jfk/jfk.wav", 0, 176000]],
        "vad": {"min_silence_duration_ms": 100, "speech_pad_ms": 30, "min_speech_duration_ms": 250},
        "word_timestamps": True,
    },
    # The first minute of the long-form file with the batched pipeline's VAD
    # settings, transcribed sequentially: many chunks over two windows.
    "longform_60s_short_silences": {
        "parts": [["file", "data/longform/ljspeech_LJ001_0001-0032.wav", 0, 960000]],
        "vad": {"min_silence_duration_ms": 160, "max_speech_duration_s": 30},
    },
}


def transcripts():
    model = WhisperModel(str(MODEL), device="cpu", compute_type="float32", cpu_threads=2)
    out = {"model": "tiny.en", "compute_type": "float32", "beam_size": 5, "cases": {}}
    for name, case in TRANSCRIPT_CASES.items():
        audio = build(case)
        chunks = get_speech_timestamps(audio, VadOptions(**case["vad"]))
        words = case.get("word_timestamps", False)
        segs, info = model.transcribe(
            audio, beam_size=5, vad_filter=True, vad_parameters=case["vad"], word_timestamps=words
        )
        segs = [
            dict(
                {"start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens},
                **(
                    {"words": [[w.start, w.end, w.word, w.probability] for w in s.words]}
                    if words
                    else {}
                ),
            )
            for s in segs
        ]
        out["cases"][name] = dict(
            case,
            num_samples=int(audio.shape[0]),
            speech_chunks=[[c["start"], c["end"]] for c in chunks],
            duration_after_vad=info.duration_after_vad,
            segments=segs,
        )
        print(name, len(chunks), "chunks", len(segs), "segments")
    OUT_TRANSCRIPTS.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT_TRANSCRIPTS, OUT_TRANSCRIPTS.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
