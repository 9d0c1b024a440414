"""Run an application written for faster-whisper on vkwhisper, unmodified:

    python -m vkwhisper.run APP [ARGS…]        # APP: a console script (whisper-ctranslate2),
                                               #      or the path of a Python script
    python -m vkwhisper.run -m MODULE [ARGS…]  # like python -m MODULE

For this process only, ``import faster_whisper`` (and its modules) resolves
to vkwhisper (see ``vkwhisper.dropin``); then APP runs as ``__main__`` with
``sys.argv`` set to ``[APP, ARGS…]``. The same command is installed as
``vkwhisper-run``.
"""

import os
import runpy
import shutil
import sys

from vkwhisper import dropin

USAGE = """usage: python -m vkwhisper.run APP [ARGS...]
       python -m vkwhisper.run -m MODULE [ARGS...]

Runs APP (a console script such as whisper-ctranslate2, or a Python script)
with `import faster_whisper` resolving to vkwhisper in this process only.
"""


def _entry_point(name):
    """The console-script entry point called ``name``, if one is installed."""
    from importlib import metadata

    try:
        eps = metadata.entry_points(group="console_scripts")
    except TypeError:  # Python 3.9: a dict of groups
        eps = metadata.entry_points().get("console_scripts", [])
    for ep in eps:
        if ep.name == name:
            return ep
    return None


def _is_python_script(path):
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return path.endswith(".py") or (head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0])


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    dropin.install()
    if args[0] == "-m":
        if len(args) < 2:
            sys.stderr.write(USAGE)
            return 2
        sys.argv = [args[1]] + args[2:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    app, rest = args[0], args[1:]
    if os.path.isfile(app) and _is_python_script(app):
        sys.argv = [app] + rest
        runpy.run_path(app, run_name="__main__")
        return 0
    ep = _entry_point(app)
    if ep is not None:
        sys.argv = [app] + rest
        result = ep.load()()
        return result if isinstance(result, int) else (0 if result is None else 1)
    found = shutil.which(app)
    if found and _is_python_script(found):
        sys.argv = [found] + rest
        runpy.run_path(found, run_name="__main__")
        return 0
    sys.stderr.write(
        f"vkwhisper.run: {app!r} is neither a Python script nor an installed console script\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
