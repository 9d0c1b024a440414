"""faster-whisper's ``audio``: ``decode_audio`` and ``pad_or_trim``.

vkwhisper decodes with its own decoders (WAV, FLAC, MP3, Ogg Vorbis, M4A/MP4
AAC and ALAC, MKV/WebM, …; other formats through the ``ffmpeg`` command when
it is installed) into 16 kHz mono, quantised to 16 bits as PyAV's resampler
does in faster-whisper. Other sample rates and ``split_stereo`` go through
the ``ffmpeg`` command line.
"""

import errno
import os
import shutil
import subprocess
from typing import BinaryIO, Union

import numpy as np

from vkwhisper import _native


def _source(input_file):
    """``(kind, data, hint)`` for the native decoder: a path, or the bytes of
    a file-like object (read from its current position) or bytes object."""
    if isinstance(input_file, (str, os.PathLike)):
        path = os.fspath(input_file)
        if not os.path.exists(path):
            # PyAV's error in faster-whisper (a FileNotFoundError subclass).
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return "path", path, None
    if isinstance(input_file, (bytes, bytearray, memoryview)):
        return "encoded", bytes(input_file), None
    read = getattr(input_file, "read", None)
    if read is None:
        raise TypeError(
            "audio must be a path, a binary file-like object or a NumPy array, "
            f"not {type(input_file).__name__}"
        )
    data = read()
    if isinstance(data, str):
        # PyAV's wording for a file object opened in text mode.
        raise TypeError("Expected bytes, got str")
    name = getattr(input_file, "name", None)
    hint = None
    if isinstance(name, (str, os.PathLike)):
        ext = os.path.splitext(os.fspath(name))[1].lstrip(".")
        hint = ext or None
    return "encoded", bytes(data), hint


def _ffmpeg(input_file, sampling_rate: int, channels: int) -> np.ndarray:
    """int16 samples from the ffmpeg command line (interleaved channels)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise ValueError(
            "decode_audio: sampling_rate other than 16000 and split_stereo=True need the "
            "ffmpeg command line (install ffmpeg), vkwhisper decodes to 16 kHz mono itself"
        )
    kind, data, _ = _source(input_file)
    cmd = [exe, "-nostdin", "-v", "error", "-i", data if kind == "path" else "pipe:0"]
    cmd += ["-f", "s16le", "-acodec", "pcm_s16le", "-ac", str(channels), "-ar", str(sampling_rate), "pipe:1"]
    run = subprocess.run(
        cmd, input=None if kind == "path" else data, capture_output=True, check=False
    )
    if run.returncode != 0:
        detail = run.stderr.decode(errors="replace").strip().splitlines()
        raise ValueError(f"ffmpeg could not decode the audio: {detail[-1] if detail else run.returncode}")
    return np.frombuffer(run.stdout, dtype="<i2")


def decode_audio(
    input_file: Union[str, BinaryIO],
    sampling_rate: int = 16000,
    split_stereo: bool = False,
):
    """Decodes the audio.

    Args:
      input_file: Path to the input file or a file-like object.
      sampling_rate: Resample the audio to this sample rate.
      split_stereo: Return separate left and right channels.

    Returns:
      A float32 Numpy array.

      If `split_stereo` is enabled, the function returns a 2-tuple with the
      separated left and right channels.
    """
    if sampling_rate == 16000 and not split_stereo:
        kind, data, hint = _source(input_file)
        raw = _native.decode_audio(kind, data, hint)
        samples = np.frombuffer(raw, dtype="<i2")
    else:
        samples = _ffmpeg(input_file, int(sampling_rate), 2 if split_stereo else 1)
    audio = samples.astype(np.float32) / 32768.0
    if split_stereo:
        return audio[0::2], audio[1::2]
    return audio


def pad_or_trim(array, length: int = 3000, *, axis: int = -1):
    """Pads (with zeros) or trims ``array`` to ``length`` along ``axis``."""
    size = array.shape[axis]
    if size > length:
        array = array.take(indices=range(length), axis=axis)
    elif size < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - size)
        array = np.pad(array, widths)
    return array


__all__ = ["decode_audio", "pad_or_trim"]
