"""Loudness normalisation in front of every frontend: the speech in a signal is brought to a
fixed loudness before features are computed, so a model does not learn (or get fooled by) the
recording level of one studio.

Measurement: ITU-R BS.1770-4 integrated loudness (model.audio.bs1770: pyloudnorm's measure, without
scipy): K-weighted mean square over 400 ms blocks with 75 % overlap, gated absolutely at
-70 LUFS and relatively at 10 LU below the ungated mean. The gates keep pauses and silence out
of the measure, so a clip with long silences is not boosted for them. Clips shorter than one
block are measured with one block as long as the clip.

Gain: ``target_lufs - measured``, bounded to +-``max_gain_db``. A signal whose loudness is below
``SPEECH_GATE_LUFS`` (no block above BS.1770's absolute gate: digital silence, faint hiss)
holds no speech-level sound and is left untouched, so silence and faint noise are never blown up into
something that looks like speech. The normaliser applies one gain to the whole signal; it does
not compress, so dynamics within the clip are kept. Peaks may exceed full scale after a boost:
features are computed on float samples, so nothing clips.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ser_studio.model.audio.bs1770 import BLOCK_SECONDS, GatedLoudness
from ser_studio.model.constants import SAMPLE_RATE

LOUDNESS_MODES = ("none", "bs1770")
MIN_BLOCK_SECONDS = 0.05  # shorter signals are left as they are
SPEECH_GATE_LUFS = -70.0  # BS.1770's absolute gate: quieter is not speech-level sound
QUIET_LUFS = -50.0  # speech quieter than this is mostly the microphone's own noise
CLIP_PEAK_DBFS = -0.1  # a sample this close to full scale: the input is clipping


@dataclass(frozen=True)
class Level:
    """One measurement: loudness_lufs (-inf for silence), the gain in dB that the normaliser
    applies (0 when it leaves the signal alone), and the sample peak in dBFS (-inf for zeros)."""

    loudness_lufs: float
    gain_db: float
    peak_dbfs: float


def integrated_loudness(wav: np.ndarray) -> float:
    """BS.1770-4 gated loudness in LUFS of a mono (N,) float signal at SAMPLE_RATE.

    -inf for a signal shorter than MIN_BLOCK_SECONDS or with no block above -70 LUFS.
    """
    wav = np.asarray(wav, dtype=np.float64)
    seconds = wav.shape[0] / SAMPLE_RATE
    if seconds < MIN_BLOCK_SECONDS or not np.any(wav):
        return -math.inf
    meter = GatedLoudness(min(BLOCK_SECONDS, math.floor(seconds * 100) / 100))
    meter.feed(wav)
    return meter.loudness()


def peak_dbfs(wav: np.ndarray) -> float:
    """Sample peak in dBFS (-inf for an all-zero or empty signal)."""
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


class LoudnessNormaliser:
    """Brings a signal's speech to ``target_lufs`` with a gain bounded by ``max_gain_db``."""

    def __init__(self, target_lufs: float = -23.0, max_gain_db: float = 40.0) -> None:
        self.target_lufs = float(target_lufs)
        self.max_gain_db = float(max_gain_db)

    def measure(self, wav: np.ndarray) -> Level:
        """Loudness, the gain the normaliser would apply, and the peak of ``wav`` (N,)."""
        loudness = integrated_loudness(wav)
        gain = 0.0
        if loudness >= SPEECH_GATE_LUFS:
            gain = float(np.clip(self.target_lufs - loudness, -self.max_gain_db,
                                 self.max_gain_db))
        return Level(loudness_lufs=loudness, gain_db=gain, peak_dbfs=peak_dbfs(wav))

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(N,) float32 -> (N,) float32 with the measured gain applied."""
        return self.apply(wav, self.measure(wav))

    @staticmethod
    def apply(wav: np.ndarray, level: Level) -> np.ndarray:
        """(N,) float32 with ``level.gain_db`` applied (a measurement of this same signal)."""
        wav = np.asarray(wav, dtype=np.float32)
        if level.gain_db == 0.0:
            return wav
        return (wav * np.float32(10.0 ** (level.gain_db / 20.0))).astype(np.float32)


def measure(wav: np.ndarray) -> Level:
    """Loudness and peak of ``wav`` (N,) with no normaliser (gain 0)."""
    return Level(loudness_lufs=integrated_loudness(wav), gain_db=0.0, peak_dbfs=peak_dbfs(wav))


def level_warning(level: Level) -> str:
    """What a user should hear about the input level ("" when it is fine): clipping, or speech
    too quiet to be told from the microphone's noise, each with the measured value."""
    if level.peak_dbfs >= CLIP_PEAK_DBFS:
        return f"input is clipping (peak {level.peak_dbfs:.1f} dBFS): lower the input gain"
    if level.peak_dbfs == -math.inf:
        return "no signal: the input is digital silence"
    if level.loudness_lufs < QUIET_LUFS:
        measured = ("below -70" if level.loudness_lufs == -math.inf
                    else f"{level.loudness_lufs:.0f}")
        return (f"input is very quiet ({measured} LUFS): raise the input gain or move closer "
                "to the microphone")
    return ""
