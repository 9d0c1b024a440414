"""faster-whisper 1.2.1's ``transcribe`` module on the vkwhisper engine:
``WhisperModel``, ``BatchedInferencePipeline`` and their records, with
faster-whisper's names, defaults and types.

The decoding itself (every window, the temperature fallback, word
timestamps, the VAD cut, batching) runs natively in vkwhisper's Rust engine
with the GIL released; this module resolves the arguments the way
faster-whisper does, builds its records and logs what it logs.
"""

import logging
import math
import operator
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from typing import BinaryIO, Iterable, List, Optional, Tuple, Union
from warnings import warn

import numpy as np

from vkwhisper import _native
from vkwhisper.audio import _source, decode_audio
from vkwhisper.tokenizer import _LANGUAGE_CODES, _TASKS
from vkwhisper.utils import download_model, format_timestamp, get_logger
from vkwhisper.vad import VadOptions, _native_options


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float

    def _asdict(self):
        warn(
            "Word._asdict() method is deprecated, use dataclasses.asdict(Word) instead",
            DeprecationWarning,
            2,
        )
        return asdict(self)


@dataclass
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: List[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: Optional[List[Word]]
    temperature: Optional[float]

    def _asdict(self):
        warn(
            "Segment._asdict() method is deprecated, use dataclasses.asdict(Segment) instead",
            DeprecationWarning,
            2,
        )
        return asdict(self)


@dataclass
class TranscriptionOptions:
    beam_size: int
    best_of: int
    patience: float
    length_penalty: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    log_prob_threshold: Optional[float]
    no_speech_threshold: Optional[float]
    compression_ratio_threshold: Optional[float]
    condition_on_previous_text: bool
    prompt_reset_on_temperature: float
    temperatures: List[float]
    initial_prompt: Optional[Union[str, Iterable[int]]]
    prefix: Optional[str]
    suppress_blank: bool
    suppress_tokens: Optional[List[int]]
    without_timestamps: bool
    max_initial_timestamp: float
    word_timestamps: bool
    prepend_punctuations: str
    append_punctuations: str
    multilingual: bool
    max_new_tokens: Optional[int]
    clip_timestamps: Union[str, List[float]]
    hallucination_silence_threshold: Optional[float]
    hotwords: Optional[str]


@dataclass
class TranscriptionInfo:
    language: str
    language_probability: float
    duration: float
    duration_after_vad: float
    all_language_probs: Optional[List[Tuple[str, float]]]
    transcription_options: TranscriptionOptions
    vad_options: VadOptions


# Keyword arguments ctranslate2.models.Whisper accepts besides the ones
# WhisperModel names; accepted and ignored (they tune CTranslate2 only).
_CT2_MODEL_KWARGS = frozenset({"max_queued_batches", "flash_attention", "tensor_parallel"})

# Whisper's longest token sequence (faster-whisper's WhisperModel.max_length).
_MAX_LENGTH = 448

# faster-whisper's FeatureExtractor constants (the engine computes the log-mel).
_SAMPLING_RATE = 16000


class FeatureExtractor:
    """faster-whisper's log-mel settings (the values apps read; the
    spectrogram itself is computed by the native engine)."""

    def __init__(self, feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400):
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.chunk_length = chunk_length
        self.n_samples = chunk_length * sampling_rate
        self.nb_max_frames = self.n_samples // hop_length
        self.time_per_frame = hop_length / sampling_rate
        self.sampling_rate = sampling_rate
        self.feature_size = feature_size


class _Encoding:
    def __init__(self, ids):
        self.ids = ids


class _HfTokenizer:
    """The part of ``tokenizers.Tokenizer`` apps use on ``model.hf_tokenizer``."""

    def __init__(self, engine):
        self._engine = engine

    def encode(self, text, add_special_tokens=True):
        return _Encoding(self._engine.encode(text))

    def decode(self, ids, skip_special_tokens=True):
        return self._engine.decode([int(i) for i in ids])


class _ModelFacts:
    """What apps read from ``WhisperModel.model`` (a ctranslate2 model in
    faster-whisper): device, compute type, whether it is multilingual."""

    def __init__(self, info: dict, device: str, device_index, num_workers: int):
        self.is_multilingual = bool(info["multilingual"])
        self.n_mels = int(info["n_mels"])
        self.num_languages = int(info["num_languages"]) if self.is_multilingual else 0
        self.device = device
        self.device_index = device_index if isinstance(device_index, list) else [device_index]
        self.compute_type = info["compute_type"]
        self.num_workers = num_workers
        self.num_active_batches = 0
        self.num_queued_batches = 0
        #: vkwhisper: the device line ("CPU backend (8 threads)", "Vulkan device 0: …").
        self.device_description = info["device"]
        #: vkwhisper: whether the model runs on a GPU.
        self.gpu = bool(info["gpu"])


def _device_request(device, device_index) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, not {type(device).__name__}")
    index = device_index[0] if isinstance(device_index, (list, tuple)) and device_index else device_index
    if isinstance(index, (list, tuple)):
        index = 0
    index = operator.index(index)
    d = device.strip().lower()
    if d in ("auto", "cpu"):
        return d
    # "cuda" asks for a GPU: on vkwhisper that is a Vulkan device.
    if d in ("vulkan", "cuda", "gpu"):
        return "vulkan" if index == 0 else f"vulkan:{index}"
    if d.startswith("vulkan:"):
        return d
    raise ValueError(f"unsupported device {device}")


class WhisperModel:
    def __init__(
        self,
        model_size_or_path: str,
        device: str = "auto",
        device_index: Union[int, List[int]] = 0,
        compute_type: str = "default",
        cpu_threads: int = 0,
        num_workers: int = 1,
        download_root: Optional[str] = None,
        local_files_only: bool = False,
        files: dict = None,
        revision: Optional[str] = None,
        use_auth_token: Optional[Union[str, bool]] = None,
        **model_kwargs,
    ):
        """Initializes the Whisper model.

        Args:
          model_size_or_path: Size of the model to use (tiny, tiny.en, base, base.en,
            small, small.en, distil-small.en, medium, medium.en, distil-medium.en, large-v1,
            large-v2, large-v3, large, distil-large-v2, distil-large-v3, large-v3-turbo, or turbo),
            a path to a converted model directory (CTranslate2 or transformers), or the
            Hugging Face repository id of one of those models. A size or id is downloaded
            into the vkwhisper cache once.
          device: Device to use for computation ("cpu", "vulkan", "auto"; "cuda" means a GPU,
            which vkwhisper drives through Vulkan).
          device_index: Vulkan adapter index (0: the best adapter). With a list, the first.
          compute_type: Type to use for computation (CTranslate2's names).
          cpu_threads: CPU threads for compute and host-side work (0: all cores).
          num_workers: How many windows may decode at once when transcribe() is called
            from several Python threads (0: no limit).
          download_root: Directory where the models (and the VAD model) are saved. If not
            set, the vkwhisper cache ($VKWHISPER_CACHE, else the platform cache).
          local_files_only: If True, never download.
          files: Load model files from the memory: a dict mapping file names to bytes or
            binary file-like objects.
          revision: Accepted for compatibility; vkwhisper downloads pinned files.
          use_auth_token: Accepted for compatibility.
        """
        unknown = sorted(set(model_kwargs) - _CT2_MODEL_KWARGS)
        if unknown:
            raise TypeError(
                f"WhisperModel.__init__() got an unexpected keyword argument '{unknown[0]}'"
            )
        self.logger = get_logger()
        request = _device_request(device, device_index)
        cpu_threads = operator.index(cpu_threads)
        num_workers = operator.index(num_workers)
        if cpu_threads < 0 or num_workers < 0:
            raise ValueError("cpu_threads and num_workers must be >= 0")

        cache_dir = None if download_root is None else os.fspath(download_root)
        scratch = None
        try:
            if files:
                scratch = tempfile.mkdtemp(prefix="vkwhisper-model-")
                for name, content in files.items():
                    if hasattr(content, "read"):
                        content = content.read()
                    with open(os.path.join(scratch, os.path.basename(name)), "wb") as f:
                        f.write(content)
                model_path = scratch
            elif os.path.isdir(model_size_or_path):
                model_path = os.fspath(model_size_or_path)
            else:
                model_path = download_model(
                    model_size_or_path,
                    local_files_only=local_files_only,
                    cache_dir=cache_dir,
                    revision=revision,
                    use_auth_token=use_auth_token,
                )
            self._engine = _native.Engine(
                model_path,
                device=request,
                compute_type=compute_type,
                threads=cpu_threads,
                max_concurrent=num_workers,
                cache_dir=cache_dir,
                offline=bool(local_files_only),
                vad_model=_shared_vad_model(),
            )
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

        self._info = self._engine.info()
        self.model = _ModelFacts(self._info, device, device_index, num_workers)
        self.hf_tokenizer = _HfTokenizer(self._engine)
        self.feat_kwargs = {"feature_size": self.model.n_mels}
        self.feature_extractor = FeatureExtractor(**self.feat_kwargs)
        self.input_stride = 2
        self.num_samples_per_token = self.feature_extractor.hop_length * self.input_stride
        self.frames_per_second = (
            self.feature_extractor.sampling_rate // self.feature_extractor.hop_length
        )
        self.tokens_per_second = (
            self.feature_extractor.sampling_rate // self.num_samples_per_token
        )
        self.time_precision = 0.02
        self.max_length = 448

    @property
    def supported_languages(self) -> List[str]:
        """The languages supported by the model."""
        return list(_LANGUAGE_CODES) if self.model.is_multilingual else ["en"]

    def transcribe(
        self,
        audio: Union[str, BinaryIO, np.ndarray],
        language: Optional[str] = None,
        task: str = "transcribe",
        log_progress: bool = False,
        beam_size: int = 5,
        best_of: int = 5,
        patience: float = 1,
        length_penalty: float = 1,
        repetition_penalty: float = 1,
        no_repeat_ngram_size: int = 0,
        temperature: Union[float, List[float], Tuple[float, ...]] = [
            0.0,
            0.2,
            0.4,
            0.6,
            0.8,
            1.0,
        ],
        compression_ratio_threshold: Optional[float] = 2.4,
        log_prob_threshold: Optional[float] = -1.0,
        no_speech_threshold: Optional[float] = 0.6,
        condition_on_previous_text: bool = True,
        prompt_reset_on_temperature: float = 0.5,
        initial_prompt: Optional[Union[str, Iterable[int]]] = None,
        prefix: Optional[str] = None,
        suppress_blank: bool = True,
        suppress_tokens: Optional[List[int]] = [-1],
        without_timestamps: bool = False,
        max_initial_timestamp: float = 1.0,
        word_timestamps: bool = False,
        prepend_punctuations: str = "\"'“¿([{-",
        append_punctuations: str = "\"'.。,，!！?？:：”)]}、",
        multilingual: bool = False,
        vad_filter: bool = False,
        vad_parameters: Optional[Union[dict, VadOptions]] = None,
        max_new_tokens: Optional[int] = None,
        chunk_length: Optional[int] = None,
        clip_timestamps: Union[str, List[float]] = "0",
        hallucination_silence_threshold: Optional[float] = None,
        hotwords: Optional[str] = None,
        language_detection_threshold: Optional[float] = 0.5,
        language_detection_segments: int = 1,
    ) -> Tuple[Iterable[Segment], TranscriptionInfo]:
        """Transcribes an input file.

        Arguments are faster-whisper 1.2.1's, with its defaults (see its
        documentation); ``audio`` is a path, a binary file-like object, or a
        NumPy array of 16 kHz mono samples. Returns ``(segments, info)``:
        a generator that decodes window by window as it is consumed (dropping
        it stops decoding), and a ``TranscriptionInfo``.
        """
        multilingual = self._check_multilingual(multilingual)
        _check_chunk_length(chunk_length)

        # faster-whisper applies the VAD only with the default clip_timestamps.
        if vad_filter and isinstance(clip_timestamps, str) and clip_timestamps == "0":
            if vad_parameters is None:
                vad_parameters = VadOptions()
            elif isinstance(vad_parameters, dict):
                vad_parameters = VadOptions(**vad_parameters)
            vad = _native_options(vad_parameters)
        else:
            vad = None

        if isinstance(clip_timestamps, str):
            clips = [float(t) for t in clip_timestamps.split(",")] if clip_timestamps else []
        else:
            clips = [float(t) for t in clip_timestamps]

        temperatures = temperature if isinstance(temperature, (list, tuple)) else [temperature]
        prompt_text, prompt_tokens = _initial_prompt(initial_prompt)

        language = self._check_language(language, task)
        options = TranscriptionOptions(
            beam_size=beam_size,
            best_of=best_of,
            patience=patience,
            length_penalty=length_penalty,
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            log_prob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold,
            compression_ratio_threshold=compression_ratio_threshold,
            condition_on_previous_text=condition_on_previous_text,
            prompt_reset_on_temperature=prompt_reset_on_temperature,
            temperatures=temperatures,
            initial_prompt=initial_prompt,
            prefix=prefix,
            suppress_blank=suppress_blank,
            suppress_tokens=(
                self._suppressed_tokens(suppress_tokens) if suppress_tokens else suppress_tokens
            ),
            without_timestamps=without_timestamps,
            max_initial_timestamp=max_initial_timestamp,
            word_timestamps=word_timestamps,
            prepend_punctuations=prepend_punctuations,
            append_punctuations=append_punctuations,
            multilingual=multilingual,
            max_new_tokens=max_new_tokens,
            clip_timestamps=clip_timestamps,
            hallucination_silence_threshold=hallucination_silence_threshold,
            hotwords=hotwords,
        )
        native = _native_decoding(
            language=language,
            task=task,
            beam_size=beam_size,
            best_of=best_of,
            patience=patience,
            length_penalty=length_penalty,
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            temperatures=temperatures,
            compression_ratio_threshold=compression_ratio_threshold,
            log_prob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold,
            condition_on_previous_text=condition_on_previous_text,
            prompt_reset_on_temperature=prompt_reset_on_temperature,
            initial_prompt=prompt_text,
            initial_prompt_tokens=prompt_tokens,
            prefix=prefix,
            hotwords=hotwords,
            suppress_blank=suppress_blank,
            suppress_tokens=suppress_tokens,
            without_timestamps=without_timestamps,
            max_initial_timestamp=max_initial_timestamp,
            max_new_tokens=max_new_tokens,
            clip_timestamps=clips,
            multilingual=multilingual,
            language_detection_threshold=language_detection_threshold,
            language_detection_segments=language_detection_segments,
            detects=language is None and self.model.is_multilingual,
            word_timestamps=word_timestamps,
            prepend_punctuations=prepend_punctuations,
            append_punctuations=append_punctuations,
            hallucination_silence_threshold=hallucination_silence_threshold,
            vad=vad,
            batch=None,
        )
        handle = self._start(audio, native, max_new_tokens)
        info = self._info_of(handle, language, options, vad_parameters)
        segments = _segments(
            handle, options, temperatures, log_progress, True, max_new_tokens
        )
        return segments, info

    def detect_language(
        self,
        audio: Optional[np.ndarray] = None,
        features: Optional[np.ndarray] = None,
        vad_filter: bool = False,
        vad_parameters: Union[dict, VadOptions] = None,
        language_detection_segments: int = 1,
        language_detection_threshold: float = 0.5,
    ) -> Tuple[str, float, List[Tuple[str, float]]]:
        """
        Use Whisper to detect the language of the input audio.

        Arguments:
            audio: Input audio signal, a 1D float array sampled at 16khz (or a path or a
                binary file-like object).
            features: Not supported by vkwhisper (the engine computes the log-mel itself).
            vad_filter: Enable the voice activity detection (VAD) to filter out parts of the audio
                without speech. This step is using the Silero VAD model.
            vad_parameters: Dictionary of Silero VAD parameters or VadOptions class.
            language_detection_threshold: If the maximum probability of the language tokens is
                higher than this value, the language is detected.
            language_detection_segments: Number of segments to consider for the language detection.

        Returns:
            language: Detected language.
            language_probability: Probability of the detected language.
            all_language_probs: List of tuples with all language names and probabilities.
        """
        assert (
            audio is not None or features is not None
        ), "Either `audio` or `features` must be provided."
        if audio is None:
            raise NotImplementedError(
                "vkwhisper's detect_language takes audio, not features "
                "(the engine computes the log-mel spectrogram itself)"
            )
        vad = None
        if vad_filter:
            if vad_parameters is None:
                vad_parameters = VadOptions()
            elif isinstance(vad_parameters, dict):
                vad_parameters = VadOptions(**vad_parameters)
            vad = _native_options(vad_parameters)
        kind, data, hint = _audio_input(audio)
        language, probability, probs = self._engine.detect_language(
            kind,
            data,
            hint,
            _count("language_detection_segments", language_detection_segments),
            _float("language_detection_threshold", language_detection_threshold),
            vad,
        )
        return language, probability, [tuple(p) for p in probs]

    # -- helpers -----------------------------------------------------------

    def _check_multilingual(self, multilingual):
        if multilingual and not self.model.is_multilingual:
            self.logger.warning(
                "The current model is English-only but the multilingual parameter is set to"
                "True; setting to False instead."
            )
            return False
        return multilingual

    def _check_language(self, language, task):
        """faster-whisper's checks (multilingual models only, as its
        Tokenizer does) and its English-only replacement."""
        if self.model.is_multilingual:
            if task not in _TASKS:
                raise ValueError(
                    "'%s' is not a valid task (accepted tasks: %s)" % (task, ", ".join(_TASKS))
                )
            if language is not None and language not in _LANGUAGE_CODES:
                raise ValueError(
                    "'%s' is not a valid language code (accepted language codes: %s)"
                    % (language, ", ".join(_LANGUAGE_CODES))
                )
        elif language is not None and language != "en":
            self.logger.warning(
                "The current model is English-only but the language parameter is set to '%s'; "
                "using 'en' instead." % language
            )
            language = "en"
        return language

    def _suppressed_tokens(self, suppress_tokens):
        """faster-whisper's ``get_suppressed_tokens``: the ids decoding
        suppresses, as the sorted tuple it reports in the options."""
        i = self._info
        if -1 in suppress_tokens:
            ids = [t for t in suppress_tokens if t >= 0]
            ids.extend(i["non_speech_tokens"])
        else:
            assert isinstance(suppress_tokens, list), "suppress_tokens must be a list"
            ids = list(suppress_tokens)
        ids.extend(
            [i["transcribe"], i["translate"], i["sot"], i["sot_prev"], i["sot_lm"], i["no_speech"]]
        )
        return tuple(sorted(set(ids)))

    def _start(self, audio, native: dict, max_new_tokens):
        kind, data, hint = _audio_input(audio)
        try:
            return self._engine.transcribe(kind, data, hint, native)
        except ValueError as e:
            raise _faster_whisper_error(e, max_new_tokens) from None

    def _info_of(self, handle, language, options, vad_options):
        lang, prob, duration, after_vad, probs, _speech = handle.info()
        self.logger.info("Processing audio with duration %s", format_timestamp(duration))
        if vad_options is not None and after_vad != duration:
            self.logger.info(
                "VAD filter removed %s of audio", format_timestamp(duration - after_vad)
            )
        detected = language is None and self.model.is_multilingual
        if detected:
            self.logger.info("Detected language '%s' with probability %.2f", lang, prob)
        return TranscriptionInfo(
            language=lang,
            # faster-whisper's int 1 when the language is given or English-only.
            language_probability=prob if detected else 1,
            duration=duration,
            duration_after_vad=after_vad,
            all_language_probs=[tuple(p) for p in probs] if detected and probs else None,
            transcription_options=options,
            vad_options=vad_options,
        )


class BatchedInferencePipeline:
    def __init__(
        self,
        model,
    ):
        self.model: WhisperModel = model
        self.last_speech_timestamp = 0.0

    def transcribe(
        self,
        audio: Union[str, BinaryIO, np.ndarray],
        language: Optional[str] = None,
        task: str = "transcribe",
        log_progress: bool = False,
        beam_size: int = 5,
        best_of: int = 5,
        patience: float = 1,
        length_penalty: float = 1,
        repetition_penalty: float = 1,
        no_repeat_ngram_size: int = 0,
        temperature: Union[float, List[float], Tuple[float, ...]] = [
            0.0,
            0.2,
            0.4,
            0.6,
            0.8,
            1.0,
        ],
        compression_ratio_threshold: Optional[float] = 2.4,
        log_prob_threshold: Optional[float] = -1.0,
        no_speech_threshold: Optional[float] = 0.6,
        condition_on_previous_text: bool = True,
        prompt_reset_on_temperature: float = 0.5,
        initial_prompt: Optional[Union[str, Iterable[int]]] = None,
        prefix: Optional[str] = None,
        suppress_blank: bool = True,
        suppress_tokens: Optional[List[int]] = [-1],
        without_timestamps: bool = True,
        max_initial_timestamp: float = 1.0,
        word_timestamps: bool = False,
        prepend_punctuations: str = "\"'“¿([{-",
        append_punctuations: str = "\"'.。,，!！?？:：”)]}、",
        multilingual: bool = False,
        vad_filter: bool = True,
        vad_parameters: Optional[Union[dict, VadOptions]] = None,
        max_new_tokens: Optional[int] = None,
        chunk_length: Optional[int] = None,
        clip_timestamps: Optional[List[dict]] = None,
        hallucination_silence_threshold: Optional[float] = None,
        batch_size: int = 8,
        hotwords: Optional[str] = None,
        language_detection_threshold: Optional[float] = 0.5,
        language_detection_segments: int = 1,
    ) -> Tuple[Iterable[Segment], TranscriptionInfo]:
        """Transcribes audio in batches of 30 s pieces cut by the VAD (or
        ``clip_timestamps``: dicts with "start" and "end" in seconds), as
        faster-whisper's ``BatchedInferencePipeline`` does; arguments and
        defaults are its own. Returns ``(segments, info)``.
        """
        model = self.model
        multilingual = model._check_multilingual(multilingual)
        chunk_length = _check_chunk_length(chunk_length) or 30
        decoded = None

        if not clip_timestamps:
            if vad_filter:
                if vad_parameters is None:
                    vad_parameters = VadOptions(
                        max_speech_duration_s=chunk_length,
                        min_silence_duration_ms=160,
                    )
                elif isinstance(vad_parameters, dict):
                    if "max_speech_duration_s" in vad_parameters.keys():
                        vad_parameters.pop("max_speech_duration_s")
                    vad_parameters = VadOptions(
                        **vad_parameters, max_speech_duration_s=chunk_length
                    )
                vad = _native_options(vad_parameters)
                clips = [0.0]
            else:
                # Without the VAD, faster-whisper transcribes inputs shorter
                # than one piece as one piece, and refuses longer ones.
                decoded = audio if isinstance(audio, np.ndarray) else decode_audio(audio)
                if decoded.shape[0] / _SAMPLING_RATE >= chunk_length:
                    raise RuntimeError(
                        "No clip timestamps found. "
                        "Set 'vad_filter' to True or provide 'clip_timestamps'."
                    )
                vad = None
                clips = [0.0, decoded.shape[0] / _SAMPLING_RATE + 1.0]
            provided = None
        else:
            vad = None
            clips = []
            for clip in clip_timestamps:
                clips += [float(clip["start"]), float(clip["end"])]
            provided = [
                {k: int(v * _SAMPLING_RATE) for k, v in clip.items()} for clip in clip_timestamps
            ]

        temperatures = temperature[:1] if isinstance(temperature, (list, tuple)) else [temperature]
        if initial_prompt is not None and not isinstance(initial_prompt, str):
            raise TypeError(
                "BatchedInferencePipeline: initial_prompt must be a string (token ids are "
                "only accepted by WhisperModel.transcribe)"
            )
        language = model._check_language(language, task)
        options = TranscriptionOptions(
            beam_size=beam_size,
            best_of=best_of,
            patience=patience,
            length_penalty=length_penalty,
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            log_prob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold,
            compression_ratio_threshold=compression_ratio_threshold,
            temperatures=temperatures,
            initial_prompt=initial_prompt,
            prefix=prefix,
            suppress_blank=suppress_blank,
            suppress_tokens=(
                model._suppressed_tokens(suppress_tokens) if suppress_tokens else suppress_tokens
            ),
            prepend_punctuations=prepend_punctuations,
            append_punctuations=append_punctuations,
            max_new_tokens=max_new_tokens,
            hotwords=hotwords,
            word_timestamps=word_timestamps,
            hallucination_silence_threshold=None,
            condition_on_previous_text=False,
            clip_timestamps=clip_timestamps,
            prompt_reset_on_temperature=0.5,
            multilingual=multilingual,
            without_timestamps=without_timestamps,
            max_initial_timestamp=0.0,
        )
        native = _native_decoding(
            language=language,
            task=task,
            beam_size=beam_size,
            best_of=best_of,
            patience=patience,
            length_penalty=length_penalty,
            repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            temperatures=temperatures,
            compression_ratio_threshold=compression_ratio_threshold,
            log_prob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            initial_prompt=initial_prompt,
            initial_prompt_tokens=None,
            prefix=prefix,
            hotwords=hotwords,
            suppress_blank=suppress_blank,
            suppress_tokens=suppress_tokens,
            without_timestamps=without_timestamps,
            max_initial_timestamp=0.0,
            max_new_tokens=max_new_tokens,
            clip_timestamps=clips,
            multilingual=multilingual,
            language_detection_threshold=language_detection_threshold,
            language_detection_segments=language_detection_segments,
            detects=language is None and model.model.is_multilingual,
            word_timestamps=word_timestamps,
            prepend_punctuations=prepend_punctuations,
            append_punctuations=append_punctuations,
            hallucination_silence_threshold=None,
            vad=vad,
            batch=_count("batch_size", batch_size),
        )
        handle = model._start(decoded if decoded is not None else audio, native, max_new_tokens)
        info = model._info_of(handle, language, options, vad_parameters)
        speech = handle.info()[5]
        if provided is not None:
            options.clip_timestamps = provided
        elif speech is not None:
            options.clip_timestamps = [{"start": s, "end": e} for s, e in speech]
        else:
            options.clip_timestamps = [{"start": 0, "end": decoded.shape[0]}]
        segments = _segments(
            handle, options, temperatures, log_progress, False, max_new_tokens
        )
        return segments, info


# -- argument conversion -----------------------------------------------------


def _check_chunk_length(chunk_length):
    if chunk_length is not None and chunk_length != 30:
        raise ValueError(
            f"chunk_length={chunk_length!r}: vkwhisper decodes 30 s windows only "
            "(leave chunk_length at None or 30)"
        )
    return chunk_length


def _audio_input(audio):
    """``(kind, data, hint)`` for the engine: a NumPy array as float32
    samples, anything else as faster-whisper's ``decode_audio`` takes it."""
    if isinstance(audio, np.ndarray):
        samples = np.ascontiguousarray(audio, dtype="<f4")
        if samples.ndim != 1:
            raise ValueError(
                "audio must be a one-dimensional array of 16 kHz mono samples, "
                f"got shape {audio.shape}"
            )
        return "f32", samples.tobytes(), None
    return _source(audio)


def _initial_prompt(initial_prompt):
    """``(text, token_ids)``: faster-whisper takes a string or token ids."""
    if initial_prompt is None or isinstance(initial_prompt, str):
        return initial_prompt, None
    return None, [operator.index(t) for t in initial_prompt]


def _int(name, value):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None


def _count(name, value):
    v = _int(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _float(name, value):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        return float(value)
    except TypeError:
        raise TypeError(f"{name} must be a number, not {type(value).__name__}") from None


def _opt_float(name, value):
    return None if value is None else _float(name, value)


def _str(name, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    return value


def _native_decoding(**kw) -> dict:
    """The options dict the native engine takes, type-checked."""
    out = {
        "language": _str("language", kw["language"]),
        "task": _str("task", kw["task"]) if kw["task"] in _TASKS else "transcribe",
        "beam_size": _int("beam_size", kw["beam_size"]),
        "best_of": _int("best_of", kw["best_of"]),
        "patience": _float("patience", kw["patience"]),
        "length_penalty": _float("length_penalty", kw["length_penalty"]),
        "repetition_penalty": _float("repetition_penalty", kw["repetition_penalty"]),
        "no_repeat_ngram_size": _count("no_repeat_ngram_size", kw["no_repeat_ngram_size"]),
        "temperatures": [_float("temperature", t) for t in kw["temperatures"]],
        "compression_ratio_threshold": _opt_float(
            "compression_ratio_threshold", kw["compression_ratio_threshold"]
        ),
        "log_prob_threshold": _opt_float("log_prob_threshold", kw["log_prob_threshold"]),
        "no_speech_threshold": _opt_float("no_speech_threshold", kw["no_speech_threshold"]),
        "condition_on_previous_text": bool(kw["condition_on_previous_text"]),
        "prompt_reset_on_temperature": _float(
            "prompt_reset_on_temperature", kw["prompt_reset_on_temperature"]
        ),
        "initial_prompt": _str("initial_prompt", kw["initial_prompt"]),
        "initial_prompt_tokens": kw["initial_prompt_tokens"],
        "prefix": _str("prefix", kw["prefix"]),
        "hotwords": _str("hotwords", kw["hotwords"]),
        "suppress_blank": bool(kw["suppress_blank"]),
        "suppress_tokens": (
            [_int("suppress_tokens", t) for t in kw["suppress_tokens"]]
            if kw["suppress_tokens"]
            else None
        ),
        "without_timestamps": bool(kw["without_timestamps"]),
        "max_initial_timestamp": _float("max_initial_timestamp", kw["max_initial_timestamp"]),
        "max_new_tokens": (
            None if kw["max_new_tokens"] is None else _int("max_new_tokens", kw["max_new_tokens"])
        ),
        "clip_timestamps": kw["clip_timestamps"],
        "multilingual": bool(kw["multilingual"]),
        "language_detection_threshold": (
            None
            if kw["language_detection_threshold"] is None and not kw["detects"]
            else _float("language_detection_threshold", kw["language_detection_threshold"])
        ),
        "language_detection_segments": _count(
            "language_detection_segments", kw["language_detection_segments"]
        ),
        "word_timestamps": bool(kw["word_timestamps"]),
        "prepend_punctuations": _str("prepend_punctuations", kw["prepend_punctuations"]),
        "append_punctuations": _str("append_punctuations", kw["append_punctuations"]),
        "hallucination_silence_threshold": _opt_float(
            "hallucination_silence_threshold", kw["hallucination_silence_threshold"]
        ),
        "vad": kw["vad"],
        "batch": kw["batch"],
    }
    if kw["suppress_tokens"] is not None and not kw["suppress_tokens"]:
        # An empty list suppresses nothing at all (not even the special ids).
        out["suppress_tokens"] = []
    _check_values(out, kw["detects"])
    return out


def _check_values(out: dict, detects: bool) -> None:
    """The value checks faster-whisper's decoding makes (CTranslate2's, with
    its wording), made before decoding starts. A value that faster-whisper
    would not use (``beam_size`` when every temperature samples, ``best_of``
    when none does, the detection settings when the language is known) is
    not checked, as there, and the engine gets a neutral one."""
    temps = out["temperatures"]
    if any(t <= 0 for t in temps):
        if out["beam_size"] <= 0:
            raise ValueError("The beam size must be > 0")
        if out["patience"] <= 0:
            raise ValueError("The patience factor must be > 0")
    else:
        out["beam_size"] = max(out["beam_size"], 1)
        out["patience"] = out["patience"] if out["patience"] > 0 else 1.0
    if any(t > 0 for t in temps):
        if out["best_of"] <= 0:
            raise ValueError("The number of hypotheses must be > 0")
    else:
        out["best_of"] = max(out["best_of"], 1)
    if out["repetition_penalty"] <= 0:
        raise ValueError("The repetition penalty must be > 0")
    if out["max_new_tokens"] is not None and out["max_new_tokens"] <= 0:
        raise ValueError("The maximum decoding length must be > 0")
    if out["max_new_tokens"] is not None and out["max_new_tokens"] > _MAX_LENGTH:
        # Too long with any prompt: the engine's prompt-length check then
        # reports it, in faster-whisper's words (_faster_whisper_error).
        out["max_new_tokens"] = _MAX_LENGTH
    if not detects:
        out["language_detection_segments"] = max(out["language_detection_segments"], 1)
        if out["language_detection_threshold"] is None:
            out["language_detection_threshold"] = 0.5


def _faster_whisper_error(e: ValueError, max_new_tokens):
    """The engine's option error in faster-whisper's wording where it has one."""
    text = str(e)
    marker = "the prompt ("
    if marker in text and "plus max_new_tokens exceeds" in text:
        try:
            prompt = int(text.split(marker, 1)[1].split(" ", 1)[0])
        except ValueError:
            return e
        total = prompt + (max_new_tokens or 0)
        err = ValueError(
            f"The length of the prompt is {prompt}, and the `max_new_tokens` "
            f"{total - prompt}. Thus, the combined length of the prompt "
            f"and `max_new_tokens` is: {total}. This exceeds the "
            "`max_length` of the Whisper model: 448. "
            "You should either reduce the length of your prompt, or "
            "reduce the value of `max_new_tokens`, "
            "so that their combined length is less that 448."
        )
        err.kind = getattr(e, "kind", None)
        return err
    return e


# -- the segment generator ---------------------------------------------------


def _temperature_of(value: float, temperatures):
    """The caller's temperature (its own value and type) that the engine's
    float32 ``value`` stands for."""
    for t in temperatures:
        try:
            if np.float32(t) == np.float32(value):
                return t
        except (TypeError, ValueError):
            continue
    return value


def _segments(handle, options, temperatures, log_progress, sequential, max_new_tokens):
    """faster-whisper's lazy segment generator over a native transcription:
    each window is decoded when the previous one's segments are used up."""
    if sequential and isinstance(options.clip_timestamps, str):
        # faster-whisper parses the string once decoding starts.
        options.clip_timestamps = [
            float(ts) for ts in (options.clip_timestamps.split(",") if options.clip_timestamps else [])
        ]
    bar = _progress_bar(handle, log_progress)
    try:
        while True:
            try:
                window = handle.next_window()
            except ValueError as e:
                raise _faster_whisper_error(e, max_new_tokens) from None
            if window is None:
                break
            for t in window:
                (sid, seek, start, end, text, tokens, avg_logprob, cr, nsp, words, temp) = t
                yield Segment(
                    id=sid,
                    seek=seek,
                    start=start,
                    end=end,
                    text=text,
                    tokens=tokens,
                    avg_logprob=avg_logprob,
                    compression_ratio=cr,
                    no_speech_prob=nsp,
                    words=(
                        [Word(start=w[0], end=w[1], word=w[2], probability=w[3]) for w in words]
                        if words is not None
                        else None
                    ),
                    temperature=_temperature_of(temp, temperatures),
                )
            if bar is not None:
                done, _total = handle.progress()
                if math.isfinite(done):
                    bar.update(done - bar.n)
    finally:
        handle.close()
        if bar is not None:
            bar.close()


def _progress_bar(handle, log_progress):
    if not log_progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        logging.getLogger("faster_whisper").debug("log_progress needs tqdm; not installed")
        return None
    return tqdm(total=handle.info()[2], unit="seconds")


def _shared_vad_model():
    """The VAD model of the default cache when it is there (so a
    ``download_root`` without one does not download it again)."""
    path = _native.vad_model_path(None, True)
    return path if os.path.isfile(path) else None


def get_compression_ratio(text: str) -> float:
    """The gzip compression ratio faster-whisper uses to detect repetitions."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))
