"""What ``import faster_whisper`` gives under the drop-in (vkwhisper.dropin):
faster-whisper's package namespace, backed by vkwhisper."""

from vkwhisper.audio import decode_audio
from vkwhisper.transcribe import BatchedInferencePipeline, WhisperModel
from vkwhisper.utils import available_models, download_model, format_timestamp
from vkwhisper.version import FASTER_WHISPER_VERSION as __version__

__all__ = [
    "available_models",
    "decode_audio",
    "WhisperModel",
    "BatchedInferencePipeline",
    "download_model",
    "format_timestamp",
    "__version__",
]

#: Set on the stand-in so callers can tell it from the real package.
__vkwhisper__ = True
