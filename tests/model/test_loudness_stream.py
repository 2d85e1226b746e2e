"""The streamed level of a long signal is the level of the whole signal."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ser_studio.model.audio.loudness import LoudnessNormaliser, integrated_loudness, measure
from ser_studio.model.audio.loudness_stream import LoudnessStream
from ser_studio.model.constants import SAMPLE_RATE


def _speechy(seconds: float) -> np.ndarray:
    """Bursts of a harmonic tone at changing levels with pauses and a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = (np.sin(2 * np.pi * 0.7 * t) > 0) * (0.1 + 0.4 * (np.sin(2 * np.pi * 0.05 * t) ** 2))
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    return (envelope * tone + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def _streamed(wav: np.ndarray, block: int) -> LoudnessStream:
    stream = LoudnessStream()
    for i in range(0, wav.size, block):
        stream.feed(wav[i:i + block])
    return stream


@pytest.mark.parametrize("seconds", [0.4, 0.4001, 0.55, 3.0, 37.3])
@pytest.mark.parametrize("block", [333, 16000, 10 ** 6])
def test_streamed_loudness_is_integrated_loudness(seconds, block):
    wav = _speechy(seconds)
    assert _streamed(wav, block).loudness() == pytest.approx(integrated_loudness(wav),
                                                             abs=1e-9)


def _same_level(a, b) -> None:
    """Levels equal but for the FFT's rounding, which depends on the block sizes (~1e-14 LU)."""
    assert a.loudness_lufs == pytest.approx(b.loudness_lufs, abs=1e-9)
    assert a.gain_db == pytest.approx(b.gain_db, abs=1e-9) and a.peak_dbfs == b.peak_dbfs


def test_level_with_and_without_normaliser():
    wav = _speechy(20.0)
    normaliser = LoudnessNormaliser(-23.0, 40.0)
    stream = _streamed(wav, 5000)
    _same_level(stream.level(normaliser), normaliser.measure(wav))
    _same_level(stream.level(), measure(wav))
    assert stream.level().gain_db == 0.0 and stream.level(normaliser).gain_db != 0.0
    quiet = (wav * 1e-3).astype(np.float32)                 # a gain beyond max_gain_db: clipped
    clipped = _streamed(quiet, 5000).level(LoudnessNormaliser(-23.0, 10.0))
    _same_level(clipped, LoudnessNormaliser(-23.0, 10.0).measure(quiet))
    assert clipped.gain_db == 10.0


def test_silence_and_too_short():
    silent = _streamed(np.zeros(3 * SAMPLE_RATE, np.float32), 1000)
    assert silent.loudness() == -math.inf
    assert silent.level(LoudnessNormaliser()).gain_db == 0.0
    assert silent.level().peak_dbfs == -math.inf
    with pytest.raises(ValueError, match="shorter than one"):
        _streamed(np.ones(1000, np.float32), 100).loudness()
