"""Live speech detection: silero-vad runs once per sample; speech ratios are read from its frames.

The inference worker feeds each hop's new samples (``LiveVad.feed``). silero runs over them in
32 ms chunks with its recurrent state carried over from the previous hop
(model.audio.vad_stream.SpeechProbStream), and the chunk probabilities go into a RingBuffer, a
small numpy ring kept beside the audio. A window's speech ratio and a hop's share of speech are
then read from the stored probabilities (``LiveVad.ratio``), segmented as
model.audio.vad.speech_spans segments a whole signal (threshold 0.5, 250 ms minimum speech,
100 ms minimum silence, 30 ms padding). Before this, silero ran again over the whole 5 s window
at every 0.5 s hop, and once more over the hop.

How this differs from running silero on a window alone (tests/app/test_live_vad.py checks that
the ratio of each 5 s window stays within 0.1 and that no speech/no-speech decision changes on
speech or noise): the model's state at a window's start has already heard the audio before it;
frames lie on the stream's 32 ms grid, not the window's; and the newest few milliseconds, too
short for a whole chunk yet, are given the verdict of the newest frame.

There is no Qt here.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ser_studio.app.live.ringbuffer import RingBuffer
from ser_studio.model.audio.vad import CHUNK_SAMPLES, spans_from_probs, spans_ratio
from ser_studio.model.audio.vad_stream import SpeechProbStream
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

HELD_SECONDS = 12.0  # probabilities kept: more than the longest live window (10 s)


class LiveVad:
    """Speech probabilities of one live stream, with speech ratios of its recent ranges.

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

    def feed(self, samples: np.ndarray, end: int) -> None:
        """Run the detector over ``samples`` ((N,) float32, 16 kHz), the stream's samples just
        before absolute sample ``end``. Samples that do not follow the previous call's (a gap
        after dropped windows, or a new stream) restart the detector at their first sample."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        start = int(end) - samples.size
        if self._end is None or start != self._end:
            if self._end is not None:
                log.debug("live VAD restarts at sample %d (the stream was at %d)", start,
                          self._end)
            self.reset()
            self._origin = start
        self._probs.write(self._stream.feed(samples))
        self._end = int(end)

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
