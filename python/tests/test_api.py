"""The API surface is faster-whisper 1.2.1's: the same signatures and
defaults, record fields, helper results, and the same exceptions (type and
message) for unknown keywords and bad values — compared with what
faster-whisper itself gives (fw_runner.py's ``api`` record)."""

import pytest

import fw_runner
import parity_cases as pc

import vkwhisper


@pytest.fixture(scope="module")
def surfaces(fw_results, models):
    return fw_results["api"], pc.jsonable(fw_runner.api(vkwhisper, models))


def test_all(surfaces):
    """``faster_whisper.__all__`` exactly under the drop-in; vkwhisper's own
    adds FASTER_WHISPER_VERSION."""
    import vkwhisper._faster_whisper as dropin_module

    fw, vk = surfaces
    assert sorted(dropin_module.__all__) == fw["all"]
    assert set(fw["all"]) <= set(vk["all"])


@pytest.mark.parametrize(
    "section",
    ["fields", "asdict_methods", "available_models", "format_timestamp",
     "model_attrs", "utils_get_end"],
)
def test_surface(surfaces, section):
    fw, vk = surfaces
    assert vk[section] == fw[section]


SIGNATURES = [
    "WhisperModel.__init__",
    "WhisperModel.transcribe",
    "WhisperModel.detect_language",
    "BatchedInferencePipeline.__init__",
    "BatchedInferencePipeline.transcribe",
    "decode_audio",
    "download_model",
    "format_timestamp",
    "available_models",
    "get_speech_timestamps",
    "collect_chunks",
]


@pytest.mark.parametrize("name", SIGNATURES)
def test_signature(surfaces, name):
    fw, vk = surfaces
    assert vk["signatures"][name] == fw["signatures"][name]


ERRORS = [
    "unknown_kwarg",
    "unknown_kwarg_batched",
    "bad_task",
    "bad_language",
    "bad_model_size",
    "negative_timestamp",
    "vad_unknown_key",
    "batched_long_without_vad",
    "no_audio_detect",
    "too_many_new_tokens",
    "beam_size_0",
    "best_of_0_sampling",
    "patience_0",
    "repetition_penalty_0",
    "max_new_tokens_0",
    "clip_timestamps_text",
    "missing_file",
    "missing_file_decode",
    "text_file_object",
    "vad_options_positional",
]

# Calls faster-whisper accepts (the value goes unused): no error either.
ACCEPTED = ["best_of_0_greedy", "beam_size_0_sampling", "detection_settings_unused"]


@pytest.mark.parametrize("name", ERRORS)
def test_error(surfaces, name):
    fw, vk = surfaces
    assert fw["errors"][name] is not None, f"faster-whisper raised nothing for {name}"
    assert vk["errors"][name] == fw["errors"][name]


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted(surfaces, name):
    fw, vk = surfaces
    assert fw["errors"][name] is None
    assert vk["errors"][name] is None


@pytest.mark.parametrize("name", ["beam_size_float", "model_unknown_kwarg"])
def test_error_type(surfaces, name):
    fw, vk = surfaces
    assert fw["error_types"][name] == "TypeError"
    assert vk["error_types"][name] == fw["error_types"][name]
