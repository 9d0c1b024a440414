"""The faster-whisper ↔ vkwhisper parity table: keyword combinations, the
inputs they run on, and how a run is recorded as JSON.

This file is imported by ``fw_runner.py`` under either library (faster-whisper
1.2.1 in its own venv, vkwhisper in the test venv), so it needs only the
standard library, NumPy and the library under test. Inputs are built from
16-bit WAV fixtures and passed as paths or as NumPy arrays, so both libraries
see exactly the same samples.
"""

import dataclasses
import math
import os
import wave

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "fixtures", "data")
PCM = os.path.join(REPO, "tests", "fixtures", "golden", "pcm")
JFK = os.path.join(DATA, "jfk", "jfk.wav")
LONGFORM = os.path.join(DATA, "longform", "ljspeech_LJ001_0001-0032.wav")
MULTILINGUAL = os.path.join(PCM, "fw_testdata", "multilingual.wav")
RATE = 16000


def model_dir(name):
    """The CTranslate2 directory of an installed model (the vkwhisper cache,
    where scripts/fetch-models.sh puts them)."""
    root = os.environ.get("VKWHISPER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vkwhisper"
    )
    return os.path.join(root, "models", name)


def read_wav(path):
    """16 kHz mono 16-bit WAV → float32 samples (``int16 / 32768``, as
    faster-whisper's decode_audio gives)."""
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE), path
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _silence(seconds):
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def audio(name):
    """An input of the table: a path (str) or a float32 array. Kept short
    (CI runs the table under both libraries on two cores)."""
    if name == "jfk":
        return JFK
    if name == "multi":
        # Two windows of continuous speech (36 s).
        return read_wav(LONGFORM)[: 36 * RATE]
    if name == "gaps":
        # Speech with silences, for the VAD (29 s): jfk, 3 s of silence, an
        # espeak sentence, 3 s of silence, 6 s of longform.
        return np.concatenate(
            [
                read_wav(JFK),
                _silence(3.0),
                read_wav(os.path.join(DATA, "espeak", "espeak_07.wav")),
                _silence(3.0),
                read_wav(LONGFORM)[: 6 * RATE],
            ]
        )
    if name == "gaps_long":
        # More than 30 s of speech (two batched pieces): gaps and 10 s more.
        more = read_wav(LONGFORM)[6 * RATE : 16 * RATE]
        return np.concatenate([audio("gaps"), _silence(2.5), more])
    if name == "german":
        # The German half of multilingual.mp3 (the exact samples FW decoded).
        return read_wav(MULTILINGUAL)[30 * RATE :]
    if name == "mixed":
        # English, then German (32 s: two windows).
        return read_wav(MULTILINGUAL)[18 * RATE : 50 * RATE]
    raise KeyError(name)


# (case id, model, input, mode, keyword arguments). mode: "seq"
# (WhisperModel.transcribe), "batched" (BatchedInferencePipeline.transcribe)
# or "detect" (WhisperModel.detect_language). "@vad" in kwargs is replaced by
# a VadOptions instance built from the dict that follows it; "@ids" by the
# token ids of the text that follows.
CASES = [
    ("default", "tiny.en", "jfk", "seq", {}),
    ("greedy", "tiny.en", "multi", "seq", {"beam_size": 1}),
    ("beam2_patience2", "tiny.en", "jfk", "seq", {"beam_size": 2, "patience": 2.0}),
    ("temperature_single", "tiny.en", "jfk", "seq", {"temperature": 0.0}),
    ("temperature_tuple", "tiny.en", "jfk", "seq",
     {"temperature": (0.0, 0.4), "compression_ratio_threshold": None, "log_prob_threshold": None}),
    ("no_thresholds", "tiny.en", "gaps", "seq",
     {"log_prob_threshold": None, "no_speech_threshold": None}),
    ("initial_prompt", "tiny.en", "jfk", "seq", {"initial_prompt": "Kennedy. Americans. Country."}),
    ("initial_prompt_ids", "tiny.en", "jfk", "seq", {"initial_prompt": ["@ids", " Kennedy speaks."]}),
    ("prefix", "tiny.en", "jfk", "seq", {"prefix": "And so my fellow Americans"}),
    ("hotwords", "tiny.en", "jfk", "seq", {"hotwords": "Kennedy Americans"}),
    ("prompt_nocond", "tiny.en", "multi", "seq",
     {"initial_prompt": "Printing.", "condition_on_previous_text": False}),
    ("words", "tiny.en", "jfk", "seq", {"word_timestamps": True}),
    ("words_multi", "tiny.en", "multi", "seq", {"word_timestamps": True}),
    ("words_no_punct_merge", "tiny.en", "jfk", "seq",
     {"word_timestamps": True, "prepend_punctuations": "", "append_punctuations": ""}),
    ("words_hallucination", "tiny.en", "gaps", "seq",
     {"word_timestamps": True, "hallucination_silence_threshold": 1.0}),
    ("vad_default", "tiny.en", "gaps", "seq", {"vad_filter": True}),
    ("vad_dict", "tiny.en", "gaps", "seq",
     {"vad_filter": True,
      "vad_parameters": {"threshold": 0.4, "min_silence_duration_ms": 500, "speech_pad_ms": 200}}),
    ("vad_options_words", "tiny.en", "gaps", "seq",
     {"vad_filter": True, "word_timestamps": True,
      "vad_parameters": ["@vad", {"min_silence_duration_ms": 1000, "max_speech_duration_s": 15.0}]}),
    ("clip_string", "tiny.en", "jfk", "seq", {"clip_timestamps": "1.5,6.0"}),
    ("clip_list_open_end", "tiny.en", "multi", "seq", {"clip_timestamps": [0.0, 5.0, 20.0]}),
    ("without_timestamps", "tiny.en", "multi", "seq", {"without_timestamps": True}),
    ("max_new_tokens", "tiny.en", "jfk", "seq", {"max_new_tokens": 10}),
    ("no_suppression", "tiny.en", "jfk", "seq", {"suppress_blank": False, "suppress_tokens": []}),
    ("suppress_ids", "tiny.en", "jfk", "seq", {"suppress_tokens": [-1, 293, 1029]}),
    ("ngram_repetition", "tiny.en", "jfk", "seq",
     {"no_repeat_ngram_size": 2, "repetition_penalty": 1.2}),
    ("length_penalty", "tiny.en", "jfk", "seq", {"length_penalty": 0.5}),
    ("max_initial_timestamp", "tiny.en", "jfk", "seq", {"max_initial_timestamp": 0.2}),
    ("batched8", "tiny.en", "gaps_long", "batched", {"batch_size": 8}),
    ("batched8_words", "tiny.en", "gaps_long", "batched", {"batch_size": 8, "word_timestamps": True}),
    ("batched8_timestamps", "tiny.en", "gaps", "batched",
     {"batch_size": 8, "without_timestamps": False}),
    ("batched8_vad_dict", "tiny.en", "gaps", "batched",
     {"batch_size": 8, "vad_parameters": {"min_silence_duration_ms": 500, "max_speech_duration_s": 10}}),
    ("batched8_clips", "tiny.en", "jfk", "batched",
     {"batch_size": 8, "clip_timestamps": [{"start": 0.0, "end": 5.5}, {"start": 5.5, "end": 11.0}]}),
    ("batched8_prompt", "tiny.en", "jfk", "batched",
     {"batch_size": 8, "initial_prompt": "Kennedy speaks.", "vad_filter": False}),
    ("batched2_short_novad", "tiny.en", "jfk", "batched", {"batch_size": 2, "vad_filter": False}),
    ("base_detect", "base", "jfk", "seq", {"language": None}),
    ("base_translate", "base", "german", "seq", {"task": "translate"}),
    ("base_german", "base", "german", "seq", {"language": "de", "beam_size": 2}),
    ("base_multilingual", "base", "mixed", "seq", {"multilingual": True, "beam_size": 1}),
    ("base_detect_segments", "base", "mixed", "seq",
     {"language_detection_segments": 2, "language_detection_threshold": 0.99, "beam_size": 1,
      "temperature": 0.0, "clip_timestamps": "0,12"}),
    ("base_detect_language", "base", "german", "detect", {}),
    ("base_detect_language_vad", "base", "gaps", "detect",
     {"vad_filter": True, "language_detection_segments": 2}),
    ("base_batched_detect", "base", "gaps", "batched", {"batch_size": 8, "language": None}),
]


def resolve_kwargs(kwargs, lib, model):
    """Replace the table's markers by the library's own objects."""
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, list) and v and v[0] == "@vad":
            v = lib.vad.VadOptions(**v[1])
        elif isinstance(v, list) and v and v[0] == "@ids":
            v = list(model.hf_tokenizer.encode(v[1], add_special_tokens=False).ids)
        elif isinstance(v, dict):
            v = dict(v)
        out[k] = v
    return out


def jsonable(value):
    """Records → plain JSON values (dataclasses as dicts, tuples as lists,
    infinities as strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def run_case(lib, models, case):
    """Run one case with ``lib`` (the faster_whisper or vkwhisper module);
    returns its JSON record."""
    cid, model_name, input_name, mode, kwargs = case
    model = models[model_name]
    kw = resolve_kwargs(kwargs, lib, model)
    a = audio(input_name)
    record = {"id": cid, "mode": mode, "kwargs": jsonable(kw)}
    try:
        if mode == "detect":
            language, probability, probs = model.detect_language(a if not isinstance(a, str) else lib.decode_audio(a), **kw)
            record["detect"] = {
                "language": language,
                "language_probability": float(probability),
                "top5": [[l, float(p)] for l, p in probs[:5]],
            }
            return record
        if mode == "batched":
            segments, info = lib.BatchedInferencePipeline(model).transcribe(a, **kw)
        else:
            segments, info = model.transcribe(a, **kw)
        segs = [jsonable(s) for s in segments]
        record["info"] = jsonable(info)
        record["info"]["language_probability_type"] = type(info.language_probability).__name__
        if info.all_language_probs is not None:
            record["info"]["all_language_probs"] = record["info"]["all_language_probs"][:5]
        record["segments"] = segs
    except Exception as e:  # recorded: both libraries must fail alike
        record["error"] = {"type": type(e).__name__, "message": str(e)}
    return record
