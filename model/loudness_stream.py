"""The level of a long signal fed block by block: model.loudness's measurement without the
whole signal in memory.

:class:`LoudnessStream` gives what ``model.loudness.integrated_loudness`` and ``peak_dbfs`` give
for the concatenated blocks (BS.1770-4 through pyloudnorm's own K-weighting filters, run with
their state carried across blocks, and pyloudnorm's block bounds and gating), for a signal of
at least one 400 ms gating block. It holds one gating block of filtered samples and one energy
per 100 ms step (8 bytes).
"""
from __future__ import annotations

import math

import numpy as np

from model.constants import SAMPLE_RATE
from model.loudness import (BLOCK_SECONDS, SPEECH_GATE_LUFS, Level, LoudnessNormaliser,
                            _meter, peak_dbfs)

ABSOLUTE_GATE_LUFS = -70.0  # BS.1770's absolute gate
RELATIVE_GATE_LU = 10.0     # ... and its relative gate below the ungated mean
MIN_SECONDS = BLOCK_SECONDS  # shorter signals: use model.loudness on the whole signal


class LoudnessStream:
    """Integrated loudness and peak of one signal fed in blocks (one thread)."""

    def __init__(self) -> None:
        meter = _meter(BLOCK_SECONDS)  # imports pyloudnorm and scipy (slow, ~70 MB): not before
        from scipy.signal import lfilter

        self._lfilter = lfilter
        self._block_s, self._step = meter.block_size, 1.0 - meter.overlap
        self._rate = meter.rate
        self._stages = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
        self._zi = [np.zeros(max(len(a), len(b)) - 1) for b, a, _ in self._stages]
        self._filtered, self._origin = np.zeros(0), 0   # filtered samples from _origin on
        self._energies: list[float] = []                 # mean square of each gating block
        self.n_samples, self._peak, self._nonzero = 0, 0.0, False

    def _bounds(self, j: int) -> tuple[int, int]:
        """Sample bounds of gating block j, computed as pyloudnorm computes them."""
        lower = int(self._block_s * (j * self._step) * self._rate)
        upper = int(self._block_s * (j * self._step + 1) * self._rate)
        return lower, upper

    def feed(self, samples: np.ndarray) -> None:
        """Add the next samples (n,) float32 at SAMPLE_RATE."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return
        self.n_samples += samples.size
        self._peak = max(self._peak, float(np.max(np.abs(samples))))
        self._nonzero = self._nonzero or bool(np.any(samples))
        x = samples.astype(np.float64)
        for i, (b, a, gain) in enumerate(self._stages):
            x, self._zi[i] = self._lfilter(b, a, x, zi=self._zi[i])
            x = gain * x
        self._filtered = np.concatenate([self._filtered, x])
        self._take_blocks(self._origin + self._filtered.size)

    def _take_blocks(self, available: int, count: int | None = None) -> None:
        """Energies of the next blocks ending by ``available`` (or the first ``count``)."""
        norm = 1.0 / (self._block_s * self._rate)
        while count is None or len(self._energies) < count:
            lower, upper = self._bounds(len(self._energies))
            if count is None and upper > available:
                break
            block = self._filtered[lower - self._origin:upper - self._origin]
            self._energies.append(norm * float(np.sum(np.square(block))))
        lower = self._bounds(len(self._energies))[0]
        if lower > self._origin:
            self._filtered = self._filtered[lower - self._origin:]
            self._origin = lower

    def loudness(self) -> float:
        """BS.1770-4 gated loudness in LUFS of everything fed; -inf for silence.

        Raises ValueError for a signal shorter than MIN_SECONDS (measure those whole).
        """
        seconds = self.n_samples / SAMPLE_RATE
        if seconds < MIN_SECONDS:
            raise ValueError(f"{seconds:.3f} s is shorter than one {MIN_SECONDS} s gating block")
        if not self._nonzero:
            return -math.inf
        n_blocks = int(np.round((seconds - self._block_s) / (self._block_s * self._step)) + 1)
        self._take_blocks(self.n_samples, count=n_blocks)
        value = _gated(np.asarray(self._energies[:n_blocks]))
        return value if math.isfinite(value) else -math.inf

    def level(self, normaliser: LoudnessNormaliser | None = None) -> Level:
        """The Level that ``normaliser.measure`` (or, without one, model.loudness.measure)
        gives for the whole signal."""
        loudness = self.loudness()
        gain = 0.0
        if normaliser is not None and loudness >= SPEECH_GATE_LUFS:
            gain = float(np.clip(normaliser.target_lufs - loudness, -normaliser.max_gain_db,
                                 normaliser.max_gain_db))
        peak = peak_dbfs(np.asarray([self._peak], dtype=np.float32))
        return Level(loudness_lufs=loudness, gain_db=gain, peak_dbfs=peak)


def _gated(energies: np.ndarray) -> float:
    """BS.1770-4 gating of block mean squares (K,) -> loudness in LUFS (nan/-inf: none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(energies)
        above = energies[block_lufs >= ABSOLUTE_GATE_LUFS]
        mean = np.mean(above) if above.size else math.nan
        relative = -0.691 + 10.0 * np.log10(mean) - RELATIVE_GATE_LU
        kept = energies[(block_lufs > relative) & (block_lufs > ABSOLUTE_GATE_LUFS)]
        gated = np.mean(kept) if kept.size else 0.0
        return float(-0.691 + 10.0 * np.log10(gated))
