"""BS.1770-4 loudness without scipy (model.audio.bs1770) against pyloudnorm, the measure it writes
out: the same K-weighting coefficients, filter output, block bounds and gating."""
from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import lfilter

from ser_studio.model.audio import bs1770
from ser_studio.model.audio.loudness import integrated_loudness
from ser_studio.model.constants import SAMPLE_RATE

from tests.fresh_python import fresh_python


def _speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic bursts at changing levels with pauses and a little noise, float64."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    envelope = (np.sin(2 * np.pi * 0.7 * t) > 0) * (0.05 + 0.5 * np.sin(2 * np.pi * 0.09 * t) ** 2)
    tone = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 8))
    return envelope * tone + 0.003 * rng.standard_normal(t.size)


def _scipy_k_weighted(x: np.ndarray) -> np.ndarray:
    for b, a in bs1770.K_WEIGHTING:
        x = lfilter(b, a, x)
    return x


def test_coefficients_are_pyloudnorms():
    stages = list(pyloudnorm.Meter(SAMPLE_RATE)._filters.values())
    assert len(stages) == len(bs1770.K_WEIGHTING)
    for stage, (b, a) in zip(stages, bs1770.K_WEIGHTING):
        np.testing.assert_allclose(stage.b, b, rtol=1e-15)
        np.testing.assert_allclose(stage.a, a, rtol=1e-15)
        assert stage.passband_gain == 1.0


def test_impulse_response_is_the_filters_and_its_cut_tail_negligible():
    impulse = np.zeros(4 * bs1770.IMPULSE_SAMPLES)
    impulse[0] = 1.0
    full = _scipy_k_weighted(impulse)
    np.testing.assert_allclose(bs1770.impulse_response(), full[:bs1770.IMPULSE_SAMPLES],
                               rtol=0, atol=1e-13)   # its peak is 1.44
    assert np.abs(full[bs1770.IMPULSE_SAMPLES:]).sum() < 1e-18


@pytest.mark.parametrize("block", [1, 700, 3071, 16000, 10 ** 6])
def test_streamed_filter_is_scipys_lfilter(block):
    x = _speechy(7.3)
    k = bs1770.KWeighting()
    out = np.concatenate([k(x[i:i + block]) for i in range(0, x.size, block)])
    assert out.shape == x.shape
    assert np.abs(out - _scipy_k_weighted(x)).max() < 1e-12 * np.abs(x).max()


@pytest.mark.parametrize("seconds", [0.05, 0.1, 0.39, 0.4, 0.4001, 0.55, 1.0, 3.0, 5.0, 12.34])
def test_integrated_loudness_is_pyloudnorms(seconds):
    for wav in (_speechy(seconds), _speechy(seconds, seed=1) * 1e-3,      # near the gate
                np.random.default_rng(2).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1):
        block = min(bs1770.BLOCK_SECONDS, math.floor(seconds * 100) / 100)
        expected = pyloudnorm.Meter(SAMPLE_RATE, block_size=block).integrated_loudness(wav)
        if not math.isfinite(expected):
            assert integrated_loudness(wav) == -math.inf
        else:
            assert integrated_loudness(wav) == pytest.approx(expected, abs=1e-9)


def test_the_relative_gate_drops_quiet_blocks_as_pyloudnorm_does():
    wav = np.concatenate([_speechy(3.0), 0.002 * _speechy(6.0, seed=3), _speechy(2.0)])
    gated = integrated_loudness(wav)
    assert gated == pytest.approx(pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(wav),
                                  abs=1e-9)
    ungated = -0.691 + 10 * np.log10(np.mean(_scipy_k_weighted(wav) ** 2))
    assert gated > ungated + 2.0   # the quiet middle is gated out, not averaged in


def test_measuring_imports_no_scipy():
    code = ("import sys, numpy as np; "
            "from ser_studio.model.audio.loudness import LoudnessNormaliser; "
            "from ser_studio.model.audio.loudness_stream import LoudnessStream; "
            "x = np.random.default_rng(0).standard_normal(48000).astype('float32') * 0.1; "
            "LoudnessNormaliser().measure(x); s = LoudnessStream(); s.feed(x); s.level(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    assert fresh_python(code).strip() == "[]"
