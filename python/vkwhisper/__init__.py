"""vkwhisper: Whisper speech-to-text with faster-whisper 1.2.1's Python API,
on any GPU through Vulkan or on the CPU, token for token as faster-whisper.

    from vkwhisper import WhisperModel
    segments, info = WhisperModel("tiny.en").transcribe("audio.wav")
    print("".join(s.text for s in segments))

The names, defaults and types are faster-whisper's (``WhisperModel``,
``BatchedInferencePipeline``, ``decode_audio``, ``available_models``,
``download_model``, ``format_timestamp``, and the modules ``audio``,
``transcribe``, ``utils``, ``vad``, ``tokenizer``). An application written
for faster-whisper runs unmodified with ``python -m vkwhisper.run APP ARGS…``
(see ``vkwhisper.run``).
"""

from vkwhisper.audio import decode_audio
from vkwhisper.transcribe import BatchedInferencePipeline, WhisperModel
from vkwhisper.utils import available_models, download_model, format_timestamp
from vkwhisper.version import FASTER_WHISPER_VERSION, __version__

__all__ = [
    "available_models",
    "decode_audio",
    "WhisperModel",
    "BatchedInferencePipeline",
    "download_model",
    "format_timestamp",
    "__version__",
    "FASTER_WHISPER_VERSION",
]
