#!/usr/bin/env python3
"""Record faster-whisper's BatchedInferencePipeline output (spec §9.3) for the
batched-mode test: tests/fixtures/golden/tiny.en.float32.beam5.batched8.json,
and the same with word_timestamps=True (segment times, tokens and words only)
into tests/fixtures/golden/tiny.en.float32.beam5.batched8.words.json.

Run with the bench venv (faster-whisper 1.2.1):
    .venv-bench/bin/python scripts/record-batched-golden.py
"""
import json
import os
import sys

import ctranslate2
import faster_whisper
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "golden", "tiny.en.float32.beam5.batched8.json")
OUT_WORDS = os.path.join(
    ROOT, "tests", "fixtures", "golden", "tiny.en.float32.beam5.batched8.words.json")
FILES = ["jfk/jfk.wav", "longform/ljspeech_LJ001_0001-0032.wav"]


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/vkwhisper/models/tiny.en")
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
    pipe = BatchedInferencePipeline(model)
    files = {}
    for rel in FILES:
        samples = decode_audio(os.path.join(DATA, rel))
        segments, info = pipe.transcribe(samples, batch_size=8, beam_size=5)
        files[rel] = {
            "duration": info.duration,
            "duration_after_vad": info.duration_after_vad,
            "segments": [
                {
                    "id": s.id,
                    "seek": s.seek,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": s.tokens,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": s.compression_ratio,
                    "no_speech_prob": s.no_speech_prob,
                    "temperature": s.temperature,
                }
                for s in segments
            ],
        }
    out = {
        "config": "tiny.en.float32.beam5.batched8",
        "pipeline": "BatchedInferencePipeline.transcribe(samples, batch_size=8, beam_size=5)",
        "environment": {
            "faster_whisper": faster_whisper.__version__,
            "ctranslate2": ctranslate2.__version__,
        },
        "files": files,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(OUT)

    words = {}
    for rel in FILES:
        samples = decode_audio(os.path.join(DATA, rel))
        segments, _ = pipe.transcribe(
            samples, batch_size=8, beam_size=5, word_timestamps=True)
        words[rel] = [
            {
                "start": s.start,
                "end": s.end,
                "tokens": s.tokens,
                "words": [[w.start, w.end, w.word, round(w.probability, 6)] for w in s.words],
            }
            for s in segments
        ]
    out = {
        "config": "tiny.en.float32.beam5.batched8.words",
        "pipeline": "BatchedInferencePipeline.transcribe(samples, batch_size=8, beam_size=5,"
                    " word_timestamps=True)",
        "words": "[start, end, word, probability]",
        "environment": out["environment"],
        "files": words,
    }
    with open(OUT_WORDS, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(OUT_WORDS)


if __name__ == "__main__":
    main()
