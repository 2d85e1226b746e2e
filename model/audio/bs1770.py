"""ITU-R BS.1770-4 gated loudness of a mono signal at SAMPLE_RATE, fed whole or in blocks,
without scipy.

The measure is pyloudnorm's ``Meter(SAMPLE_RATE, block_size=...).integrated_loudness``:
K-weighting, gating blocks of ``block_seconds`` (400 ms) every quarter block, an absolute gate
at -70 LUFS and a relative gate 10 LU below the mean of the blocks above it, with pyloudnorm's
block bounds and block count. tests/model/test_bs1770.py runs pyloudnorm beside it: the
values agree to ~1e-12 LU. It is written out here because pyloudnorm filters through
scipy.signal, whose import adds resident memory and start-up time to every command, in a
process that needs nothing else from scipy (figures: bench/results/memory-2026-12-06/README.md).

K-weighting: pyloudnorm's two biquads at 16 kHz (RBJ's formulas: a +4 dB high shelf at
1500 Hz, Q 1/sqrt(2), then the RLB high-pass at 38 Hz, Q 0.5), their coefficients written out
below. The cascade is applied as an FIR filter (model.audio.fir): its impulse response, computed
once from the coefficients by the filters' own recurrence and cut at IMPULSE_SAMPLES (the rest
of it sums to 5e-19 of its first sample), convolved by FFT with the previous IMPULSE_SAMPLES - 1
input samples carried from block to block. The output equals ``scipy.signal.lfilter``'s from a
zero state to ~1e-13 of the signal's peak.
"""
from __future__ import annotations

import math

import numpy as np

from ser_studio.model.audio.fir import FirResponse, FirStream
from ser_studio.model.constants import SAMPLE_RATE

BLOCK_SECONDS = 0.4          # BS.1770 gating block
OVERLAP = 0.75               # ... blocks overlap by three quarters
ABSOLUTE_GATE_LUFS = -70.0   # BS.1770's absolute gate
RELATIVE_GATE_LU = 10.0      # ... and its relative gate below the ungated mean
IMPULSE_SAMPLES = 3072       # K-weighting impulse response length (5e-19 of it left out)

# (b, a) of each K-weighting stage at 16 kHz (SAMPLE_RATE), as pyloudnorm designs them (a0 = 1)
K_WEIGHTING = (
    ((1.444233908713844, -1.839542987741787, 0.685432300820589),      # high shelf
     (1.0, -1.1071392365035588, 0.3972624582962044)),
    ((0.9852425301500196, -1.9704850603000392, 0.9852425301500196),   # RLB high-pass
     (1.0, -1.9703753578723906, 0.9705947627276879)),
)


K_RESPONSE = FirResponse(K_WEIGHTING, IMPULSE_SAMPLES)


def impulse_response() -> np.ndarray:
    """The K-weighting cascade's impulse response (IMPULSE_SAMPLES,) float64."""
    return K_RESPONSE.impulse


class KWeighting(FirStream):
    """The K-weighting filter over a stream fed in blocks of any size, from a zero state."""

    def __init__(self) -> None:
        super().__init__(K_RESPONSE)


class GatedLoudness:
    """BS.1770-4 gated loudness of one signal fed in blocks (one thread). Holds one gating
    block of filtered samples and one energy (8 bytes) per step of a quarter block."""

    def __init__(self, block_seconds: float = BLOCK_SECONDS) -> None:
        self._block_s, self._step = float(block_seconds), 1.0 - OVERLAP
        self._filter = KWeighting()
        self._filtered, self._origin = np.zeros(0), 0   # filtered samples from _origin on
        self._energies: list[float] = []                 # mean square of each gating block
        self.n_samples = 0

    def _bounds(self, j: int) -> tuple[int, int]:
        """Sample bounds of gating block j, computed as pyloudnorm computes them."""
        lower = int(self._block_s * (j * self._step) * SAMPLE_RATE)
        upper = int(self._block_s * (j * self._step + 1) * SAMPLE_RATE)
        return lower, upper

    def feed(self, samples: np.ndarray) -> None:
        """Add the next samples (n,) at SAMPLE_RATE."""
        filtered = self._filter(samples)
        self.n_samples += filtered.size
        self._filtered = np.concatenate([self._filtered, filtered])
        self._take_blocks(self._origin + self._filtered.size)

    def _take_blocks(self, available: int, count: int | None = None) -> None:
        """Energies of the next blocks ending by ``available`` (or the first ``count``)."""
        norm = 1.0 / (self._block_s * SAMPLE_RATE)
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
        """Gated loudness in LUFS of everything fed (-inf when no block passes the gates).

        Raises ValueError for a signal shorter than one gating block.
        """
        seconds = self.n_samples / SAMPLE_RATE
        if seconds < self._block_s:
            raise ValueError(f"{seconds:.3f} s is shorter than one {self._block_s} s gating "
                             "block")
        n_blocks = int(np.round((seconds - self._block_s) / (self._block_s * self._step)) + 1)
        self._take_blocks(self.n_samples, count=n_blocks)
        value = _gated(np.asarray(self._energies[:n_blocks]))
        return value if math.isfinite(value) else -math.inf


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
