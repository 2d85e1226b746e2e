"""The timeline of an audio file (``Predictor.predict_file``, model.inference.predictor), read
once and never held whole when long.

A timeline is windows (model.audio.io.window_spans, 3 s every 1 s by default) cut from the file
as it is decoded block by block (model.audio.io.iter_audio, stream_windows) and analysed by the
sliding-window engine (model.inference.window_stream) exactly as the live recogniser analyses
its windows: the speech detector runs once over the stream and gates each window by its share
of speech, the features of overlapping windows share their frames, and the windows are grouped
into speech segments (``FileResult.segments``). FILE_BATCH windows at a time go through the
engine together, their GE2E LSTM runs in one batch: the same probabilities, less CPU.

The overall prediction of a file no longer than ``eval_max_seconds`` is the network run on the
whole file (what it was trained and evaluated on), gated by the file's speech spans. A longer
file's overall probabilities are the mean of its speech windows' probabilities weighted by each
window's speech ratio; its overall attention is then empty, and its level is measured on the
stream (model.audio.loudness_stream, with the same result as on the whole signal). The file's
speech spans and overall speech ratio come from the same detector probabilities as the
windows', segmented over the whole file (model.audio.vad.spans_from_probs). Memory does not
grow with a long file's length: a window and a block of audio, the frames of a window, and the
detector's probabilities (4 bytes per 32 ms).

Progress: ``progress(done_s, total_s)`` runs on one scale of the file's seconds (its header's
duration), called as each window is analysed and once more, with done_s == total_s, at the end.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import AudioError, header_seconds, iter_audio, stream_windows
from ser_studio.model.audio.loudness import Level
from ser_studio.model.audio.loudness_stream import MIN_SECONDS as LOUDNESS_MIN_SECONDS
from ser_studio.model.audio.loudness_stream import LoudnessStream
from ser_studio.model.audio.speech_track import HELD_SECONDS
from ser_studio.model.constants import (HOP_SECONDS, MIN_HOP_SECONDS, MIN_UTTERANCE_SECONDS,
                                        SAMPLE_RATE, WINDOW_SECONDS)
from ser_studio.model.inference.prediction import FileResult, Prediction
from ser_studio.model.inference.segments import FinishedSegment
from ser_studio.model.inference.window_stream import WindowStream

Window = tuple[float, float, Prediction]   # (start_s, end_s, prediction)
FILE_BATCH = 8  # windows analysed together: their recurrent runs batched (WindowStream.analyse_many)


class WindowPredictor(Protocol):
    """What a timeline asks of the predictor that scores its windows (model.inference.predictor's
    Predictor, which calls ``predict_file`` with itself): what the sliding-window engine asks
    (labels, ``live_stream``, ``windows_features``, ``prediction_of``, ``no_speech``), its
    frontend and crop length, and its whole-signal steps."""

    labels: list[str]
    frontend: object
    attention_rate: float
    max_seconds: float | None

    def live_stream(self, hop: int | None = None): ...

    def windows_features(self, wavs: list[np.ndarray], *, live=None,
                         ends: list[int | None] | None = None
                         ) -> list[tuple[torch.Tensor, Level, int]]: ...

    def prediction_of(self, feats: torch.Tensor, level: Level, offset: int, ratio: float,
                      started: float) -> Prediction: ...

    def level(self, wav: np.ndarray) -> Level: ...

    def no_speech(self, ratio: float, started: float, wav: np.ndarray) -> Prediction: ...

    def speech_prediction(self, wav: np.ndarray, ratio: float, started: float
                          ) -> Prediction: ...


def predict_file(predictor: WindowPredictor, path: str | Path, *,
                 window_s: float = WINDOW_SECONDS, hop_s: float = HOP_SECONDS, vad: bool = True,
                 progress: Callable[[float, float], None] | None = None) -> FileResult:
    """Overall prediction, window timeline and speech segments of an audio file (see the
    module docstring).

    Raises ValueError for a window or hop that check_timeline refuses, AudioError (naming the
    file) for a file that cannot be read or is shorter than MIN_UTTERANCE_SECONDS; an exception
    raised by ``progress`` propagates.
    """
    check_timeline(window_s, hop_s)
    started = time.perf_counter()
    path = Path(path)
    meter = _Progress(progress, header_seconds(path) if progress is not None else 0.0)
    window, hop = int(round(window_s * SAMPLE_RATE)), int(round(hop_s * SAMPLE_RATE))
    reader = _Reader(path, _hold_limit(predictor, window),
                     LoudnessStream(getattr(predictor.frontend, "highpass_hz", 0.0)))
    engine = WindowStream(predictor, vad=vad, hop=hop, held_seconds=window_s + HELD_SECONDS,
                          keep_audio=False, keep_probs=True)
    windows: list[Window] = []
    segments: list[FinishedSegment] = []
    batch: list[tuple[int, int, np.ndarray]] = []
    for start, end, wav in stream_windows(reader.blocks(), window, hop):
        if end - start < MIN_UTTERANCE_SECONDS * SAMPLE_RATE:  # the one window of a short file
            raise AudioError(path, f"too short: {(end - start) / SAMPLE_RATE:.3g} s of audio, "
                                   f"an emotion is told for {MIN_UTTERANCE_SECONDS:g} s or more")
        batch.append((start, end, wav))
        if len(batch) == FILE_BATCH:
            _analyse(engine, batch, windows, segments, meter)
            batch = []
    _analyse(engine, batch, windows, segments, meter)
    segments += [s for s in [engine.close_segment()] if s is not None]
    n_samples = reader.n_samples
    spans = engine.speech_spans(n_samples) if vad else None
    wav = reader.whole()
    if wav is not None:
        overall = _overall_of_whole(predictor, wav, windows, spans)
    else:  # the overall result is the windows' average
        overall = dataclasses.replace(
            average(predictor, windows, spans, n_samples),
            level=reader.loudness.level(getattr(predictor.frontend, "normaliser", None)))
    meter.done()
    # a copy: a one-window file's window keeps its own latency
    overall = dataclasses.replace(overall, latency_s=time.perf_counter() - started)
    return FileResult(path=path, duration_s=n_samples / SAMPLE_RATE, overall=overall,
                      windows=windows, segments=segments)


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


def _analyse(engine: WindowStream, batch: list[tuple[int, int, np.ndarray]],
             windows: list[Window], segments: list[FinishedSegment], meter: "_Progress") -> None:
    """Analyse consecutive (start, end, samples) windows together; append their predictions
    and the segments they closed; report progress window by window."""
    if not batch:
        return
    for (start, end, _), step in zip(batch, engine.analyse_many([(w, e) for _, e, w in batch])):
        windows.append((start / SAMPLE_RATE, end / SAMPLE_RATE, step.prediction))
        segments += [step.segment] if step.segment is not None else []
        meter.report(end / SAMPLE_RATE)


class _Progress:
    """Reports on one increasing scale of ``total_s`` seconds; each call to the callback
    carries a larger done_s than the last, the final one done_s == total_s."""

    def __init__(self, callback: Callable[[float, float], None] | None, total_s: float):
        self._callback = callback
        self._total = total_s
        self._last = -1.0

    def report(self, done_s: float) -> None:
        """``done_s`` seconds of the file are analysed (capped just below the total, which
        ``done`` reports)."""
        if self._callback is None or self._total <= 0:
            return
        done = min(done_s, self._total * (1 - 1e-9))
        if done > self._last:
            self._last = done
            self._callback(done, self._total)

    def done(self) -> None:
        if self._callback is not None and self._total > self._last:
            self._last = self._total
            self._callback(self._total, self._total)


class _Reader:
    """The file's blocks, decoded once and counted: held as long as the file may still be short
    enough to need whole (``hold`` samples; None: always); past that, fed to the loudness meter
    (the held ones first), which only a long file's overall level needs."""

    def __init__(self, path: Path, hold: int | None, loudness: LoudnessStream) -> None:
        self.path, self.hold, self.loudness = path, hold, loudness
        self.n_samples = 0
        self._held: list[np.ndarray] | None = []

    def blocks(self) -> Iterator[np.ndarray]:
        for block in iter_audio(self.path):
            self.n_samples += block.size
            if self._held is None:
                self.loudness.feed(block)
            else:
                self._held.append(block)
                if self.hold is not None and self.n_samples > self.hold:
                    for held in self._held:  # long: the overall is the windows' average
                        self.loudness.feed(held)
                    self._held = None
            yield block

    def whole(self) -> np.ndarray | None:
        """All the file's samples (n_samples,) when it is short enough to need them whole."""
        if self._held is None:
            return None
        return np.concatenate(self._held) if self._held else np.zeros(0, np.float32)


def _hold_limit(predictor: WindowPredictor, window: int) -> int | None:
    """Samples up to which the overall result needs the whole signal (one window, the network
    on the whole file, or a signal shorter than one loudness block); None: any length (a model
    without ``eval_max_seconds`` runs on the whole file)."""
    if predictor.max_seconds is None:
        return None
    return int(max(window, predictor.max_seconds * SAMPLE_RATE,
                   LOUDNESS_MIN_SECONDS * SAMPLE_RATE))


def _overall_of_whole(predictor: WindowPredictor, wav: np.ndarray, windows: list[Window],
                      spans) -> Prediction:
    """The overall prediction of a file held whole (see the module docstring)."""
    n_samples = wav.shape[0]
    if len(windows) == 1:  # the one window (0, n_samples)
        return windows[0][2]
    if predictor.max_seconds is None or n_samples <= predictor.max_seconds * SAMPLE_RATE:
        return window_prediction(predictor, wav, 0, n_samples, spans)
    return dataclasses.replace(average(predictor, windows, spans, n_samples),
                               level=predictor.level(wav))


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
