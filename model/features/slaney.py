"""Slaney's mel scale and filters (librosa's defaults), in numpy alone: the mel bands that
resemblyzer's GE2E encoder and openai-whisper computed with librosa, here without librosa and
the numba it imports. A helper of frontends, not one: imports nothing of the project but its
constants.
"""
from __future__ import annotations

import numpy as np

from ser_studio.model.constants import N_FFT, SAMPLE_RATE


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)),
                    (200.0 / 3) * mel)


def mel_filters(n_mels: int) -> np.ndarray:
    """(n_mels, 201) Slaney-normalised triangular mel filters over 0..8 kHz for a 400-point FFT
    at 16 kHz: ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)``, which resemblyzer
    used with 40 bands (model.features.ge2e) and openai-whisper with 80
    (model.features.whisper_encoder); tests/model/test_ge2e.py and test_whisper_encoder.py
    compare them."""
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising, falling = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)
