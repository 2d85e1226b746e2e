"""The level of a long signal fed block by block: model.audio.loudness's measurement without the
whole signal in memory.

:class:`LoudnessStream` gives what ``model.audio.loudness.integrated_loudness`` and ``peak_dbfs``
give for the concatenated blocks (model.audio.bs1770: the K-weighting carried across blocks,
pyloudnorm's block bounds and gating), for a signal of at least one 400 ms gating block. It holds
one gating block of filtered samples, the filter's last 3071 inputs and one energy per 100 ms step
(8 bytes). A model with an input high-pass (model.audio.highpass) measures its loudness after it,
as model.features.base.NormalisedFrontend does: ``highpass_hz`` runs the same filter over the
stream (the peak stays the input's own).
"""
from __future__ import annotations

import math

import numpy as np

from ser_studio.model.audio import highpass
from ser_studio.model.audio.bs1770 import BLOCK_SECONDS, GatedLoudness
from ser_studio.model.audio.loudness import SPEECH_GATE_LUFS, Level, LoudnessNormaliser, peak_dbfs

MIN_SECONDS = BLOCK_SECONDS  # shorter signals: use model.audio.loudness on the whole signal


class LoudnessStream:
    """Integrated loudness and peak of one signal fed in blocks (one thread)."""

    def __init__(self, highpass_hz: float = 0.0) -> None:
        self._gated = GatedLoudness(BLOCK_SECONDS)
        self._peak = 0.0  # largest |sample| fed
        self._highpass = highpass.stream(highpass_hz) if highpass_hz else None

    @property
    def n_samples(self) -> int:
        """Samples fed so far."""
        return self._gated.n_samples

    def feed(self, samples: np.ndarray) -> None:
        """Add the next samples (n,) float32 at SAMPLE_RATE."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return
        self._peak = max(self._peak, float(np.max(np.abs(samples))))
        if self._highpass is not None:
            samples = self._highpass(samples).astype(np.float32)
        self._gated.feed(samples)

    def loudness(self) -> float:
        """BS.1770-4 gated loudness in LUFS of everything fed; -inf for silence.

        Raises ValueError for a signal shorter than MIN_SECONDS (measure those whole).
        """
        loudness = self._gated.loudness()
        return loudness if self._peak > 0 else -math.inf

    def level(self, normaliser: LoudnessNormaliser | None = None) -> Level:
        """The Level that ``normaliser.measure`` (or, without one, model.audio.loudness.measure)
        gives for the whole signal."""
        loudness = self.loudness()
        gain = 0.0
        if normaliser is not None and loudness >= SPEECH_GATE_LUFS:
            gain = float(np.clip(normaliser.target_lufs - loudness, -normaliser.max_gain_db,
                                 normaliser.max_gain_db))
        peak = peak_dbfs(np.asarray([self._peak], dtype=np.float32))
        return Level(loudness_lufs=loudness, gain_db=gain, peak_dbfs=peak)
