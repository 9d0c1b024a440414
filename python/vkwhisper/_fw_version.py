"""``faster_whisper.version`` under the drop-in."""

from vkwhisper.version import FASTER_WHISPER_VERSION as __version__  # noqa: F401
