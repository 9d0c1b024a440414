"""Run the parity table (parity_cases.py) with one library and dump JSON.

    python fw_runner.py --lib faster_whisper --out fw.json   # in a venv with faster-whisper 1.2.1
    python fw_runner.py --lib vkwhisper --out vk.json        # in a venv with vkwhisper

Both libraries run on the CPU in float32 with 2 threads on the same model
directories. Besides the table's transcriptions, the JSON records the API
surface (signatures, record fields, the text of typical errors) so the tests
can compare it too.
"""

import argparse
import dataclasses
import importlib
import inspect
import io
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_cases as pc  # noqa: E402


def _signature(fn):
    return [
        [p.name, str(p.kind), repr(p.default) if p.default is not inspect.Parameter.empty else None]
        for p in inspect.signature(fn).parameters.values()
    ]


def _fields(cls):
    out = []
    for f in dataclasses.fields(cls):
        default = None
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append([f.name, str(t).replace("typing.", ""), default])
    return out


def _error(fn):
    try:
        r = fn()
        if inspect.isgenerator(r) or isinstance(r, tuple):
            list(r[0] if isinstance(r, tuple) else r)
    except BaseException as e:  # noqa: BLE001 - recorded
        return [type(e).__name__, str(e)]
    return None


def api(lib, models):
    transcribe = importlib.import_module(lib.__name__ + ".transcribe")
    vad = importlib.import_module(lib.__name__ + ".vad")
    utils = importlib.import_module(lib.__name__ + ".utils")
    tiny, base = models["tiny.en"], models["base"]
    batched = lib.BatchedInferencePipeline(tiny)
    second = np.zeros(16000, dtype=np.float32)
    return {
        "all": sorted(lib.__all__),
        "signatures": {
            "WhisperModel.__init__": _signature(lib.WhisperModel.__init__),
            "WhisperModel.transcribe": _signature(lib.WhisperModel.transcribe),
            "WhisperModel.detect_language": _signature(lib.WhisperModel.detect_language),
            "BatchedInferencePipeline.__init__": _signature(lib.BatchedInferencePipeline.__init__),
            "BatchedInferencePipeline.transcribe": _signature(
                lib.BatchedInferencePipeline.transcribe
            ),
            "decode_audio": _signature(lib.decode_audio),
            "download_model": _signature(lib.download_model),
            "format_timestamp": _signature(lib.format_timestamp),
            "available_models": _signature(lib.available_models),
            "get_speech_timestamps": _signature(vad.get_speech_timestamps),
            "collect_chunks": _signature(vad.collect_chunks),
        },
        "fields": {
            name: _fields(getattr(transcribe, name))
            for name in ["Word", "Segment", "TranscriptionOptions", "TranscriptionInfo"]
        }
        | {"VadOptions": _fields(vad.VadOptions)},
        "asdict_methods": {
            name: hasattr(getattr(transcribe, name), "_asdict")
            for name in ["Word", "Segment", "TranscriptionOptions", "TranscriptionInfo"]
        },
        "available_models": lib.available_models(),
        "format_timestamp": [
            lib.format_timestamp(t, h, m)
            for t, h, m in [(0, False, "."), (1.2345, False, "."), (3725.5, False, ","),
                            (59.9996, True, "."), (7200.0, False, ".")]
        ],
        "model_attrs": {
            k: getattr(tiny, k)
            for k in ["frames_per_second", "tokens_per_second", "time_precision",
                      "max_length", "input_stride", "num_samples_per_token"]
        }
        | {
            "supported_languages_en": tiny.supported_languages,
            "supported_languages_base": base.supported_languages,
            "is_multilingual": [tiny.model.is_multilingual, base.model.is_multilingual],
            "feature_extractor": [
                tiny.feature_extractor.sampling_rate,
                tiny.feature_extractor.hop_length,
                tiny.feature_extractor.chunk_length,
                tiny.feature_extractor.n_samples,
                tiny.feature_extractor.nb_max_frames,
                tiny.feature_extractor.time_per_frame,
            ],
        },
        "errors": {
            "unknown_kwarg": _error(lambda: tiny.transcribe(pc.JFK, no_such_option=1)),
            "unknown_kwarg_batched": _error(lambda: batched.transcribe(pc.JFK, batch=4)),
            "bad_task": _error(lambda: base.transcribe(pc.JFK, task="summarize")),
            "bad_language": _error(lambda: base.transcribe(pc.JFK, language="xx")),
            "bad_model_size": _error(lambda: lib.download_model("tiny.xx")),
            "negative_timestamp": _error(lambda: lib.format_timestamp(-1.0)),
            "vad_unknown_key": _error(
                lambda: tiny.transcribe(pc.JFK, vad_filter=True, vad_parameters={"nope": 1})
            ),
            "batched_long_without_vad": _error(
                lambda: batched.transcribe(pc.audio("multi"), vad_filter=False)
            ),
            "no_audio_detect": _error(lambda: base.detect_language()),
            "too_many_new_tokens": _error(lambda: tiny.transcribe(pc.JFK, max_new_tokens=500)),
            # Bad values: faster-whisper's (CTranslate2's) wording.
            "beam_size_0": _error(lambda: tiny.transcribe(second, beam_size=0)),
            "best_of_0_sampling": _error(
                lambda: tiny.transcribe(second, best_of=0, temperature=0.5)
            ),
            "patience_0": _error(lambda: tiny.transcribe(second, patience=0)),
            "repetition_penalty_0": _error(lambda: tiny.transcribe(second, repetition_penalty=0)),
            "max_new_tokens_0": _error(lambda: tiny.transcribe(second, max_new_tokens=0)),
            "clip_timestamps_text": _error(lambda: tiny.transcribe(second, clip_timestamps="a,b")),
            "missing_file": _error(lambda: tiny.transcribe("/nonexistent/audio.wav")),
            "missing_file_decode": _error(lambda: lib.decode_audio("/nonexistent/audio.wav")),
            "text_file_object": _error(lambda: tiny.transcribe(io.StringIO("not bytes"))),
            "vad_options_positional": _error(lambda: vad.VadOptions(0.5, None, 0, 1.0, 100, 30, 7)),
            # Accepted by faster-whisper where the value goes unused.
            "best_of_0_greedy": _error(lambda: tiny.transcribe(second, best_of=0, temperature=0)),
            "beam_size_0_sampling": _error(
                lambda: tiny.transcribe(second, beam_size=0, temperature=0.5)
            ),
            "detection_settings_unused": _error(
                lambda: tiny.transcribe(
                    second, language_detection_segments=0, language_detection_threshold=None
                )
            ),
        },
        # Type only: faster-whisper's message is CTranslate2's pybind11 listing.
        "error_types": {
            "beam_size_float": (_error(lambda: tiny.transcribe(second, beam_size=2.5)) or [None])[0],
            "model_unknown_kwarg": (
                _error(lambda: lib.WhisperModel(pc.model_dir("tiny.en"), no_such_option=1))
                or [None]
            )[0],
        },
        "utils_get_end": utils.get_end(
            [{"end": 1.0, "words": [{"end": 0.5}]}, {"end": 2.0, "words": []}]
        ),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, choices=["faster_whisper", "vkwhisper"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    ap.add_argument("--no-api", action="store_true")
    args = ap.parse_args()

    lib = importlib.import_module(args.lib)
    importlib.import_module(args.lib + ".vad")
    if args.lib == "faster_whisper":
        import ctranslate2

        ctranslate2.set_random_seed(1234)
    models = {
        name: lib.WhisperModel(
            pc.model_dir(name), device="cpu", compute_type="float32", cpu_threads=2, num_workers=1
        )
        for name in ("tiny.en", "base")
    }
    wanted = set(filter(None, args.cases.split(",")))
    out = {"lib": args.lib, "version": lib.__version__, "cases": {}}
    for case in pc.CASES:
        if wanted and case[0] not in wanted:
            continue
        t = time.perf_counter()
        rec = pc.run_case(lib, models, case)
        rec["seconds"] = round(time.perf_counter() - t, 3)
        out["cases"][case[0]] = rec
        print(f"{args.lib}: {case[0]} {rec['seconds']:.2f}s"
              + (f" ERROR {rec['error']}" if "error" in rec else ""), file=sys.stderr)
    if not args.no_api:
        out["api"] = pc.jsonable(api(lib, models))
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
