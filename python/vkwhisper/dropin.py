"""Make ``import faster_whisper`` resolve to vkwhisper, for one process.

Nothing here runs on its own: installing vkwhisper never changes what
``import faster_whisper`` means. It is switched on explicitly, by

* ``python -m vkwhisper.run APP ARGS…`` (this process only), or
* the environment variable ``VKWHISPER_FASTER_WHISPER=1`` (read at Python
  start-up by the ``vkwhisper_dropin.pth`` hook the wheel installs; child
  processes inherit it), or
* calling :func:`install` before the application imports faster_whisper.

``faster_whisper`` and its modules (``audio``, ``transcribe``, ``utils``,
``vad``, ``tokenizer``, ``version``, ``feature_extractor``) then come from
vkwhisper, even when the real faster-whisper is installed too (a note on
stderr says so).
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

#: The environment variable that switches the drop-in on at start-up.
ENV = "VKWHISPER_FASTER_WHISPER"

_TARGETS = {
    "faster_whisper": "vkwhisper._faster_whisper",
    "faster_whisper.audio": "vkwhisper.audio",
    "faster_whisper.transcribe": "vkwhisper.transcribe",
    "faster_whisper.utils": "vkwhisper.utils",
    "faster_whisper.vad": "vkwhisper.vad",
    "faster_whisper.tokenizer": "vkwhisper.tokenizer",
    "faster_whisper.version": "vkwhisper._fw_version",
    "faster_whisper.feature_extractor": "vkwhisper.transcribe",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        if spec.name == "faster_whisper" and not hasattr(module, "__path__"):
            # A package, so that `import faster_whisper.audio` works.
            module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        mapped = _TARGETS.get(fullname)
        if mapped is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _Alias(mapped), is_package=fullname == "faster_whisper"
        )


def _real_faster_whisper():
    """Where a real faster-whisper is installed, if it is."""
    for finder in sys.meta_path:
        if isinstance(finder, _Finder):
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find("faster_whisper", None)
        except Exception:
            continue
        if spec is not None:
            return spec.origin or "(installed)"
    return None


def installed() -> bool:
    """Whether the drop-in is active in this process."""
    return any(isinstance(f, _Finder) for f in sys.meta_path)


def install(quiet: bool = False) -> None:
    """Route ``import faster_whisper`` (and its modules) to vkwhisper in this
    process. Call it before the application imports faster_whisper."""
    if installed():
        return
    real = _real_faster_whisper()
    if real is not None and not quiet:
        sys.stderr.write(
            f"vkwhisper: faster_whisper resolves to vkwhisper in this process "
            f"(the installed faster-whisper at {real} is not used)\n"
        )
    for name in [n for n in sys.modules if n == "faster_whisper" or n.startswith("faster_whisper.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _Finder())


def _startup() -> None:
    """The ``.pth`` hook: install when the environment variable says so."""
    if os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        install()
