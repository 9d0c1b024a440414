"""faster-whisper's language codes and tasks (``faster_whisper.tokenizer``)."""

from vkwhisper import _native

_TASKS = (
    "transcribe",
    "translate",
)

# faster-whisper lists the codes alphabetically with "yue" (added by
# large-v3) last; error messages join them in this order.
_LANGUAGE_CODES = tuple(sorted(c for c in _native.languages() if c != "yue")) + ("yue",)
