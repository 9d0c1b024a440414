"""Versions: vkwhisper's own, and the faster-whisper release whose API it gives."""

__version__ = "0.1.0"

#: The faster-whisper release this package's API follows (names, defaults,
#: types, error wording). ``faster_whisper.__version__`` under the drop-in.
FASTER_WHISPER_VERSION = "1.2.1"
