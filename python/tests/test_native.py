"""Behaves like a good native extension: one model shared by Python threads
gives each the result it gets alone (the GIL is released while decoding);
SIGINT ends a transcription within one window with KeyboardInterrupt; the
segment generator is lazy and abandoning it stops decoding; errors are
Python exceptions."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import parity_cases as pc
from conftest import load_model, model_path

import vkwhisper

# Different options per thread, so that results from one call leaking
# into another would show.
THREAD_CALLS = [
    {"beam_size": 5, "word_timestamps": True},
    {"beam_size": 1},
    {"beam_size": 5, "initial_prompt": "Kennedy. Americans. Country."},
    {"beam_size": 2, "without_timestamps": True},
]


def _run(model, kwargs):
    segments, info = model.transcribe(pc.JFK, **kwargs)
    return pc.jsonable([s for s in segments]), pc.jsonable(info)


@pytest.fixture(scope="module")
def alone():
    """Each call's result, run alone."""
    model = load_model("tiny.en")
    return [_run(model, kw) for kw in THREAD_CALLS]


@pytest.mark.parametrize("num_workers", [1, 4])
def test_threads_share_one_model(num_workers, alone):
    model = load_model("tiny.en", num_workers=num_workers)
    results = [None] * len(THREAD_CALLS)
    errors = []
    start = threading.Barrier(len(THREAD_CALLS))

    def work(i):
        try:
            start.wait()
            results[i] = _run(model, THREAD_CALLS[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(THREAD_CALLS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    for i, (got, want) in enumerate(zip(results, alone)):
        assert got == want, f"thread {i} ({THREAD_CALLS[i]}) differs from the call alone"


def test_gil_released_while_decoding(tiny):
    """Another Python thread keeps running while a window decodes."""
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        segments, _ = tiny.transcribe(pc.JFK, beam_size=5)
        began = time.perf_counter()
        list(segments)
        ended = time.perf_counter()
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if began <= x <= ended]
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert during, "the ticker never ran while decoding"
    # Held GIL would stall the ticker for the whole window (seconds).
    assert max(gaps, default=0) < 0.5 * (ended - began) + 0.2, max(gaps)


SIGINT_CHILD = r"""
import signal, sys, time
# Python raises KeyboardInterrupt only when SIGINT was at its default at
# start-up; a non-interactive shell starts background jobs with SIGINT
# ignored (as CI may run this), so the child asks for Python's handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {here!r})
import parity_cases as pc
import vkwhisper
model = vkwhisper.WhisperModel({model!r}, device="cpu", compute_type="float32", cpu_threads=2)
samples = pc.read_wav(pc.LONGFORM)
segments, info = model.transcribe(samples, beam_size=5)
t0 = time.perf_counter()
try:
    for i, s in enumerate(segments):
        if i == 0:
            print("WINDOW", time.perf_counter() - t0, flush=True)
        print("SEGMENT", s.end, flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", time.perf_counter(), flush=True)
    raise
print("FINISHED", flush=True)
"""


def test_sigint_raises_keyboard_interrupt_within_a_window():
    model = model_path("tiny.en")
    code = SIGINT_CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), model=model)
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        window_s = None
        for line in child.stdout:
            if line.startswith("WINDOW"):
                window_s = float(line.split()[1])
                break
        assert window_s is not None, child.stderr.read()
        # Now the second window is decoding: interrupt it.
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
        latency = time.perf_counter() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "FINISHED" not in out, "the transcription ran to the end"
    assert "INTERRUPTED" in out, (out, err)
    assert "KeyboardInterrupt" in err, err
    assert child.returncode != 0
    # Within one window (the first one took window_s, model load excluded).
    assert latency < max(window_s, 1.0) + 1.0, (latency, window_s)


def test_lazy_generator_and_abandoning_it(tiny):
    samples = pc.read_wav(pc.LONGFORM)
    segments, info = tiny.transcribe(samples, beam_size=1)
    # Nothing decoded yet: info is ready, the generator has not started.
    assert info.duration == pytest.approx(len(samples) / 16000)
    first = next(segments)
    assert first.start == 0.0
    t = time.perf_counter()
    segments.close()  # abandons the rest: returns at once
    assert time.perf_counter() - t < 1.0
    with pytest.raises(StopIteration):
        next(segments)


def test_errors_are_python_exceptions(tiny, tmp_path):
    with pytest.raises(FileNotFoundError):
        list(tiny.transcribe(str(tmp_path / "missing.wav"))[0])
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"this is not audio" * 100)
    with pytest.raises(ValueError):
        list(tiny.transcribe(str(bad))[0])
    with pytest.raises(FileNotFoundError, match="not a complete model directory"):
        vkwhisper.WhisperModel(str(tmp_path), device="cpu")
    with pytest.raises(ValueError):
        tiny.transcribe(pc.JFK, beam_size=0)


def test_device_names(tiny):
    with pytest.raises(ValueError):
        vkwhisper.WhisperModel(model_path("tiny.en"), device="tpu")
    assert tiny.model.device == "cpu"
    assert tiny.model.compute_type == "float32"
