"""The timeline of an audio file (``Predictor.predict_file``, model.inference.predictor), never
holding a long file whole.

A timeline is windows (model.audio.io.window_spans, 3 s every 1 s by default), each gated by the
VAD share of its own samples. The overall prediction of a file no longer than
``eval_max_seconds`` is the network run on the whole file (what it was trained and evaluated
on). A longer file's overall probabilities are the mean of its speech windows' probabilities
weighted by each window's speech ratio; its overall attention is then empty.

How it gets there (model.inference.file_reads): a first read of the file in blocks gives its length
and its speech spans, silero run once over the whole stream and segmented by silero's own rules,
through silero's sequence graph (model.audio.vad_stream: probabilities within ~1e-4 of its
chunk-by-chunk loop); a second read cuts the windows out of the stream
(model.audio.io.slice_windows), so a file longer than ``eval_max_seconds`` is never held whole and
memory does not grow with its length (a shorter one, or any file for a model without
``eval_max_seconds``, is held once). Each
window's features are ``Predictor.predict``'s (loudness normaliser, centre crop); the speech
windows go through the network FILE_BATCH at a time, which changes their probabilities by
~1e-7. A long file's overall level is measured on the stream (model.audio.loudness_stream), with the
same result as on the whole signal.

Progress: ``progress(done_s, total_s)`` runs on one scale of the file's seconds (its header's
duration): the first read (decoding and VAD) fills the first VAD_SHARE of it, the windows the
rest, as each one is scored.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import AudioError, header_seconds, slice_windows, window_spans
from ser_studio.model.audio.loudness import Level
from ser_studio.model.audio.loudness_stream import MIN_SECONDS as LOUDNESS_MIN_SECONDS
from ser_studio.model.audio.loudness_stream import LoudnessStream
from ser_studio.model.constants import (HOP_SECONDS, MIN_HOP_SECONDS, MIN_UTTERANCE_SECONDS,
                                        SAMPLE_RATE, WINDOW_SECONDS)
from ser_studio.model.inference import file_reads
from ser_studio.model.inference.prediction import FileResult, Prediction

FILE_BATCH = 8    # speech windows per network call: larger batches save no CPU on onnxruntime,
                  # only take memory (bench/results/docstring-history.md)
VAD_SHARE = 0.1   # of the progress scale given to the first read (decoding + VAD)

Window = tuple[float, float, Prediction]   # (start_s, end_s, prediction)


class WindowPredictor(Protocol):
    """What a timeline asks of the predictor that scores its windows (model.inference.predictor's
    Predictor, which calls ``predict_file`` with itself): its labels, frontend, attention rate and
    crop length, and its per-window steps."""

    labels: list[str]
    frontend: object
    attention_rate: float
    max_seconds: float | None

    def window_features(self, wav: np.ndarray, *, live=None, end: int | None = None
                        ) -> tuple[torch.Tensor, Level, int]: ...

    def network_batch(self, features: list[torch.Tensor]
                      ) -> list[tuple[np.ndarray, np.ndarray]]: ...

    def level(self, wav: np.ndarray) -> Level: ...

    def no_speech(self, ratio: float, started: float, wav: np.ndarray) -> Prediction: ...

    def speech_prediction(self, wav: np.ndarray, ratio: float, started: float
                          ) -> Prediction: ...


def predict_file(predictor: WindowPredictor, path: str | Path, *,
                 window_s: float = WINDOW_SECONDS, hop_s: float = HOP_SECONDS, vad: bool = True,
                 progress: Callable[[float, float], None] | None = None) -> FileResult:
    """Overall prediction and window timeline of an audio file (see the module docstring).

    Raises ValueError for a window or hop that check_timeline refuses, AudioError (naming the
    file) for a file that cannot be read or is shorter than MIN_UTTERANCE_SECONDS; an exception
    raised by ``progress`` propagates.
    """
    check_timeline(window_s, hop_s)
    started = time.perf_counter()
    path = Path(path)
    meter = _Progress(progress, header_seconds(path) if progress is not None else 0.0)
    n_samples, spans = file_reads.scan(path, vad=vad, progress=meter.scanned)
    if n_samples < MIN_UTTERANCE_SECONDS * SAMPLE_RATE:  # its level and emotion mean nothing
        raise AudioError(path, f"too short: {n_samples / SAMPLE_RATE:.3g} s of audio, an "
                               f"emotion is told for {MIN_UTTERANCE_SECONDS:g} s or more")
    window = int(round(window_s * SAMPLE_RATE))
    spans_of = window_spans(n_samples, window, int(round(hop_s * SAMPLE_RATE)))
    on_window = meter.windows(n_samples)
    if _needs_whole_file(predictor, n_samples, window):
        wav = file_reads.read_whole(path, n_samples)
        windows = timeline(predictor, ((s, e, wav[s:e]) for s, e in spans_of), spans, on_window)
        overall = _overall_of_whole(predictor, wav, windows, spans_of, spans)
    else:  # the overall result is the windows' average: stream them
        loudness = LoudnessStream(getattr(predictor.frontend, "highpass_hz", 0.0))
        windows = timeline(predictor, slice_windows(
            file_reads.blocks(path, n_samples, loudness), spans_of), spans, on_window)
        overall = dataclasses.replace(
            average(predictor, windows, spans, n_samples),
            level=loudness.level(getattr(predictor.frontend, "normaliser", None)))
    meter.done()
    # a copy: a one-window file's window keeps its own latency
    overall = dataclasses.replace(overall, latency_s=time.perf_counter() - started)
    return FileResult(path=path, duration_s=n_samples / SAMPLE_RATE, overall=overall,
                      windows=windows)


def check_timeline(window_s: float, hop_s: float,
                   names: tuple[str, str] = ("window_s", "hop_s")) -> None:
    """Refuse a timeline window or hop (seconds) that is not a finite number, a window shorter
    than MIN_UTTERANCE_SECONDS or a hop finer than MIN_HOP_SECONDS (see model.constants);
    ValueError naming the option as the caller calls it (``names``, e.g. "--window")."""
    for name, value, least, why in (
            (names[0], window_s, MIN_UTTERANCE_SECONDS,
             "shorter audio cannot hold an emotional utterance"),
            (names[1], hop_s, MIN_HOP_SECONDS, "a finer timeline says nothing more and every "
             "window costs a run of the network")):
        if not (math.isfinite(value) and value >= least):
            raise ValueError(f"{name} {value:g}: must be a number of seconds, at least "
                             f"{least:g} ({why})")


class _Progress:
    """Maps the two reads onto one increasing scale of ``total_s`` seconds; each call to the
    callback carries a larger done_s than the last, the final one done_s == total_s."""

    def __init__(self, callback: Callable[[float, float], None] | None, total_s: float):
        self._callback = callback
        self._total = total_s
        self._last = -1.0

    def _report(self, fraction: float) -> None:
        if self._callback is None:
            return
        done = min(1.0, fraction) * self._total
        if done > self._last:
            self._last = done
            self._callback(done, self._total)

    def scanned(self, decoded_s: float) -> None:
        """The first read has decoded ``decoded_s`` seconds."""
        if self._total > 0:
            self._report(VAD_SHARE * decoded_s / self._total)

    def windows(self, n_samples: int) -> Callable[[int], None]:
        """``on_window(start)`` for ``timeline``: a window starting at sample ``start`` has
        been taken up (of ``n_samples`` in all)."""
        return lambda start: self._report(VAD_SHARE + (1 - VAD_SHARE) * start / max(1, n_samples))

    def done(self) -> None:
        self._report(1.0)


def _needs_whole_file(predictor: WindowPredictor, n_samples: int, window: int) -> bool:
    """True when the overall result needs the whole signal (one window, the network on the
    whole file, or a signal shorter than one loudness block)."""
    if predictor.max_seconds is None:
        return True
    return n_samples <= max(window, predictor.max_seconds * SAMPLE_RATE,
                            LOUDNESS_MIN_SECONDS * SAMPLE_RATE)


def _overall_of_whole(predictor: WindowPredictor, wav: np.ndarray, windows: list[Window],
                      spans_of: list, spans) -> Prediction:
    """The overall prediction of a file held whole (see the module docstring)."""
    n_samples = wav.shape[0]
    if len(windows) == 1 and spans_of[0] == (0, n_samples):
        return windows[0][2]
    if predictor.max_seconds is None or n_samples <= predictor.max_seconds * SAMPLE_RATE:
        return window_prediction(predictor, wav, 0, n_samples, spans)
    return dataclasses.replace(average(predictor, windows, spans, n_samples),
                               level=predictor.level(wav))


def timeline(predictor: WindowPredictor, items: Iterable[tuple[int, int, np.ndarray]], spans,
             on_window: Callable[[int], None] | None = None) -> list[Window]:
    """Predictions of (start, end, samples (end - start,)) windows in order, each gated by the
    share of ``spans`` (None: no VAD); speech windows go through the network FILE_BATCH at a
    time. A speech window's latency_s is its features' time plus its share of its batch's.
    ``on_window(start)`` is called as each window is taken up."""
    windows: list = []
    pending: list[_Pending] = []
    index = None if spans is None else file_reads.SpanIndex(spans)
    for start, end, wav in items:
        if on_window is not None:
            on_window(start)
        begun = time.perf_counter()
        ratio = math.nan if index is None else index.ratio(start, end)
        prediction = None
        if spans is not None and not vad_mod.is_speech(ratio, end - start):
            prediction = predictor.no_speech(ratio, begun, wav)
        else:
            feats, level, offset = predictor.window_features(wav)
            pending.append(_Pending(len(windows), ratio, feats, level, offset,
                                    time.perf_counter() - begun))
        windows.append((start / SAMPLE_RATE, end / SAMPLE_RATE, prediction))
        if len(pending) == FILE_BATCH:
            _run_pending(predictor, pending, windows)
            pending = []
    _run_pending(predictor, pending, windows)
    return windows


@dataclass(frozen=True)
class _Pending:
    """A speech window of a file timeline awaiting its batch: its index in the timeline, its
    speech ratio, features, level, crop offset (samples) and the seconds spent on it so far."""

    index: int
    ratio: float
    feats: torch.Tensor
    level: Level
    offset: int
    spent: float


def _run_pending(predictor: WindowPredictor, pending: list[_Pending], windows: list) -> None:
    """Run the network on ``pending`` windows as one batch; fill in their predictions."""
    if not pending:
        return
    begun = time.perf_counter()
    outputs = predictor.network_batch([p.feats for p in pending])
    share = (time.perf_counter() - begun) / len(pending)
    for p, (probs, attention) in zip(pending, outputs):
        start_s, end_s, _ = windows[p.index]
        windows[p.index] = (start_s, end_s, Prediction(
            label=predictor.labels[int(np.argmax(probs))], probs=probs, attention=attention,
            attention_rate=predictor.attention_rate, speech=True, speech_ratio=p.ratio,
            latency_s=p.spent + share, attention_offset_s=p.offset / SAMPLE_RATE,
            level=p.level))


def window_prediction(predictor: WindowPredictor, wav: np.ndarray, start: int, end: int,
                      spans) -> Prediction:
    """Prediction of wav[start:end], gated by the share of ``spans`` (None: no VAD)."""
    begun = time.perf_counter()
    if spans is None:
        return predictor.speech_prediction(wav[start:end], math.nan, begun)
    ratio = vad_mod.spans_ratio(spans, start, end)
    if not vad_mod.is_speech(ratio, end - start):
        return predictor.no_speech(ratio, begun, wav[start:end])
    return predictor.speech_prediction(wav[start:end], ratio, begun)


def average(predictor: WindowPredictor, windows: list[Window], spans,
            n_samples: int) -> Prediction:
    """Mean of the speech windows' probabilities weighted by their speech ratio (equal weights
    when the VAD is skipped, ``spans`` None)."""
    preds = [p for _, _, p in windows if p.speech]
    ratio = math.nan if spans is None else vad_mod.spans_ratio(spans, 0, n_samples)
    if not preds:
        return predictor.no_speech(ratio, time.perf_counter(), np.zeros(0, np.float32))
    weights = (np.ones(len(preds)) if spans is None
               else np.asarray([p.speech_ratio for p in preds], dtype=float))
    probs = np.average(np.stack([p.probs for p in preds]), axis=0, weights=weights)
    probs = (probs / probs.sum()).astype(np.float32)
    return Prediction(label=predictor.labels[int(np.argmax(probs))], probs=probs,
                      attention=np.zeros(0, dtype=np.float32),
                      attention_rate=predictor.attention_rate, speech=True, speech_ratio=ratio,
                      latency_s=0.0)
