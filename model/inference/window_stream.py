"""The sliding-window engine: one stream's overlapping windows analysed the same way live and
in files.

A stream is audio that arrives as overlapping windows, each given with its end sample in the
stream: the recorder's newest 5 s every 0.5 s (app/live/inference_worker.py), or a file's 3 s
every 1 s (model.inference.timeline). For each window, :meth:`WindowStream.analyse`

1. feeds the window's fresh samples (those no earlier window held) to the stream's speech
   detector (model.audio.speech_track: silero runs once per sample, its state carried);
2. reads the window's speech ratio from the detector; a window without speech
   (model.audio.vad.is_speech) gets no features and no network run;
3. takes a speech window's features from the stream's frame cache (model.features.live: each
   frame computed once however many windows hold it; a frontend without a streaming form, or a
   window longer than the model's crop, is computed whole) and runs the network on them;
4. smooths: the shown probabilities are the mean of the last ``smoothing`` speech windows of
   the current segment (1: the newest window alone);
5. groups the windows into speech segments (model.inference.segments) by whether each hop's
   fresh audio holds speech (MIN_HOP_SPEECH of it).

Live and file analysis of the same windows therefore give the same probabilities, bit for bit:
the one thing that decides a window's result is the sequence of windows before it (the
detector's state, the frames held and the gain they were computed at).

A window that does not follow the previous one (a gap after dropped windows, time going back,
a new stream) restarts the detector and the frame cache by itself; ``end_stream`` restarts them
and closes the open segment. One stream, one thread; no Qt.
"""
from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ser_studio.model.audio.speech_track import HELD_SECONDS, SpeechTrack
from ser_studio.model.audio.vad import is_speech, spans_from_probs
from ser_studio.model.inference.prediction import Prediction
from ser_studio.model.inference.segments import FinishedSegment, SegmentTracker

MIN_HOP_SPEECH = 0.2  # a hop "has speech" when the detector marks at least this fraction of it


@dataclass(frozen=True)
class WindowStep:
    """What one analysed window gives.

    prediction: the window's own (its probabilities unsmoothed; label None without speech).
    probs: (n_classes,) float64, the mean of the current segment's last ``smoothing`` speech
        windows (zeros when this window holds no speech); label: their argmax (None then).
    fresh: (M,) the window's samples that no earlier window held; hop_speech: whether they
        hold speech (MIN_HOP_SPEECH) and the window was classified.
    segment: the speech segment this window closed, if any.
    features: (T, D) the unnormalised features the network ran on (None without speech), for
        speaker adaptation (model.adaptation.live).
    """

    prediction: Prediction
    probs: np.ndarray
    label: str | None
    fresh: np.ndarray
    hop_speech: bool
    segment: FinishedSegment | None
    features: torch.Tensor | None


@dataclass
class _Heard:
    """A window between the detector and the network: what ``_hear`` read of it, then its
    prediction (set by the gate, or after its features) and features."""

    wav: np.ndarray
    end: int
    fresh: np.ndarray
    ratio: float
    hop_speech: bool
    prediction: Prediction | None = None
    features: torch.Tensor | None = None
    spent: float = 0.0


class WindowStream:
    """One stream's windows through a Predictor (model.inference.predictor), with the stream's
    speech detector, frame cache, smoothing and segments (see the module docstring).

    vad: False skips the detector (every window is speech, speech ratio NaN).
    hop: samples between the windows' ends when known (a file's timeline): the frame cache
        then gives each window exactly the full path's frames where that costs little
        (model.features.live, phases); None (live, where windows are dropped now and then):
        the stream's grid.
    held_seconds: how far back the detector's probabilities are kept: at least the longest
        window given. keep_audio / max_audio_s / end_silence_hops: the segments'
        (model.inference.segments.SegmentTracker). keep_probs: also keep every detector
        probability of the stream (``probs``), for a file's overall speech spans.
    """

    def __init__(self, predictor, *, vad: bool = True, hop: int | None = None,
                 smoothing: int = 1, held_seconds: float = HELD_SECONDS, keep_audio: bool = True,
                 max_audio_s: float = 60.0, end_silence_hops: int = 2,
                 keep_probs: bool = False) -> None:
        self.predictor = predictor
        self.labels = list(predictor.labels)
        self._track = SpeechTrack(held_seconds) if vad else None
        self._features = predictor.live_stream(hop)
        self._segments = SegmentTracker(self.labels, end_silence_hops=end_silence_hops,
                                        max_audio_s=max_audio_s, keep_audio=keep_audio)
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, smoothing))
        self._keep_probs = keep_probs
        self._probs: list[np.ndarray] = []
        self._last_end: int | None = None

    @property
    def probs(self) -> np.ndarray:
        """Every detector probability of the stream so far (K,) float32, one per 32 ms chunk
        (with ``keep_probs``; the detector restarted at a gap: they are then not one stream's)."""
        return np.concatenate(self._probs) if self._probs else np.zeros(0, np.float32)

    def speech_spans(self, n_samples: int) -> list[tuple[int, int]]:
        """The stream has ended after ``n_samples``: its speech spans (start, end) segmented
        over all of it (model.audio.vad.spans_from_probs; needs ``keep_probs`` and the
        detector)."""
        if self._track is None or not self._keep_probs:
            raise ValueError("speech spans need the detector and keep_probs")
        self._probs.append(self._track.flush())
        return spans_from_probs(self.probs, n_samples)

    def set_smoothing(self, windows: int) -> None:
        """Average the shown probabilities over the last ``windows`` speech windows."""
        self._recent = collections.deque(self._recent, maxlen=max(1, int(windows)))

    def analyse(self, wav: np.ndarray, end: int) -> WindowStep:
        """Analyse the window ``wav`` (N,) float32 16 kHz ending at stream sample ``end``.

        Raises ValueError for NaN or infinite samples; whatever it raises leaves the segments
        and smoothing as they were (the detector has heard the window).
        """
        return self.analyse_many([(wav, end)])[0]

    def analyse_many(self, windows: list[tuple[np.ndarray, int]]) -> list[WindowStep]:
        """``analyse`` of consecutive (wav, end) windows, in order, with the same results as
        one by one: the speech windows' features are computed together
        (Predictor.windows_features, whose recurrent runs go through in one batch), for less
        CPU. A file's timeline knows its next windows; live analyses each as it comes."""
        heard = [self._hear(wav, int(end)) for wav, end in windows]
        speech = [h for h in heard if h.prediction is None]
        began = time.perf_counter()
        features = self.predictor.windows_features(
            [h.wav for h in speech], live=self._features, ends=[h.end for h in speech])
        share = (time.perf_counter() - began) / max(1, len(speech))
        for h, (feats, level, offset) in zip(speech, features):
            h.features = feats
            h.prediction = self.predictor.prediction_of(
                feats, level, offset, h.ratio, time.perf_counter() - h.spent - share)
        return [self._step(h) for h in heard]

    def close_segment(self) -> FinishedSegment | None:
        """Close the open segment (None when none is open); smoothing starts afresh."""
        self._recent.clear()
        return self._segments.flush()

    def end_stream(self) -> FinishedSegment | None:
        """The stream ended (listening stopped, another input): close the open segment and
        forget the stream, so the next window starts a new one."""
        segment = self.close_segment()
        self._last_end = None
        if self._track is not None:
            self._track.reset()
        if self._features is not None:
            self._features.reset()
        return segment

    def _hear(self, wav: np.ndarray, end: int) -> "_Heard":
        """A window through the detector: its fresh samples, its speech ratio and its hop's,
        read now (as live reads them), and the gate's verdict."""
        started = time.perf_counter()
        fresh = self._fresh(wav, end)
        if self._track is not None:
            new = self._track.feed(fresh, end)
            if self._keep_probs:
                self._probs.append(new)
        ratio = math.nan if self._track is None else self._track.ratio(end - wav.shape[0], end)
        heard = _Heard(wav=wav, end=end, fresh=fresh, ratio=ratio,
                       hop_speech=fresh.size > 0 and self._hop_speech(fresh, end))
        heard.prediction = self._gate(wav, ratio, started)
        heard.spent = time.perf_counter() - started
        return heard

    def _gate(self, wav: np.ndarray, ratio: float, started: float) -> Prediction | None:
        """The Prediction of a window without speech (model.audio.vad.is_speech of its ratio),
        or None for a speech window (its features and network come next)."""
        if self._track is None or is_speech(ratio, wav.shape[0]):
            return None
        if not np.isfinite(wav).all():
            raise ValueError("waveform contains NaN or infinite samples")
        return self.predictor.no_speech(ratio, started, wav)

    def _step(self, heard: "_Heard") -> WindowStep:
        """The window's segment and smoothing, in stream order."""
        prediction = heard.prediction
        hop_speech = bool(prediction.speech) and heard.hop_speech
        segment = self._segments.add(heard.fresh, hop_speech,
                                     prediction.probs if prediction.speech else None, heard.end)
        if segment is not None:  # smoothing starts afresh with each segment
            self._recent.clear()
        if prediction.speech:
            self._recent.append(np.asarray(prediction.probs, dtype=np.float64))
            probs = np.mean(np.stack(list(self._recent)), axis=0)
            label = self.labels[int(np.argmax(probs))]
        else:
            probs, label = np.zeros(len(self.labels)), None
        return WindowStep(prediction=prediction, probs=probs, label=label, fresh=heard.fresh,
                          hop_speech=hop_speech, segment=segment, features=heard.features)

    def _hop_speech(self, fresh: np.ndarray, end: int) -> bool:
        """Whether the hop's fresh samples (ending at stream sample ``end``) hold speech."""
        return self._track is None or \
            self._track.ratio(end - fresh.size, end) >= MIN_HOP_SPEECH

    def _fresh(self, wav: np.ndarray, end: int) -> np.ndarray:
        """The samples of this window that no earlier window held (all of them after a
        restart or when time went back)."""
        n = wav.shape[0]
        new = n if self._last_end is None or end <= self._last_end \
            else min(end - self._last_end, n)
        self._last_end = end
        return wav[n - new:]
