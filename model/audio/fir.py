"""Causal filters applied as FIR filters by FFT convolution, fed whole or in blocks, without
scipy (importing scipy.signal weighs on the memory and start-up of a process that needs nothing
else from it: model.audio.bs1770).

An IIR filter (a cascade of biquads) is turned into its impulse response once, by the
biquads' own recurrence from a zero state, cut where the rest of it is negligible; a stream
then convolves each block with it by FFT, carrying the previous ``taps - 1`` input samples.
The output equals ``scipy.signal.sosfilt``'s to ~1e-12 of the signal's peak (tested there).
"""
from __future__ import annotations

import functools

import numpy as np

# odd parts of the FFT sizes tried: 3^i 5^j, sizes numpy's FFT is fast at
_ODD_PARTS = sorted(3 ** i * 5 ** j for i in range(7) for j in range(5))


@functools.lru_cache(maxsize=64)
def fft_size(n: int) -> int:
    """The smallest 2^k 3^i 5^j >= n with i, j in _ODD_PARTS' range."""
    sizes = []
    for odd in _ODD_PARTS:
        size = odd
        while size < n:
            size *= 2
        sizes.append(size)
    return min(sizes)


def biquad(b: tuple, a: tuple, x: list[float]) -> list[float]:
    """Direct-form recurrence of one biquad (a0 = 1) from a zero state."""
    y: list[float] = []
    x1 = x2 = y1 = y2 = 0.0
    for value in x:
        out = b[0] * value + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, value, y1, out
        y.append(out)
    return y


class FirResponse:
    """The impulse response (taps,) float64 of a cascade of biquads ``((b, a), ...)``, and
    its spectra at the FFT sizes used (bounded: clips of many lengths would otherwise keep
    one per size)."""

    def __init__(self, sections: tuple, taps: int) -> None:
        signal = [1.0] + [0.0] * (taps - 1)
        for b, a in sections:
            signal = biquad(b, a, signal)
        self.impulse = np.asarray(signal)
        self.taps = taps
        self.spectrum = functools.lru_cache(maxsize=8)(self._spectrum)

    def _spectrum(self, size: int) -> np.ndarray:
        """rfft of the impulse response at FFT size ``size``: (size // 2 + 1,) complex128."""
        return np.fft.rfft(self.impulse, size)


class FirStream:
    """One FirResponse over a stream fed in blocks of any size (one thread).

    ``steady=False`` starts from a zero state (as ``lfilter`` does); ``steady=True`` starts as
    if the first sample had always been there, so a constant offset gives no start transient
    (for a high-pass, a DC offset then leaves nothing at all).
    """

    def __init__(self, response: FirResponse, *, steady: bool = False) -> None:
        self.response = response
        self._steady = steady
        self._history: np.ndarray | None = None if steady else np.zeros(response.taps - 1)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Filtered (n,) float64 of the next samples (n,)."""
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        if samples.size == 0:
            return samples
        if self._history is None:
            self._history = np.full(self.response.taps - 1, samples[0])
        extended = np.concatenate([self._history, samples])
        size = fft_size(extended.size)
        out = np.fft.irfft(np.fft.rfft(extended, size) * self.response.spectrum(size), size)
        self._history = extended[-(self.response.taps - 1):]
        return out[self.response.taps - 1:extended.size]
