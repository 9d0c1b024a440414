#!/usr/bin/env python3
"""Record faster-whisper 1.2.1's Silero VAD v6 (run by onnxruntime) on a few
inputs, as tests/fixtures/vad/silero_v6_reference.json for crates/vad/tests/.

For each input: the per-512-sample speech probabilities exactly as
`get_speech_timestamps` computes them (faster-whisper's own framing and model
call), and the speech chunks `get_speech_timestamps` returns for several
VadOptions (the defaults, the batched pipeline's and two stricter sets, so
splits, hysteresis and padding are exercised, not only whole-file chunks).
Probabilities are stored with 8 significant digits (the test's tolerance is 1e-4).

Run with the benchmark venv's Python (faster-whisper 1.2.1, onnxruntime):

    .venv-bench/bin/python scripts/make_vad_reference.py
"""

import json
from pathlib import Path

import faster_whisper
import numpy as np
from faster_whisper import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
OUT = FIXTURES / "vad" / "silero_v6_reference.json"

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


if __name__ == "__main__":
    main()
