"""faster-whisper's ``vad``: the Silero VAD options and helpers, run by
vkwhisper's own Silero VAD v6 (no onnxruntime)."""

import bisect
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from vkwhisper import _native


@dataclass
class VadOptions:
    """VAD options.

    Attributes:
      threshold: Speech threshold: probabilities at or above it are speech.
      neg_threshold: Silence threshold for the end of speech (``None`` =
        ``max(threshold - 0.15, 0.01)``).
      min_speech_duration_ms: Final speech chunks this short are dropped.
      max_speech_duration_s: Longer speech chunks are split, at a silence of
        more than 98 ms if there is one, else just before this length.
      min_silence_duration_ms: Silence this long ends a speech chunk.
      speech_pad_ms: Final speech chunks are padded by this on each side.
    """

    threshold: float = 0.5
    neg_threshold: float = None
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = float("inf")
    min_silence_duration_ms: int = 2000
    speech_pad_ms: int = 400


def _ms(name: str, value) -> int:
    """A millisecond count for the native VAD (whole milliseconds)."""
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"VAD {name} must be a finite number >= 0, got {value!r}")
    return int(round(v))


def _native_options(o: VadOptions) -> dict:
    """``VadOptions`` as the plain values the native module takes."""
    return {
        "threshold": float(o.threshold),
        "neg_threshold": None if o.neg_threshold is None else float(o.neg_threshold),
        "min_speech_duration_ms": _ms("min_speech_duration_ms", o.min_speech_duration_ms),
        "max_speech_duration_s": float(o.max_speech_duration_s),
        "min_silence_duration_ms": _ms("min_silence_duration_ms", o.min_silence_duration_ms),
        "speech_pad_ms": _ms("speech_pad_ms", o.speech_pad_ms),
    }


def _vad_path() -> str:
    return _native.vad_model_path(None, False)


def get_speech_timestamps(
    audio: np.ndarray,
    vad_options: Optional[VadOptions] = None,
    sampling_rate: int = 16000,
    **kwargs,
) -> List[dict]:
    """Speech chunks of 16 kHz mono ``audio`` found by the Silero VAD.

    Args:
      audio: One dimensional float array.
      vad_options: Options for VAD processing.
      sampling_rate: Sampling rate of the audio (16000 only).
      kwargs: VAD options passed as keyword arguments for backward compatibility.

    Returns:
      List of dicts containing begin and end samples of each speech chunk.
    """
    if vad_options is None:
        vad_options = VadOptions(**kwargs)
    if sampling_rate != 16000:
        raise ValueError("vkwhisper's Silero VAD runs at 16000 Hz only")
    samples = np.ascontiguousarray(audio, dtype="<f4")
    if samples.ndim != 1:
        raise ValueError("audio must be a one-dimensional array of samples")
    chunks = _native.speech_timestamps(
        _vad_path(), samples.tobytes(), _native_options(vad_options)
    )
    return [{"start": s, "end": e} for s, e in chunks]


def collect_chunks(
    audio: np.ndarray,
    chunks: List[dict],
    sampling_rate: int = 16000,
    max_duration: float = float("inf"),
) -> Tuple[List[np.ndarray], List[Dict[str, float]]]:
    """Joins the speech chunks of ``audio`` into pieces of at most
    ``max_duration`` seconds: ``(pieces, metadata)``, each metadata entry
    ``{"offset", "duration", "segments"}`` (seconds on the joined timeline,
    and the chunks the piece holds)."""
    if not chunks:
        return [np.array([], dtype=np.float32)], [
            {"offset": 0, "duration": 0, "segments": []}
        ]
    limit = max_duration * sampling_rate
    pieces: List[np.ndarray] = []
    metadata: List[Dict[str, float]] = []
    parts: List[np.ndarray] = []
    members: List[dict] = []
    length = 0
    before = 0
    for chunk in chunks:
        size = chunk["end"] - chunk["start"]
        if length + size > limit:
            # Close the piece so far; this chunk starts the next one.
            pieces.append(np.concatenate(parts) if parts else np.array([], dtype=np.float32))
            metadata.append(
                {
                    "offset": before / sampling_rate,
                    "duration": length / sampling_rate,
                    "segments": members,
                }
            )
            before += length
            parts, members, length = [], [], 0
            parts.append(audio[chunk["start"] : chunk["end"]])
            length = size
        else:
            members.append(chunk)
            parts.append(audio[chunk["start"] : chunk["end"]])
            length += size
    pieces.append(
        np.concatenate([np.array([], dtype=np.float32)] + parts)
        if parts
        else np.array([], dtype=np.float32)
    )
    metadata.append(
        {
            "offset": before / sampling_rate,
            "duration": length / sampling_rate,
            "segments": members,
        }
    )
    return pieces, metadata


class SpeechTimestampsMap:
    """Maps times on the joined speech back to the original audio."""

    def __init__(self, chunks: List[dict], sampling_rate: int, time_precision: int = 2):
        self.sampling_rate = sampling_rate
        self.time_precision = time_precision
        self.chunk_end_sample = []
        self.total_silence_before = []
        silence = 0
        last_end = 0
        for chunk in chunks:
            silence += chunk["start"] - last_end
            last_end = chunk["end"]
            self.chunk_end_sample.append(chunk["end"] - silence)
            self.total_silence_before.append(silence / sampling_rate)

    def get_original_time(
        self,
        time: float,
        chunk_index: Optional[int] = None,
        is_end: bool = False,
    ) -> float:
        if chunk_index is None:
            chunk_index = self.get_chunk_index(time, is_end)
        return round(self.total_silence_before[chunk_index] + time, self.time_precision)

    def get_chunk_index(self, time: float, is_end: bool = False) -> int:
        sample = int(time * self.sampling_rate)
        if is_end and sample in self.chunk_end_sample:
            return self.chunk_end_sample.index(sample)
        return min(
            bisect.bisect(self.chunk_end_sample, sample),
            len(self.chunk_end_sample) - 1,
        )
