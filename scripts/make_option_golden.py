#!/usr/bin/env python3
"""Record faster-whisper's output for decoding options the shared golden files
do not cover (hotwords, prefix, clip_timestamps, max_new_tokens, penalties, word
timestamp options...),
as tests/fixtures/extra/golden_options.json for crates/decode/tests/options_golden.rs.

Run with the benchmark venv's Python (scripts/bench.sh creates it; it pins
faster-whisper 1.2.1 and ctranslate2 4.8.5, the golden versions):

    .venv-bench/bin/python scripts/make_option_golden.py [MODEL_DIR]
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import ctranslate2
import faster_whisper
import numpy as np
from faster_whisper import WhisperModel, decode_audio

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
MODELS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache/vkwhisper/models"
# faster-whisper's own decode of multilingual.mp3, as 16-bit WAV (read bit-exactly by both).
MULTI = "golden/pcm/fw_testdata/multilingual.wav"

# (name, model, file relative to tests/fixtures, transcribe kwargs)
CASES = [
    ("hotwords", "tiny.en", "data/jfk/jfk.wav", {"hotwords": "Kennedy fellow"}),
    ("prefix", "tiny.en", "data/jfk/jfk.wav", {"prefix": "And so my"}),
    ("clip", "tiny.en", "data/jfk/jfk.wav", {"clip_timestamps": "2.5,7.8"}),
    ("clip_open_end", "tiny.en", "data/jfk/jfk.wav", {"clip_timestamps": "4"}),
    ("max_new_tokens", "tiny.en", "data/jfk/jfk.wav", {"max_new_tokens": 8}),
    ("no_blank_no_suppress", "tiny.en", "data/jfk/jfk.wav", {"suppress_blank": False, "suppress_tokens": []}),
    ("max_initial_timestamp_0", "tiny.en", "data/jfk/jfk.wav", {"max_initial_timestamp": 0.0}),
    ("repetition_penalty", "tiny.en", "data/espeak/espeak_07.wav", {"repetition_penalty": 1.3}),
    ("no_repeat_ngram", "tiny.en", "data/espeak/espeak_07.wav", {"no_repeat_ngram_size": 2}),
    ("length_penalty_patience", "tiny.en", "data/espeak/espeak_07.wav", {"length_penalty": 0.5, "patience": 2.0}),
    ("length_penalty_0", "tiny.en", "data/espeak/espeak_07.wav", {"length_penalty": 0.0}),
    ("beam_2", "tiny.en", "data/espeak/espeak_13.wav", {"beam_size": 2}),
    ("text_only_t0", "tiny.en", "data/espeak/espeak_13.wav", {"without_timestamps": True, "temperature": [0.0]}),
    ("prompt_nocond", "tiny.en", "data/longform/ljspeech_LJ001_0001-0032.wav",
     {"initial_prompt": "Printing. Exhibition.", "condition_on_previous_text": False}),
    ("base_language_de", "base", MULTI, {"language": "de"}),
    ("base_multilingual", "base", MULTI, {"multilingual": True}),
    ("base_detect_2_segments", "base", MULTI,
     {"language_detection_segments": 2, "language_detection_threshold": 0.99}),
    ("base_translate_de", "base", MULTI, {"language": "de", "task": "translate"}),
    # Word timestamps (spec §7, §6.14): espeak_07's first segment is anomalous
    # (short, improbable words), so a 0.2 s threshold drops it and re-decodes from 1 s.
    ("words_hallucination_silence", "tiny.en", "data/espeak/espeak_07.wav",
     {"word_timestamps": True, "hallucination_silence_threshold": 0.2}),
    ("words_no_punctuation_merge", "tiny.en", "data/jfk/jfk.wav",
     {"word_timestamps": True, "prepend_punctuations": "", "append_punctuations": ""}),
    ("words_greedy", "tiny.en", "data/longform/ljspeech_LJ001_0001-0032.wav",
     {"word_timestamps": True, "beam_size": 1}),
    ("words_base_de", "base", MULTI, {"word_timestamps": True, "language": "de"}),
    # Text-only windows: seek moves to the last word's end (§6.14 step 1).
    ("words_without_timestamps", "tiny.en", "data/longform/ljspeech_LJ001_0001-0032.wav",
     {"word_timestamps": True, "without_timestamps": True}),
    # Languages whose words are split on Unicode code points, not spaces (§7.3): English
    # speech forced to Japanese / Thai gives text in those scripts, including tokens that are
    # partial UTF-8 sequences. T = 0 only, so no sampling is involved.
    ("words_base_ja_unicode", "base", "data/jfk/jfk.wav",
     {"word_timestamps": True, "language": "ja", "temperature": [0.0]}),
    ("words_base_th_unicode", "base", "data/jfk/jfk.wav",
     {"word_timestamps": True, "language": "th", "temperature": [0.0]}),
]


def main():
    models = {}
    out = {
        "generator": "scripts/make_option_golden.py",
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "model_sha256": {
            m: hashlib.sha256((MODELS / m / "model.bin").read_bytes()).hexdigest()
            for m in sorted({c[1] for c in CASES})
        },
        "cases": [],
    }
    for name, model_name, rel, kwargs in CASES:
        if model_name not in models:
            models[model_name] = WhisperModel(
                str(MODELS / model_name), device="cpu", compute_type="float32", cpu_threads=2, num_workers=1
            )
        model = models[model_name]
        samples = decode_audio(str(FIXTURES / rel))
        ctranslate2.set_random_seed(1234)
        kw = dict(kwargs)
        segments, info = model.transcribe(samples, beam_size=kw.pop("beam_size", 5), **kw)
        segs = [
            {
                "id": s.id, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text,
                "tokens": s.tokens, "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob,
                "temperature": s.temperature,
                **({"words": [[w.start, w.end, w.word, w.probability] for w in s.words]}
                   if s.words is not None else {}),
            }
            for s in segments
        ]
        out["cases"].append({
            "name": name, "model": model_name, "file": rel, "kwargs": kwargs,
            "language": info.language, "language_probability": info.language_probability,
            "segments": segs,
        })
        print(name, rel, len(segs), "segments", file=sys.stderr)
    dest = REPO / "tests" / "fixtures" / "extra" / "golden_options.json"
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print("wrote", dest, file=sys.stderr)


if __name__ == "__main__":
    main()
