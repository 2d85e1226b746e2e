"""Voice activity detection with silero-vad, so that silence and noise get no forced emotion.

silero-vad ships its weights inside the pip package (no download). Its TorchScript model keeps
a recurrent state between chunks, so one model must not serve two signals at once: each
:class:`VoiceActivityDetector` holds its own model behind a lock and resets the state before
every signal. The module-level functions share one detector per process, created lazily on
first use; the lock makes them safe to call from several threads (calls are serialised, which
costs little: one window's detection is short next to a live hop).

The detector hears the signal through :class:`GateInput`: high-passed (a DC offset or rumble
is not speech) and at three levels, the most speech-like hearing counting, so that shouted,
clipped and quiet speech are all found. The threshold (0.25) and minimum speech duration
(100 ms) are chosen by measurement (``python -m bench.speech_gate``: real emotional speech as
recorded, loud, quiet and offset, against noises quiet to loud, hum and an offset; the tables
are in bench/results/speech-gate-2026-12-07/README.md): the setting misses the fewest clips
while no noise counts as speech, with a margin to the lower threshold where loud mains hum
gets in.
``has_speech`` asks for at least 10 % of the signal or 0.5 s of speech, whichever is less, so
a long recording with one short sentence still counts as speech.

A live stream is not re-run window by window: model/audio/vad_stream.py feeds it through silero's
sequence graph in 512-sample (32 ms) chunks, carrying the recurrent state between calls, and
``spans_from_probs`` segments any run of those chunk probabilities exactly as ``speech_spans``
segments a signal (model.audio.speech_track reads window and hop ratios from them).
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ser_studio.model.audio import highpass
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

THRESHOLD = 0.25           # silero speech probability above which a 32 ms chunk is speech
MIN_SPEECH_MS = 100        # shorter speech segments are discarded (measured: module docstring)
MIN_RATIO = 0.1            # has_speech: fraction of the signal that must be speech ...
MIN_SPEECH_SECONDS = 0.5   # ... or this much speech in total, whichever is less
CHUNK_SAMPLES = 512        # silero's frame at 16 kHz: one probability per 32 ms
# silero hears each chunk at these levels, and the most speech-like hearing counts
GATE_LEVELS_DB = (0.0, -15.0, -30.0)


_silero_module = None


class GateInput:
    """What the speech detector hears of a stream: the input high-pass (model.audio.highpass: a DC
    offset or rumble is not speech), then the audio at each of GATE_LEVELS_DB. silero runs on
    each level with its own state, and a chunk's speech probability is the highest of them
    (``loudest``). One stream, one thread.

    silero hears level: shouted speech (peaks near full scale) can score as non-speech while
    the same clip turned down scores as speech, and quiet speech is still found (figures:
    bench/results/speech-gate-2026-12-07/README.md). One fixed gain for everything cannot suit
    both, and a gain that follows the level squashes the onsets silero listens to; hearing a
    few fixed levels keeps each one linear and makes the decision hold from quiet to clipped
    speech (bench/speech_gate.py measures both errors).
    """

    gains = tuple(10.0 ** (db / 20.0) for db in GATE_LEVELS_DB)

    def __init__(self) -> None:
        self._highpass = highpass.stream()

    def filter(self, samples: np.ndarray) -> np.ndarray:
        """The next samples (n,) through the high-pass: (n,) float32."""
        return self._highpass(samples).astype(np.float32)

    @classmethod
    def loudest(cls, run, chunks: np.ndarray) -> np.ndarray:
        """Probabilities (K,) of filtered chunks (K, L): the highest over the levels of
        ``run(level index, chunks at that level)``."""
        return np.max([run(i, (chunks * np.float32(g)).astype(np.float32))
                       for i, g in enumerate(cls.gains)], axis=0)


def _silero():
    """The silero_vad module, imported leaving torch's thread count as it was."""
    global _silero_module
    if _silero_module is None:
        threads = torch.get_num_threads()
        with warnings.catch_warnings():  # silero's use of deprecated importlib/jit APIs
            warnings.simplefilter("ignore", DeprecationWarning)
            import silero_vad
        # importing silero_vad sets torch to one thread for the whole process; undo that
        torch.set_num_threads(threads)
        _silero_module = silero_vad
    return _silero_module


def load_model():
    """A fresh silero-vad TorchScript model, with its own recurrent state."""
    silero = _silero()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = silero.load_silero_vad()
    log.debug("silero-vad loaded")
    return model


class VoiceActivityDetector:
    """One silero-vad model and its lock. Loaded on first use."""

    def __init__(self, threshold: float = THRESHOLD, min_speech_ms: int = MIN_SPEECH_MS) -> None:
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            self._model = load_model()
        return self._model

    def speech_spans(self, wav: np.ndarray) -> list[tuple[int, int]]:
        """Speech segments of ``wav`` ((N,) float32, 16 kHz) as (start, end) sample indices:
        silero's own chunk-by-chunk call on what GateInput hears, segmented as
        get_speech_timestamps segments (``spans_from_probs``)."""
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if wav.size == 0 or not np.isfinite(wav).all():
            return []
        filtered = GateInput().filter(wav)
        chunks = np.pad(filtered, (0, -filtered.size % CHUNK_SAMPLES)).reshape(-1, CHUNK_SAMPLES)
        with self._lock, torch.inference_mode():
            model = self._load()

            def run(_level: int, scaled: np.ndarray) -> np.ndarray:
                model.reset_states()
                return np.array([float(model(torch.from_numpy(c).unsqueeze(0), SAMPLE_RATE))
                                 for c in scaled], dtype=np.float32)

            probs = GateInput.loudest(run, chunks)
            model.reset_states()
        return spans_from_probs(probs, wav.size, threshold=self.threshold,
                                min_speech_ms=self.min_speech_ms)


_default: VoiceActivityDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> VoiceActivityDetector:
    """The process-wide detector (created on first call)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = VoiceActivityDetector()
        return _default


def speech_spans(wav: np.ndarray) -> list[tuple[int, int]]:
    """Speech segments of ``wav`` ((N,) float32, 16 kHz) as (start, end) sample indices."""
    return default_detector().speech_spans(wav)


def spans_from_probs(probs: np.ndarray, n_samples: int | None = None, *,
                     threshold: float = THRESHOLD,
                     min_speech_ms: int = MIN_SPEECH_MS) -> list[tuple[int, int]]:
    """Speech segments from silero's chunk probabilities, segmented as ``speech_spans`` does
    (silero's own get_speech_timestamps_from_probs with the same settings).

    probs: (K,) speech probability of each CHUNK_SAMPLES chunk, chunk k covering samples
    [k * CHUNK_SAMPLES, (k + 1) * CHUNK_SAMPLES); n_samples: the signal's length (default
    K * CHUNK_SAMPLES). Returns (start, end) sample indices.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    n = probs.size * CHUNK_SAMPLES if n_samples is None else int(n_samples)
    if probs.size == 0 or n <= 0:
        return []
    stamps = _silero().get_speech_timestamps_from_probs(
        probs.tolist(), sampling_rate=SAMPLE_RATE, threshold=threshold,
        min_speech_duration_ms=min_speech_ms, audio_length_samples=n)
    return [(int(s["start"]), min(int(s["end"]), n)) for s in stamps]


def spans_ratio(spans: Sequence[tuple[int, int]], start: int, end: int) -> float:
    """Fraction of the samples in [start, end) covered by ``spans`` (0 for an empty range)."""
    if end <= start:
        return 0.0
    covered = sum(max(0, min(e, end) - max(s, start)) for s, e in spans)
    return covered / (end - start)


def speech_ratio(wav: np.ndarray) -> float:
    """Fraction of the samples of ``wav`` ((N,) float32, 16 kHz) that lie in speech, in [0, 1]."""
    wav = np.asarray(wav).reshape(-1)
    return spans_ratio(speech_spans(wav), 0, wav.size)


def is_speech(ratio: float, n_samples: int, *, min_ratio: float = MIN_RATIO,
              min_seconds: float = MIN_SPEECH_SECONDS) -> bool:
    """The has_speech decision from a speech ratio and the signal length in samples."""
    if n_samples <= 0 or ratio <= 0.0:
        return False
    needed = min(min_ratio, min_seconds * SAMPLE_RATE / n_samples)
    return ratio >= needed


def has_speech(wav: np.ndarray, *, min_ratio: float = MIN_RATIO,
               min_seconds: float = MIN_SPEECH_SECONDS) -> bool:
    """True when at least ``min_ratio`` of ``wav`` or ``min_seconds`` of it (whichever is less)
    is speech. wav: (N,) float32 at 16 kHz."""
    wav = np.asarray(wav).reshape(-1)
    return is_speech(speech_ratio(wav), wav.size, min_ratio=min_ratio, min_seconds=min_seconds)
