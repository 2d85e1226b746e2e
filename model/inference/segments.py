"""Speech segments of a stream: what one history row of the microphone stands for, and a
file's list of what was said.

No Qt here. The sliding-window engine (model.inference.window_stream) analyses an overlapping
window (live: 5 s every 0.5 s) every hop, so a single 2 s sentence shows up in about ten
windows. A user expects one entry per thing they said, so a segment is a run of hops whose *fresh* audio (the samples new since the
previous analysed window) contains speech, closed once ``end_silence_hops`` consecutive hops
are silent (a short pause between words does not split it) or when listening stops.

The segment's label is the argmax of the mean probabilities of the windows analysed during
it; its duration is the audio it covers (first speech hop to last speech hop, pauses inside
included), starting at ``start_s`` of the stream; its clip is that audio (capped at
``max_audio_s``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_studio.model.constants import SAMPLE_RATE


@dataclass(frozen=True)
class FinishedSegment:
    """One closed segment. probs: label -> mean probability; audio: (N,) float32 16 kHz;
    start_s: where in the stream its first speech hop starts (None when the windows were fed
    without their positions)."""

    label: str
    probs: dict[str, float]
    duration_s: float
    windows: int
    audio: np.ndarray | None
    start_s: float | None = None


class SegmentTracker:
    """Groups analysed live windows into speech segments (see the module docstring)."""

    def __init__(self, labels: list[str], *, end_silence_hops: int = 2,
                 max_audio_s: float = 60.0, keep_audio: bool = True):
        self.labels = list(labels)
        self.end_silence_hops = max(1, int(end_silence_hops))
        self.max_audio = int(max_audio_s * SAMPLE_RATE)
        self.keep_audio = keep_audio
        self._reset()

    def _reset(self) -> None:
        self._probs_sum: np.ndarray | None = None
        self._windows = 0
        self._chunks: list[np.ndarray] = []
        self._speech_samples = 0  # samples up to and including the last speech hop
        self._samples = 0  # samples of every chunk kept so far (trailing silence included)
        self._silent_hops = 0
        self._start: int | None = None  # stream sample of the first speech hop's first sample

    @property
    def active(self) -> bool:
        """Whether a segment is open."""
        return self._windows > 0

    def add(self, fresh: np.ndarray, hop_has_speech: bool,
            probs: np.ndarray | None, end: int | None = None) -> FinishedSegment | None:
        """Feed one analysed window.

        fresh: (M,) the window's samples that no earlier analysed window held.
        hop_has_speech: whether ``fresh`` holds speech (and the window was classified).
        probs: (n_classes,) the window's probabilities (used when hop_has_speech).
        end: the stream sample just after ``fresh`` (gives the segment's start_s).
        Returns the segment this window closed, if any.
        """
        if hop_has_speech and probs is not None:
            if not self.active and end is not None:
                self._start = int(end) - fresh.shape[0]
            probs = np.asarray(probs, dtype=np.float64)
            self._probs_sum = probs.copy() if self._probs_sum is None else self._probs_sum + probs
            self._windows += 1
            self._silent_hops = 0
            self._keep(fresh)
            self._speech_samples = self._samples
            return None
        if not self.active:
            return None
        self._silent_hops += 1
        if self._silent_hops >= self.end_silence_hops:
            return self.flush()
        self._keep(fresh)
        return None

    def _keep(self, fresh: np.ndarray) -> None:
        self._samples += fresh.shape[0]
        if self.keep_audio:
            self._chunks.append(np.asarray(fresh, dtype=np.float32))

    def flush(self) -> FinishedSegment | None:
        """Close the open segment (listening stopped, model changed); None when none is open."""
        if not self.active:
            return None
        mean = self._probs_sum / self._windows
        audio = None
        if self.keep_audio and self._chunks:
            audio = np.concatenate(self._chunks)[:self._speech_samples][:self.max_audio]
        segment = FinishedSegment(
            label=self.labels[int(np.argmax(mean))],
            probs={name: float(p) for name, p in zip(self.labels, mean)},
            duration_s=self._speech_samples / SAMPLE_RATE, windows=self._windows, audio=audio,
            start_s=None if self._start is None else self._start / SAMPLE_RATE)
        self._reset()
        return segment
