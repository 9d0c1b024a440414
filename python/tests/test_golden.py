"""``WhisperModel(<model dir>).transcribe(...)`` from Python gives the golden
faster-whisper 1.2.1 outputs of tests/fixtures/golden: tokens, segments,
words and ``info`` fields (comparison rules in that directory's README).

A subset of each golden file's inputs keeps the run short (translation is
in the parity table, on 30 s of German); inputs that are
not 16 kHz mono 16-bit WAV are read from ``golden/pcm`` (the exact samples
faster-whisper decoded), passed as a path.
"""

import json
import os

import pytest

import parity_cases as pc
from conftest import load_model
from test_parity import Diff, PROB, TIME

import vkwhisper

GOLDEN = os.path.join(pc.REPO, "tests", "fixtures", "golden")

# (golden file, the inputs of it to run, how).
TABLE = [
    ("tiny.en.float32.beam5.json",
     ["jfk/jfk.wav", "ljspeech/LJ001-0001.flac", "ljspeech/LJ001-0002.flac",
      "espeak/espeak_01.wav"], "seq"),
    ("tiny.en.float32.beam5.words.json",
     ["jfk/jfk.wav", "ljspeech/LJ001-0003.flac", "espeak/espeak_02.wav"], "seq"),
    ("tiny.en.float32.greedy.json",
     ["jfk/jfk.wav", "ljspeech/LJ001-0004.flac", "espeak/espeak_21.wav"], "seq"),
    ("tiny.en.float32.beam5.nocond.notimestamps.json",
     ["jfk/jfk.wav", "ljspeech/LJ001-0005.flac"], "seq"),
    ("tiny.en.float32.beam5.prompt.json", ["jfk/jfk.wav", "jfk/jfk.mp3"], "seq"),
    ("tiny.en.float32.beam5.vad.words.json",
     ["jfk/jfk.wav", "jfk/jfk.mp3"], "seq"),
    ("tiny.en.float32.beam5.batched8.json", ["jfk/jfk.wav"], "batched"),
    ("tiny.en.float32.beam5.batched8.words.json", ["jfk/jfk.wav"], "batched"),
    ("base.float32.beam5.autolang.json", ["jfk/jfk.wav"], "seq"),
]

# What the batched goldens were made with (tests/fixtures/golden/README.md).
BATCHED_KWARGS = {
    "tiny.en.float32.beam5.batched8.json": {"batch_size": 8, "beam_size": 5},
    "tiny.en.float32.beam5.batched8.words.json": {
        "batch_size": 8, "beam_size": 5, "word_timestamps": True,
    },
}


def _golden(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return json.load(f)


def input_path(rel):
    """The file faster-whisper's samples came from: the original 16-bit
    WAV, else its golden/pcm copy."""
    if rel.endswith(".wav"):
        return os.path.join(pc.DATA, rel)
    set_, name = os.path.split(rel)
    return os.path.join(GOLDEN, "pcm", set_, os.path.splitext(name)[0] + ".wav")


CASES = [(g, f, how) for g, files, how in TABLE for f in files]


@pytest.mark.parametrize("golden,rel,how", CASES, ids=[f"{g[:-5]}:{f}" for g, f, _ in CASES])
def test_golden(golden, rel, how):
    g = _golden(golden)
    want = g["files"][rel]
    if isinstance(want, list):
        # The batched words golden lists segments only.
        want = {"segments": want}
    model_name = "base" if golden.startswith("base.") else "tiny.en"
    if "vad" in golden or how == "batched":
        from conftest import vad_path

        vad_path()
    model = load_model(model_name)
    path = input_path(rel)
    assert os.path.isfile(path), path
    if how == "batched":
        segments, info = vkwhisper.BatchedInferencePipeline(model).transcribe(
            path, **BATCHED_KWARGS[golden]
        )
    else:
        segments, info = model.transcribe(path, **g["transcribe_kwargs"])
    segments = list(segments)

    d = Diff(f"{golden} {rel}")
    if "duration" in want:
        d.near("info.duration", want["duration"], info.duration, 1e-9)
    if "duration_after_vad" in want:
        d.near("info.duration_after_vad", want["duration_after_vad"], info.duration_after_vad, 1e-6)
    if "language" in want:
        d.eq("info.language", want["language"], info.language)
        d.near("info.language_probability", want["language_probability"],
               info.language_probability, PROB)
        d.eq("type(info.language_probability)",
             type(want["language_probability"]).__name__, type(info.language_probability).__name__)
    if "language_probs_top5" in want:
        got = info.all_language_probs[:5]
        d.eq("info.all_language_probs top languages",
             [l for l, _ in want["language_probs_top5"]][:2], [l for l, _ in got][:2])
        for (lw, pw), (lg, pg) in zip(want["language_probs_top5"], got):
            if lw == lg:
                d.near(f"info.all_language_probs[{lw}]", pw, pg, PROB)
    if "effective_options" in g:
        opts = pc.jsonable(info.transcription_options)
        for k, v in g["effective_options"].items():
            d.eq(f"info.transcription_options.{k}", v, opts[k])
    if "vad_options" in g:
        d.eq("info.vad_options", g["vad_options"], pc.jsonable(info.vad_options))

    for i, (w, s) in enumerate(zip(want["segments"], segments)):
        at = f"segments[{i}]"
        if w.get("temperature", 0) > 0:
            # Sampled after a fallback: check that vkwhisper fell back too.
            if not s.temperature or s.temperature <= 0:
                d.problems.append(f"{at}: golden fell back to {w['temperature']}, got {s.temperature}")
            break
        # (The batched goldens hold fewer fields.)
        for key in ("id", "seek", "text", "tokens", "temperature"):
            if key in w:
                d.eq(f"{at}.{key}", w[key], getattr(s, key))
        for key in ("start", "end"):
            d.near(f"{at}.{key}", w[key], getattr(s, key), TIME)
        for key in ("avg_logprob", "no_speech_prob"):
            if key in w:
                d.near(f"{at}.{key}", w[key], getattr(s, key), PROB)
        if "compression_ratio" in w:
            d.near(f"{at}.compression_ratio", w["compression_ratio"], s.compression_ratio, 1e-9)
        if "words" in w:
            d.eq(f"{at} word count", len(w["words"]), len(s.words or []))
            for j, (ww, sw) in enumerate(zip(w["words"], s.words or [])):
                d.eq(f"{at}.words[{j}].word", ww[2], sw.word)
                d.near(f"{at}.words[{j}].start", ww[0], sw.start, TIME)
                d.near(f"{at}.words[{j}].end", ww[1], sw.end, TIME)
                d.near(f"{at}.words[{j}].probability", ww[3], sw.probability, PROB)
        elif "tokens" in w and "id" in w:
            d.eq(f"{at}.words", None, s.words)
    else:
        d.eq("segment count", len(want["segments"]), len(segments))
        if "text" in want:
            d.eq("text", want["text"], "".join(s.text for s in segments))
    d.check()
