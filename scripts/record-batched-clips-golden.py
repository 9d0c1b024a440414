#!/usr/bin/env python3
"""Record faster-whisper's BatchedInferencePipeline with clip_timestamps (spec
§9.3: the clips replace the VAD, one piece per clip, times offset by the clip
start) for crates/decode/tests/batched.rs:
tests/fixtures/golden/tiny.en.float32.beam5.batched8.clips.json.

Run with the bench venv (faster-whisper 1.2.1):
    .venv-bench/bin/python scripts/record-batched-clips-golden.py
"""
import json
import os
import sys

import ctranslate2
import faster_whisper
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")
OUT = os.path.join(
    ROOT, "tests", "fixtures", "golden", "tiny.en.float32.beam5.batched8.clips.json")
# Clips in seconds, as vkwhisper's --clip-timestamps "start,end,...".
CASES = {
    "jfk/jfk.wav": [1.0, 9.5],
    "longform/ljspeech_LJ001_0001-0032.wav": [0.0, 20.0, 25.5, 50.0, 60.25, 84.0],
}


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/vkwhisper/models/tiny.en")
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
    pipe = BatchedInferencePipeline(model)
    files = {}
    for rel, clips in CASES.items():
        samples = decode_audio(os.path.join(DATA, rel))
        dicts = [{"start": clips[i], "end": clips[i + 1]} for i in range(0, len(clips), 2)]
        segments, info = pipe.transcribe(
            samples, batch_size=8, beam_size=5, clip_timestamps=dicts)
        files[rel] = {
            "clip_timestamps": clips,
            "duration": info.duration,
            "duration_after_vad": info.duration_after_vad,
            "segments": [
                {"start": s.start, "end": s.end, "text": s.text, "tokens": s.tokens,
                 "avg_logprob": s.avg_logprob, "no_speech_prob": s.no_speech_prob}
                for s in segments
            ],
        }
    out = {
        "config": "tiny.en.float32.beam5.batched8.clips",
        "pipeline": "BatchedInferencePipeline.transcribe(samples, batch_size=8, beam_size=5,"
                    " clip_timestamps=[{start, end} in seconds])",
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


if __name__ == "__main__":
    main()
