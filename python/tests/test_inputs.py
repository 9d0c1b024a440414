"""Input types and formats: ``audio`` as a path (str or PathLike), a binary
file-like object, or a NumPy array of 16 kHz mono samples; every audio
format the CLI reads, through ``decode_audio`` and ``transcribe``."""

import glob
import io
import os
import pathlib
import shutil

import numpy as np
import pytest

import parity_cases as pc

import vkwhisper

REF_WORDS = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
).split()


def words(text):
    return ["".join(c for c in w if c.isalnum() or c == "'") for w in text.lower().split()]


def _result(model, audio, **kw):
    segments, info = model.transcribe(audio, beam_size=5, **kw)
    return pc.jsonable(list(segments)), pc.jsonable(info)


@pytest.fixture(scope="module")
def by_path(tiny):
    return _result(tiny, pc.JFK)


INPUTS = {
    "str": lambda: pc.JFK,
    "pathlib": lambda: pathlib.Path(pc.JFK),
    "open_rb": lambda: open(pc.JFK, "rb"),
    "bytesio": lambda: io.BytesIO(pathlib.Path(pc.JFK).read_bytes()),
    "float32": lambda: pc.read_wav(pc.JFK),
    "float64": lambda: pc.read_wav(pc.JFK).astype(np.float64),
    "decode_audio": lambda: vkwhisper.decode_audio(pc.JFK),
}


@pytest.mark.parametrize("kind", list(INPUTS))
def test_input_types_agree(tiny, by_path, kind):
    audio = INPUTS[kind]()
    try:
        got = _result(tiny, audio)
    finally:
        if hasattr(audio, "close"):
            audio.close()
    assert got == by_path


def test_file_object_read_from_its_position(tiny, by_path):
    data = pathlib.Path(pc.JFK).read_bytes()
    f = io.BytesIO(b"junk" + data)
    f.seek(4)
    assert _result(tiny, f) == by_path


def test_bad_inputs(tiny):
    with pytest.raises(TypeError):
        tiny.transcribe(12345)
    with pytest.raises(TypeError):
        tiny.transcribe(io.StringIO("text"))
    with pytest.raises(ValueError):
        tiny.transcribe(np.zeros((2, 16000), dtype=np.float32))


# jfk in each compressed format: the same words.
JFK_FORMATS = [
    os.path.join(pc.DATA, "jfk", "jfk.wav"),
    os.path.join(pc.DATA, "jfk", "jfk.flac"),
    os.path.join(pc.DATA, "jfk", "jfk.mp3"),
    os.path.join(pc.REPO, "tests", "fixtures", "extra", "jfk_aac.m4a"),
]


@pytest.mark.parametrize("path", JFK_FORMATS, ids=os.path.basename)
def test_jfk_formats(tiny, path):
    with open(path, "rb") as f:
        segments, info = tiny.transcribe(f, beam_size=5)
        text = "".join(s.text for s in segments)
    assert words(text) == REF_WORDS
    assert info.duration == pytest.approx(11.0, abs=0.1)


# Short tones in every container and codec of the fuzz seeds (written by
# fuzz/make_seeds.py): what the built-in decoders read, and what the CLI
# hands to the ffmpeg command line (Opus, PCM in Matroska) when it is there.
SEEDS = sorted(
    p
    for d in ("audio_pcm", "audio_stream", "audio_mkv", "audio_mp4")
    for p in glob.glob(os.path.join(pc.REPO, "fuzz", "seeds", d, "*"))
)


def _decode(source):
    try:
        return vkwhisper.decode_audio(source)
    except ValueError as e:
        return e


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: os.path.basename(p))
def test_decode_audio_formats(path):
    """By path, by file object and from bytes without a name: the same
    samples (or, for the seeds the engine refuses as damaged or truncated,
    as the CLI does, the same refusal)."""
    by_path = _decode(path)
    if isinstance(by_path, ValueError) and "install ffmpeg" in str(by_path):
        if not shutil.which("ffmpeg"):
            pytest.skip(f"needs the ffmpeg command line, as the CLI does: {by_path}")
    with open(path, "rb") as f:
        by_file = _decode(f)
    unnamed = _decode(io.BytesIO(pathlib.Path(path).read_bytes()))
    if isinstance(by_path, ValueError):
        assert "damaged" in str(by_path) or "truncated" in str(by_path), by_path
        assert isinstance(by_file, ValueError) and isinstance(unnamed, ValueError)
        return
    assert by_path.dtype == np.float32 and by_path.ndim == 1
    assert by_path.size > 0 and np.all(np.abs(by_path) <= 1.0)
    np.testing.assert_array_equal(by_file, by_path)
    np.testing.assert_array_equal(unnamed, by_path)


def test_decode_audio_is_int16_scaled():
    """As faster-whisper's (PyAV, s16): int16 / 32768 for a 16-bit WAV."""
    np.testing.assert_array_equal(vkwhisper.decode_audio(pc.JFK), pc.read_wav(pc.JFK))


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs the ffmpeg command line")
def test_decode_audio_split_stereo_and_rate():
    stereo = os.path.join(pc.DATA, "fw_testdata", "stereo_diarization.wav")
    left, right = vkwhisper.decode_audio(stereo, split_stereo=True)
    assert left.shape == right.shape and left.size > 0
    eight = vkwhisper.decode_audio(pc.JFK, sampling_rate=8000)
    assert eight.size == pytest.approx(88000, abs=16)
