"""Speech detection over a stream: silero-vad runs once per sample; speech ratios of any recent
range are read from its frames.

The sliding-window engine (model.inference.window_stream) feeds each window's new samples
(``SpeechTrack.feed``). silero runs over them in 32 ms chunks with its recurrent state carried
over from the previous call (model.audio.vad_stream.SpeechProbStream), and the chunk
probabilities go into a RingBuffer (model.audio.ringbuffer). A window's speech ratio and a hop's
share of speech are then read from the stored probabilities (``SpeechTrack.ratio``), segmented as
model.audio.vad.speech_spans segments a whole signal (threshold, minimum speech and silence,
padding: model.audio.vad).

How this differs from running silero on a window alone (tests/model/test_speech_track.py checks
that the ratio of each 5 s window stays within 0.1 and that no speech/no-speech decision changes
on speech or noise): the model's state at a window's start has already heard the audio before
it; frames lie on the stream's 32 ms grid, not the window's; and the newest few milliseconds, too
short for a whole chunk yet, are given the verdict of the newest frame.

One stream, one thread; no Qt.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ser_studio.model.audio.ringbuffer import RingBuffer
from ser_studio.model.audio.vad import CHUNK_SAMPLES, spans_from_probs, spans_ratio
from ser_studio.model.audio.vad_stream import SpeechProbStream
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

HELD_SECONDS = 12.0  # probabilities kept by default: more than the longest live window (10 s)


class SpeechTrack:
    """Speech probabilities of one stream (a microphone, a file), with speech ratios of its recent
    ranges.

    Positions are absolute stream sample indices, as the recorder's window ``end``. One thread.
    """

    def __init__(self, held_seconds: float = HELD_SECONDS,
                 stream: SpeechProbStream | None = None) -> None:
        self._stream = stream if stream is not None else SpeechProbStream()
        self._probs = RingBuffer(math.ceil(held_seconds * SAMPLE_RATE / CHUNK_SAMPLES) + 1)
        self._origin = 0  # stream sample where frame 0 of the ring starts
        self._end: int | None = None  # stream sample just after the last one fed

    @property
    def end(self) -> int | None:
        """Stream sample just after the last one fed (None before the first feed)."""
        return self._end

    def reset(self) -> None:
        """Forget the stream: the next ``feed`` starts a new one."""
        self._stream.reset()
        self._probs.clear()
        self._end = None

    def feed(self, samples: np.ndarray, end: int) -> np.ndarray:
        """Run the detector over ``samples`` ((N,) float32, 16 kHz), the stream's samples just
        before absolute sample ``end``. Samples that do not follow the previous call's (a gap
        after dropped windows, or a new stream) restart the detector at their first sample.
        Returns the speech probabilities of the chunks this call completed (K,) float32."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        start = int(end) - samples.size
        if self._end is None or start != self._end:
            if self._end is not None:
                log.debug("speech track restarts at sample %d (the stream was at %d)", start,
                          self._end)
            self.reset()
            self._origin = start
        probs = self._stream.feed(samples)
        self._probs.write(probs)
        self._end = int(end)
        return probs

    def flush(self) -> np.ndarray:
        """The stream has ended: the probability (1,) of its unfinished chunk zero-padded, or
        (0,) when none is pending (model.audio.vad_stream.SpeechProbStream.flush)."""
        probs = self._stream.flush()
        self._probs.write(probs)
        return probs

    def ratio(self, start: int, end: int) -> float:
        """Fraction of the stream samples [start, end) that lie in speech, in [0, 1], from the
        stored frames. Samples never fed or no longer held count as no speech."""
        if end <= start or self._end is None:
            return 0.0
        k0 = (int(start) - self._origin) // CHUNK_SAMPLES
        k1 = -((self._origin - int(end)) // CHUNK_SAMPLES)  # ceil
        first, probs = self._probs.between(k0, k1)
        if probs.size == 0:
            return 0.0
        low = self._origin + first * CHUNK_SAMPLES
        high = low + probs.size * CHUNK_SAMPLES
        spans = [(low + s, low + e) for s, e in spans_from_probs(probs)]
        if spans and spans[-1][1] == high:  # speech runs on into the unfinished chunk
            spans[-1] = (spans[-1][0], max(high, min(int(end), self._end)))
        return spans_ratio(spans, start, end)
