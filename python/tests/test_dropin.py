"""Drop-in: an unmodified application built on faster-whisper runs on
vkwhisper, and installing vkwhisper never silently shadows a real
faster-whisper.

scripts/python-tests.sh installs whisper-ctranslate2 from PyPI (``--no-deps``:
its dependencies except faster-whisper, ctranslate2 and PyAV) into the test
venv, which has no faster-whisper; and the vkwhisper wheel into the
faster-whisper venv (``VKW_FW_PYTHON``), next to the real faster-whisper.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import parity_cases as pc
from conftest import missing, model_path

import vkwhisper.dropin

JFK_TEXT = (
    "And so, my fellow Americans ask not what your country can do for you "
    "ask what you can do for your country."
)


def _env(**extra):
    env = dict(os.environ)
    env.pop(vkwhisper.dropin.ENV, None)
    env.update(extra)
    return env


def _python(code, python=sys.executable, **env):
    return subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=600,
    )


def _whisper_ctranslate2():
    if importlib.util.find_spec("whisper_ctranslate2") is None:
        missing(
            "whisper-ctranslate2 is not installed in this venv",
            "scripts/python-tests.sh, which installs it",
        )
    if importlib.util.find_spec("faster_whisper") is not None:
        pytest.fail("this venv must not contain faster-whisper", pytrace=False)


def test_no_faster_whisper_without_the_switch():
    """Here (no faster-whisper installed) `import faster_whisper` fails
    unless the drop-in is switched on."""
    r = _python("import faster_whisper")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, r.stderr
    r = _python(
        "import faster_whisper; print(faster_whisper.__version__, faster_whisper.__vkwhisper__)",
        **{vkwhisper.dropin.ENV: "1"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1.2.1", "True"]


def test_switch_over_another_faster_whisper(tmp_path):
    """With another faster_whisper importable, it is the one imported; the
    switch replaces it for that process only, and says so on stderr."""
    fake = tmp_path / "faster_whisper"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    code = """
        import faster_whisper, faster_whisper.transcribe as t
        print(getattr(faster_whisper, "REAL", False), hasattr(t, "WhisperModel"))
    """
    r = _python("import faster_whisper; print(faster_whisper.REAL)", PYTHONPATH=str(tmp_path))
    assert r.stdout.strip() == "True", r.stderr
    assert r.stderr == ""
    r = _python(code, PYTHONPATH=str(tmp_path), **{vkwhisper.dropin.ENV: "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]
    assert "is not used" in r.stderr


def test_real_faster_whisper_is_not_shadowed(fw_python_path):
    """vkwhisper installed next to the real faster-whisper 1.2.1 (the
    parity venv): `import faster_whisper` is still the real one."""
    code = """
        import faster_whisper, vkwhisper
        print(faster_whisper.__version__, getattr(faster_whisper, "__vkwhisper__", False))
        print(faster_whisper.__file__)
    """
    r = _python(code, python=fw_python_path)
    if "No module named 'vkwhisper'" in r.stderr:
        missing("vkwhisper is not installed in the faster-whisper venv", "scripts/python-tests.sh")
    assert r.returncode == 0, r.stderr
    version, flag, path = r.stdout.split()
    assert (version, flag) == ("1.2.1", "False")
    assert "vkwhisper" not in path
    r = _python(code, python=fw_python_path, **{vkwhisper.dropin.ENV: "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:2] == ["1.2.1", "True"]
    assert "faster_whisper resolves to vkwhisper" in r.stderr


def _wc2_args(out_dir):
    return [
        pc.JFK,
        "--model_directory", model_path("tiny.en"),
        "--device", "cpu",
        "--compute_type", "float32",
        "--threads", "2",
        "--output_dir", str(out_dir),
        "--output_format", "txt",
        "--verbose", "False",
    ]


def _check_output(run, out_dir):
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    with open(out_dir / "jfk.txt", encoding="utf-8") as f:
        text = " ".join(f.read().split())  # one line per segment
    assert text == JFK_TEXT


def test_whisper_ctranslate2_via_run(tmp_path):
    """`python -m vkwhisper.run whisper-ctranslate2 …`: the app, unmodified."""
    _whisper_ctranslate2()
    run = subprocess.run(
        [sys.executable, "-m", "vkwhisper.run", "whisper-ctranslate2", *_wc2_args(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    _check_output(run, tmp_path)


def test_whisper_ctranslate2_via_environment(tmp_path):
    """The app's own console script with VKWHISPER_FASTER_WHISPER=1."""
    _whisper_ctranslate2()
    exe = shutil.which("whisper-ctranslate2", path=os.path.dirname(sys.executable))
    assert exe, "whisper-ctranslate2's console script is not in this venv"
    run = subprocess.run(
        [exe, *_wc2_args(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(**{vkwhisper.dropin.ENV: "1"}),
        timeout=600,
    )
    _check_output(run, tmp_path)
    # Without the switch the app cannot start here (no faster-whisper).
    run = subprocess.run(
        [exe, *_wc2_args(tmp_path)], capture_output=True, text=True, env=_env(), timeout=600
    )
    assert run.returncode != 0 and "faster_whisper" in run.stderr


def test_run_usage():
    r = subprocess.run(
        [sys.executable, "-m", "vkwhisper.run"], capture_output=True, text=True, env=_env()
    )
    assert r.returncode == 2 and "usage" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "vkwhisper.run", "no-such-app-here"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert r.returncode == 2 and "no-such-app-here" in r.stderr


def test_run_a_script(tmp_path):
    """A script that imports faster_whisper, run by path."""
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from faster_whisper import WhisperModel
            model = WhisperModel({model_path("tiny.en")!r}, device="cpu", compute_type="float32")
            segments, info = model.transcribe(sys.argv[1], beam_size=5)
            print("".join(s.text for s in segments).strip())
            """
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "vkwhisper.run", str(script), pc.JFK],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == JFK_TEXT
