"""The two reads of a file timeline (model.inference.predictor.Predictor.predict_file), neither
holding the whole file.

Pass 1 (``scan``) decodes the file block by block (model.audio.io.iter_audio) for its length and
its speech spans (silero-vad over the whole stream, model.audio.vad_stream, segmented as
model.audio.vad.speech_spans segments a whole signal). Pass 2 (``blocks``) decodes it again for the
windows, feeding an optional meter on the way. Decoding twice costs little next to the VAD and
the network (a 16 kHz wav: nothing; a compressed file: its decoder and soxr once more) and
keeps memory bounded: a few blocks, the VAD's probabilities (4 bytes per 32 ms) and the spans.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import AudioError, iter_audio
from ser_studio.model.audio.vad_stream import SpeechProbStream
from ser_studio.model.constants import SAMPLE_RATE


class BlockSink(Protocol):
    """Anything fed the blocks of pass 2 (model.audio.loudness_stream.LoudnessStream)."""

    def feed(self, samples: np.ndarray) -> None: ...


class SpanIndex:
    """Sorted, non-overlapping speech spans (as silero gives them) with a fast
    ``model.audio.vad.spans_ratio``: only the spans that can overlap the range are summed, so the
    answer is the same and a timeline of W windows costs W log S instead of W * S."""

    def __init__(self, spans: Sequence[tuple[int, int]]) -> None:
        self.spans = list(spans)
        self._starts = [s for s, _ in self.spans]
        self._ends = [e for _, e in self.spans]

    def ratio(self, start: int, end: int) -> float:
        """Fraction of the samples in [start, end) covered by the spans."""
        first = bisect.bisect_right(self._ends, start)
        last = bisect.bisect_left(self._starts, end)
        return vad_mod.spans_ratio(self.spans[first:last], start, end)


def scan(path: str | Path, *, vad: bool = True,
         progress: Callable[[float], None] | None = None
         ) -> tuple[int, list[tuple[int, int]] | None]:
    """Pass 1: the file's length in samples at SAMPLE_RATE and its speech spans ((start, end)
    sample indices; None when ``vad`` is False). ``progress(done_s)`` is called after each
    block with the seconds decoded so far. Raises AudioError as model.audio.io.load_audio."""
    stream = SpeechProbStream() if vad else None
    probs: list[np.ndarray] = []
    n_samples = 0
    for block in iter_audio(path):
        n_samples += block.size
        if stream is not None:
            probs.append(stream.feed(block))
        if progress is not None:
            progress(n_samples / SAMPLE_RATE)
    if stream is None:
        return n_samples, None
    probs.append(stream.flush())
    return n_samples, vad_mod.spans_from_probs(np.concatenate(probs), n_samples)


def blocks(path: str | Path, n_samples: int, sink: BlockSink | None = None
           ) -> Iterator[np.ndarray]:
    """Pass 2: the file's (n,) float32 blocks again, each fed to ``sink`` first.

    Raises AudioError when they do not add up to ``n_samples`` (the file changed between the
    passes).
    """
    seen = 0
    for block in iter_audio(path):
        seen += block.size
        if seen > n_samples:
            break
        if sink is not None:
            sink.feed(block)
        yield block
    if seen != n_samples:
        raise AudioError(path, f"changed while being read: {seen} samples now, "
                               f"{n_samples} a moment ago")


def read_whole(path: str | Path, n_samples: int) -> np.ndarray:
    """Pass 2 for a short file: all its samples (n_samples,) float32, one copy."""
    wav = np.empty(n_samples, dtype=np.float32)
    position = 0
    for block in blocks(path, n_samples):
        wav[position:position + block.size] = block
        position += block.size
    return wav
