"""The input high-pass (model.audio.highpass, model.audio.fir): scipy's Butterworth filter to
~1e-12, in blocks as whole, no start transient from an offset; in the frontend, a DC offset no
longer moves the features, while a checkpoint from before the high-pass keeps its own front end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
import torch

from ser_studio.model.audio import highpass
from ser_studio.model.config.schema import FrontendConfig, ModelConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features.registry import build_frontend
from ser_studio.model.networks.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network


def signal(seconds: float = 3.0, offset: float = 0.2, seed: int = 0) -> np.ndarray:
    """Noise, a 30 Hz rumble, a 300 Hz tone and a constant offset: (N,) float64."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 30 * t)
            + 0.1 * np.sin(2 * np.pi * 300 * t) + offset)


def test_equals_scipys_butterworth_from_the_first_samples_steady_state():
    x = signal()
    sos = scipy.signal.butter(4, 60.0, "highpass", fs=SAMPLE_RATE, output="sos")
    # scipy from a zero state on x - x[0] is the filter on x from x[0]'s steady state
    expected = scipy.signal.sosfilt(sos, x - x[0])
    got = highpass.stream(60.0)(x)
    assert np.abs(got - expected).max() < 1e-12 * np.abs(x).max() * 100
    blocks = np.array_split(x, [1, 500, 511, 16000, 16001, 40000])
    stream = highpass.stream(60.0)
    np.testing.assert_allclose(np.concatenate([stream(b) for b in blocks]), expected,
                               atol=1e-12)


@pytest.mark.parametrize("hz, low, high", [(20, -39, -37), (40, -15, -13.5),
                                           (100, -0.2, 0.0), (1000, -1e-3, 1e-3)])
def test_response_of_sines(hz, low, high):
    """Gain in dB of a steady sine after the filter: rumble out, speech band untouched."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    out = highpass.highpass(np.sin(2 * np.pi * hz * t))[SAMPLE_RATE:]
    gain = 20 * np.log10(np.sqrt(2 * np.mean(np.square(out.astype(np.float64)))))
    assert low <= gain <= high


def test_a_constant_offset_leaves_nothing_and_the_cut_off_is_checked():
    assert np.abs(highpass.highpass(np.full(20000, 0.5))).max() < 1e-9
    assert highpass.highpass(np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="cut-off"):
        highpass.response(5.0)
    with pytest.raises(ValueError, match="highpass_hz"):
        FrontendConfig(highpass_hz=5.0)


@pytest.fixture(scope="module")
def voiced() -> np.ndarray:
    """2.5 s of a voiced, vowel-like signal at 16 kHz with an envelope: (N,) float32."""
    t = np.arange(int(2.5 * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(130 * (1 + 0.1 * np.sin(2 * np.pi * 0.8 * t))) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 20)) * np.clip(np.sin(3 * np.pi * t), 0, 1)
    return (0.08 * wav).astype(np.float32)


@pytest.mark.parametrize("name", ["logmel", "speech_embedding+ge2e"])
def test_a_dc_offset_does_not_move_the_features_of_a_model_with_the_high_pass(voiced, name):
    with_filter = build_frontend(FrontendConfig(name=name))
    without = build_frontend(FrontendConfig(name=name, highpass_hz=0.0))
    for offset in (0.05, 0.3):
        shifted = voiced + np.float32(offset)
        base = with_filter(voiced)
        moved = float((with_filter(shifted) - base).abs().mean() / base.abs().mean())
        assert moved < 0.01, offset
        plain = without(voiced)
        moved_plain = float((without(shifted) - plain).abs().mean() / plain.abs().mean())
        assert moved_plain > 4 * max(moved, 0.005), offset  # what the offset did before
    assert with_filter.fingerprint() != without.fingerprint()
    # the input's own peak is reported (an offset that clips is still told)
    assert with_filter.level(voiced + np.float32(0.9)).peak_dbfs > -0.5


def test_a_checkpoint_from_before_the_high_pass_keeps_its_front_end(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=2, hidden=8, frame_pool=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg, train=None,
                      labels=["a", "b"], norm_mean=[-8.0] * 80, norm_std=[3.0] * 80,
                      state_dict=build_network(cfg).state_dict())
    weights = save_checkpoint(ckpt, tmp_path / "new.safetensors")
    assert load_checkpoint(weights).frontend.highpass_hz == highpass.DEFAULT_CUTOFF_HZ
    sidecar = weights.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    del doc["frontend"]["highpass_hz"]
    sidecar.write_text(json.dumps(doc))
    old = load_checkpoint(weights)
    assert old.frontend.highpass_hz == 0.0 and old.frontend.loudness == "bs1770"
    assert build_frontend(old.frontend).fingerprint() == build_frontend(
        FrontendConfig(name="logmel", highpass_hz=0.0)).fingerprint()
