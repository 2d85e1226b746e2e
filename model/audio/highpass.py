"""The input high-pass: removes a microphone's DC offset and rumble below speech, before any
feature is computed and before the speech detector listens.

Cheap USB and laptop microphones add a constant offset (0.01-0.5 of full scale) and handling
or ventilation rumble. Features built on spectra see an offset as a huge low band and, through
the loudness normaliser's gain, an offset can move the class probabilities as far as another
emotion. A 4th-order Butterworth high-pass at ``cutoff_hz`` (60 Hz by default: below the
lowest voice fundamentals, ~70 Hz, yet 14 dB down at 40 Hz and 38 dB at 20 Hz) removes both;
it is two biquads (RBJ's cookbook, Q of the Butterworth pair), applied by model.audio.fir.

A signal is filtered from a steady state (model.audio.fir.FirStream ``steady``): as if its first
sample had always been there, so a constant offset leaves no start transient, and a window
cut from a stream is filtered the same wherever its offset came from.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ser_studio.model.audio.fir import FirResponse, FirStream
from ser_studio.model.constants import SAMPLE_RATE

DEFAULT_CUTOFF_HZ = 60.0
# the Butterworth pair's Q values for 4th order: 1 / (2 cos(pi/8)), 1 / (2 cos(3 pi/8))
BUTTERWORTH_Q = (0.5411961001461970, 1.3065629648763766)
# the response decays as 0.991^n at 60 Hz (the Q 1.31 pole): 1e-13 of it is left after 3300
# samples; lower cut-offs ring longer, so the length scales with 60 / cutoff
TAPS_AT_60_HZ = 4096
MIN_CUTOFF_HZ, MAX_CUTOFF_HZ = 20.0, 200.0


def _section(cutoff_hz: float, q: float) -> tuple[tuple, tuple]:
    """(b, a) of RBJ's high-pass biquad at SAMPLE_RATE, normalised to a0 = 1."""
    w0 = 2.0 * math.pi * cutoff_hz / SAMPLE_RATE
    alpha = math.sin(w0) / (2.0 * q)
    cos_w0 = math.cos(w0)
    a0 = 1.0 + alpha
    b = ((1.0 + cos_w0) / 2.0 / a0, -(1.0 + cos_w0) / a0, (1.0 + cos_w0) / 2.0 / a0)
    a = (1.0, -2.0 * cos_w0 / a0, (1.0 - alpha) / a0)
    return b, a


@functools.lru_cache(maxsize=4)
def response(cutoff_hz: float = DEFAULT_CUTOFF_HZ) -> FirResponse:
    """The 4th-order Butterworth high-pass at ``cutoff_hz`` as an FIR response."""
    if not MIN_CUTOFF_HZ <= cutoff_hz <= MAX_CUTOFF_HZ:
        raise ValueError(f"high-pass cut-off must be in [{MIN_CUTOFF_HZ:g}, "
                         f"{MAX_CUTOFF_HZ:g}] Hz, got {cutoff_hz}")
    taps = int(math.ceil(TAPS_AT_60_HZ * max(1.0, 60.0 / cutoff_hz)))
    return FirResponse(tuple(_section(cutoff_hz, q) for q in BUTTERWORTH_Q), taps)


def stream(cutoff_hz: float = DEFAULT_CUTOFF_HZ) -> FirStream:
    """A high-pass over one stream fed in blocks, from the steady state of its first sample."""
    return FirStream(response(cutoff_hz), steady=True)


def highpass(wav: np.ndarray, cutoff_hz: float = DEFAULT_CUTOFF_HZ) -> np.ndarray:
    """``wav`` (N,) high-passed at ``cutoff_hz`` -> (N,) float32 (empty stays empty)."""
    wav = np.asarray(wav).reshape(-1)
    if wav.size == 0:
        return wav.astype(np.float32)
    return stream(cutoff_hz)(wav).astype(np.float32)
