"""faster-whisper's ``utils``: model names, downloads, timestamps, the logger."""

import logging
import os
import re
import shutil
from typing import List, Optional, Union

from vkwhisper import _native

# faster-whisper 1.2.1's model names and the Hugging Face repositories they
# stand for (the keys are what ``available_models()`` returns, in order).
_MODELS = {
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "tiny": "Systran/faster-whisper-tiny",
    "base.en": "Systran/faster-whisper-base.en",
    "base": "Systran/faster-whisper-base",
    "small.en": "Systran/faster-whisper-small.en",
    "small": "Systran/faster-whisper-small",
    "medium.en": "Systran/faster-whisper-medium.en",
    "medium": "Systran/faster-whisper-medium",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large": "Systran/faster-whisper-large-v3",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}

# The files a model directory is made of (what download_model copies).
_MODEL_FILES = re.compile(
    r"^(config\.json|preprocessor_config\.json|model\.bin|tokenizer\.json|vocabulary\..*)$"
)


def available_models() -> List[str]:
    """Returns the names of available models."""
    return list(_MODELS.keys())


def get_logger():
    """Returns the module logger (named ``faster_whisper``, as apps configure it)."""
    return logging.getLogger("faster_whisper")


def get_assets_path():
    """The directory of the Silero VAD model (the vkwhisper cache's ``vad``)."""
    return os.path.dirname(_native.vad_model_path(None, True))


def download_model(
    size_or_id: str,
    output_dir: Optional[str] = None,
    local_files_only: bool = False,
    cache_dir: Optional[str] = None,
    revision: Optional[str] = None,
    use_auth_token: Optional[Union[str, bool]] = None,
):
    """Downloads a CTranslate2 Whisper model (a size name or a known Hugging
    Face repository id) into the vkwhisper cache (``cache_dir`` if given) and
    returns its directory; with ``output_dir`` the files are copied there and
    that directory is returned.

    Raises:
      ValueError: if the model size is invalid.
      FileNotFoundError: with ``local_files_only`` when the model is not cached.
    """
    if not re.match(r".*/.*", size_or_id) and size_or_id not in _MODELS:
        raise ValueError(
            "Invalid model size '%s', expected one of: %s"
            % (size_or_id, ", ".join(_MODELS.keys()))
        )
    # revision and use_auth_token: the vkwhisper hub pins the files it
    # downloads (sha256), so there is no revision to choose.
    path = _native.pull_model(
        size_or_id,
        None if cache_dir is None else os.fspath(cache_dir),
        bool(local_files_only),
    )
    if output_dir is None:
        return path
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    for name in sorted(os.listdir(path)):
        if _MODEL_FILES.match(name):
            shutil.copyfile(os.path.join(path, name), os.path.join(output_dir, name))
    return output_dir


def format_timestamp(
    seconds: float,
    always_include_hours: bool = False,
    decimal_marker: str = ".",
) -> str:
    """``[HH:]MM:SS.mmm`` of a non-negative number of seconds."""
    assert seconds >= 0, "non-negative timestamp expected"
    total_ms = round(seconds * 1000.0)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1_000)
    prefix = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{prefix}{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def get_end(segments: List[dict]) -> Optional[float]:
    """The end of the last word of the last segment with words, else the
    last segment's end (``None`` without segments)."""
    for s in reversed(segments):
        for w in reversed(s["words"]):
            return w["end"]
    return segments[-1]["end"] if segments else None
