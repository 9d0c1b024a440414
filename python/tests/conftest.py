"""Shared fixtures of the vkwhisper Python tests (run by scripts/python-tests.sh).

Models come from the fetch script's cache (``$VKWHISPER_CACHE`` or
``~/.cache/vkwhisper``; ``bash scripts/fetch-models.sh tiny.en base vad``).
The tests never download: a missing model skips the test with a message,
except under ``CI=true`` (``.ci/run`` fetches them), where it fails.

faster-whisper 1.2.1 runs in its own venv, named by ``VKW_FW_PYTHON`` (the
script creates it): the parity table is run there once per session by
``fw_runner.py`` and compared with the same calls made here.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import parity_cases as pc  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


def missing(what: str, hint: str):
    """Skip (locally) or fail (under CI=true) for a missing prerequisite."""
    message = f"{what} (run {hint})"
    if IN_CI:
        pytest.fail(f"{message}; CI must have it", pytrace=False)
    pytest.skip(message)


def cache_root() -> str:
    return os.environ.get("VKWHISPER_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "vkwhisper"
    )


def model_path(name: str) -> str:
    d = pc.model_dir(name)
    if not os.path.isfile(os.path.join(d, "model.bin")):
        missing(f"model {name} not installed at {d}", f"scripts/fetch-models.sh {name}")
    return d


def vad_path() -> str:
    p = os.path.join(cache_root(), "vad", "silero_vad_v6.onnx")
    if not os.path.isfile(p):
        missing(f"Silero VAD model not installed at {p}", "scripts/fetch-models.sh vad")
    return p


_MODELS = {}


def load_model(name: str, **kwargs):
    """One WhisperModel per (name, options) for the whole session."""
    import vkwhisper

    opts = dict(device="cpu", compute_type="float32", cpu_threads=2, num_workers=1)
    opts.update(kwargs)
    key = (name, tuple(sorted(opts.items())))
    if key not in _MODELS:
        _MODELS[key] = vkwhisper.WhisperModel(model_path(name), **opts)
    return _MODELS[key]


@pytest.fixture(scope="session")
def tiny():
    return load_model("tiny.en")


@pytest.fixture(scope="session")
def base():
    return load_model("base")


@pytest.fixture(scope="session")
def vad_model():
    return vad_path()


@pytest.fixture(scope="session")
def models(tiny, base, vad_model):
    """The parity table's models (both must be installed)."""
    return {"tiny.en": tiny, "base": base}


def fw_python():
    """The interpreter of the faster-whisper 1.2.1 venv."""
    py = os.environ.get("VKW_FW_PYTHON")
    if not py:
        missing(
            "VKW_FW_PYTHON is not set (a python with faster-whisper 1.2.1)",
            "scripts/python-tests.sh, which creates that venv",
        )
    if not os.path.exists(py):
        pytest.fail(f"VKW_FW_PYTHON={py} does not exist", pytrace=False)
    return py


@pytest.fixture(scope="session")
def fw_python_path():
    return fw_python()


@pytest.fixture(scope="session")
def fw_results(tmp_path_factory, models):
    """faster-whisper 1.2.1's records of the whole parity table (one run in
    its venv, ``fw_runner.py``), or the file ``VKW_FW_RESULTS`` names (a
    saved run, for working on the tests offline)."""
    saved = os.environ.get("VKW_FW_RESULTS")
    if saved:
        with open(saved, encoding="utf-8") as f:
            return json.load(f)
    py = fw_python()
    out = tmp_path_factory.mktemp("fw") / "fw.json"
    run = subprocess.run(
        [py, os.path.join(HERE, "fw_runner.py"), "--lib", "faster_whisper", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if run.returncode != 0:
        pytest.fail(
            f"fw_runner.py failed under faster-whisper (rc {run.returncode}):\n"
            f"{run.stderr[-4000:]}",
            pytrace=False,
        )
    sys.stderr.write(run.stderr)
    with open(out, encoding="utf-8") as f:
        return json.load(f)
