"""The frontend contract every feature frontend keeps, and what they all share.

A frontend turns audio (N,) float32 at SAMPLE_RATE into feature frames (T, D), or (L, T, D) for
an encoder's layer stack (``Frontend``). This module holds the contract and the pieces every
concrete frontend and every caller needs: ``FrontendUnavailable`` (encoder weights that cannot
be had), ``digest`` (fingerprints), ``as_waveform`` (input checks), the input stage
(``NormalisedFrontend``: high-pass, then the loudness normaliser; ``with_input_stage``), the
view of a built frontend as its parts (``frontend_parts``, ``frame_span``) and
``CountingFrontend``. It imports no concrete frontend: those (``logmel``, ``speech_embedding``,
``ge2e``, ``whisper``, ``hubert``, ``combined``) import it, and ``model.features.registry``
alone builds them from a FrontendConfig.

A frontend's ``fingerprint()`` names everything its output depends on; the feature cache keys its
entries by it, so changing the frontend, its settings or the encoder weights never reuses stale
features.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ser_studio.model.audio.highpass import highpass
from ser_studio.model.audio.loudness import (SPEECH_GATE_LUFS, Level, LoudnessNormaliser,
                                             measure, peak_dbfs)
from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

# Bump when the loudness normaliser's measurement changes.
LOUDNESS_VERSION = 1


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


def with_input_stage(inner: Frontend) -> Frontend:
    """``inner`` behind its config's input stage (high-pass, loudness normaliser), or as it is
    when the config asks for neither (checkpoints older than both)."""
    cfg = inner.config
    if cfg.loudness == "none" and not cfg.highpass_hz:
        return inner
    return NormalisedFrontend(inner)



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
    (model.features.combined), so it spans the union of theirs. A frontend that does not say is
    taken to cover its own step."""
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
    (model.audio.highpass, ``highpass_hz`` > 0) and then the loudness normaliser
    (model.audio.loudness,
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
        if not self.highpass_hz:  # nothing filtered: its peak is the input's
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

