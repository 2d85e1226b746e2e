"""The ``logmel`` frontend: log-mel filterbanks computed with torch alone; needs no download
(the offline default). 25 ms Hann window, 10 ms hop -> MEL_FRAME_RATE (100) frames per second.
"""
from __future__ import annotations

import numpy as np
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import MEL_FRAME_RATE, MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE
from ser_studio.model.features.base import as_waveform, digest

# Bump when the log-mel computation changes, so cached features of the old code are not reused.
LOGMEL_VERSION = 1
LOG_FLOOR = 1e-6  # added to mel power before the log, so silence gives log(1e-6), not -inf


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale: 2595 * log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
    f_min: float = 0.0, f_max: float | None = None,
) -> torch.Tensor:
    """Triangular mel filters on the HTK mel scale, unnormalised (peak 1), as torchaudio's
    ``melscale_fbanks(..., mel_scale="htk", norm=None)`` and Kaldi build them.

    Returns (n_fft // 2 + 1, n_mels) float32: power spectrum (T, F) @ filters -> (T, n_mels).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bin_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    rising = (bin_hz[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - bin_hz[:, None]) / (upper - centre)[None, :]
    filters = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(filters.astype(np.float32))


MIN_BAND_STD = 1e-3  # a constant band is centred, not divided by zero


def band_normalise(feats: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-utterance normalisation of each band of log-mel features (T, D) -> (T, D).

    "cmvn": zero mean and unit std over the utterance's frames, per band (cepstral mean and
    variance normalisation applied to log-mel): a fixed microphone colour or gain is a
    constant offset per band and disappears; stationary noise, which squeezes a band's
    dynamic range, is stretched back. "none": unchanged.
    """
    if mode == "none":
        return feats
    if mode == "cmvn":
        return (feats - feats.mean(0)) / feats.std(0, unbiased=False).clamp_min(MIN_BAND_STD)
    raise ValueError(f"band_norm {mode!r} not known")


class LogMelFrontend:
    """Log-mel filterbank features: (N,) at 16 kHz -> (T, n_mels) float32, T = 1 + N // 160.

    Power spectrum of a centred STFT (Hann window of N_FFT = 400 samples = 25 ms, hop
    MEL_HOP_LENGTH = 160 = 10 ms, zero padding at the edges), HTK-scale triangular filters from
    0 Hz to Nyquist, then log(mel + 1e-6). Deterministic; no download.
    """

    def __init__(self, cfg: FrontendConfig | None = None):
        self.config = cfg or FrontendConfig(name="logmel")
        if self.config.name != "logmel":
            raise ValueError(f"LogMelFrontend needs a logmel config, got {self.config.name!r}")
        self.dim = self.config.n_mels
        self.layers = 1
        self.frame_rate = float(MEL_FRAME_RATE)
        self.frame_span = (-(N_FFT // 2), N_FFT // 2)  # centred: the 25 ms around 160 m
        self._window = torch.hann_window(N_FFT)
        self._filters = mel_filterbank(self.dim)

    def fingerprint(self) -> str:
        """Digest of everything the features depend on (see class docstring)."""
        payload = {
            "name": "logmel", "version": LOGMEL_VERSION, "n_mels": self.dim,
            "sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": MEL_HOP_LENGTH,
            "mel_scale": "htk", "floor": LOG_FLOOR,
        }
        if self.config.band_norm != "none":
            payload["band_norm"] = self.config.band_norm
        return digest(payload)

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) float32 at 16 kHz -> (T, n_mels) float32 log-mel energies, T = 1 + N // 160."""
        signal = as_waveform(wav)
        with torch.inference_mode():
            spec = torch.stft(
                signal, n_fft=N_FFT, hop_length=MEL_HOP_LENGTH, win_length=N_FFT,
                window=self._window, center=True, pad_mode="constant", return_complex=True,
            )  # (F, T)
            power = spec.real.square() + spec.imag.square()
            mel = power.transpose(0, 1) @ self._filters  # (T, n_mels)
            feats = band_normalise(torch.log(mel + LOG_FLOOR), self.config.band_norm)
        # An inference-mode tensor cannot enter autograd later (training); a copy made outside
        # the context is an ordinary tensor.
        return feats.clone()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """Per-item features; signals of different lengths gain nothing from batching here."""
        return [self(wav) for wav in wavs]

