"""The GE2E frontend from the resemblyzer 0.1.4 wheel's pretrained.pt: the pinned weights are
the ones loaded, shapes and rate, and clear errors for an altered or missing file."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features import ge2e
from ser_studio.model.features import wheel_files
from ser_studio.model.features.base import FrontendUnavailable, NormalisedFrontend
from ser_studio.model.features.registry import build_frontend

from tests.fresh_python import fresh_python

CFG = FrontendConfig(name="ge2e")


@pytest.fixture(scope="module")
def frontend():
    return ge2e.GE2EFrontend(CFG)


def tone(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))
    return (0.1 * wav * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_the_wheels_weights_are_loaded(frontend):
    path = wheel_files.checked_file(ge2e.PACKAGE, ge2e.WEIGHTS, ge2e.WEIGHTS_SHA256,
                                    ge2e.PACKAGE_PIN)
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    assert torch.equal(frontend.lstm.weight_ih_l0, state["lstm.weight_ih_l0"])
    assert torch.equal(frontend.lstm.bias_hh_l2, state["lstm.bias_hh_l2"])
    assert not any(p.requires_grad for p in frontend.lstm.parameters())


def test_shapes_rate_and_determinism(frontend):
    assert (frontend.dim, frontend.layers, frontend.frame_rate) == (256, 1, 100.0)
    wav = tone(1.5, 140.0)
    feats = frontend(wav)
    assert feats.shape == (1 + wav.size // 160, 256) and feats.dtype == torch.float32
    assert torch.equal(feats, frontend(wav)) and not feats.requires_grad
    assert not torch.allclose(feats, frontend(tone(1.5, 220.0)), atol=1e-3)


def test_behind_the_normaliser_the_level_does_not_matter():
    built = build_frontend(CFG)
    assert isinstance(built, NormalisedFrontend)
    wav = tone(1.0, 180.0)
    assert torch.allclose(built(wav), built(0.05 * wav), atol=1e-4)


def test_an_altered_weights_file_is_refused(tmp_path, monkeypatch):
    package = tmp_path / "resemblyzer"
    package.mkdir()
    source = wheel_files.package_folder(ge2e.PACKAGE, ge2e.PACKAGE_PIN) / ge2e.WEIGHTS
    shutil.copy(source, package / ge2e.WEIGHTS)
    with open(package / ge2e.WEIGHTS, "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(wheel_files, "package_folder", lambda name, pin: package)
    with pytest.raises(FrontendUnavailable, match="altered.*resemblyzer==0.1.4"):
        ge2e.GE2EFrontend(CFG)
    (package / ge2e.WEIGHTS).unlink()
    with pytest.raises(FrontendUnavailable, match="missing.*resemblyzer==0.1.4"):
        ge2e.GE2EFrontend(CFG)


@pytest.mark.filterwarnings("ignore:n_fft=400 is too large")  # librosa, on the short inputs
@pytest.mark.parametrize("n", [1, 100, 160, 401, 16_000, 48_077])
def test_mel_frames_are_librosas_as_resemblyzer_computed_them(n):
    librosa = pytest.importorskip("librosa")  # installed with resemblyzer; the reference only
    wav = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    want = librosa.feature.melspectrogram(y=wav, sr=SAMPLE_RATE, n_fft=400, hop_length=160,
                                          n_mels=40).T
    got = ge2e.ge2e_mel(wav)
    assert got.shape == want.shape == (1 + n // 160, 40) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
    assert np.allclose(ge2e.mel_filters(ge2e.N_MELS), librosa.filters.mel(sr=SAMPLE_RATE, n_fft=400,
                                                               n_mels=40), atol=1e-8)


def test_the_frontend_runs_without_librosa():
    code = ("import sys, numpy as np; from ser_studio.model.features.ge2e import GE2EFrontend; "
            "GE2EFrontend()(np.zeros(8000, np.float32) + 0.01); "
            "print('librosa' in sys.modules, 'numba' in sys.modules)")
    assert fresh_python(code).split() == ["False", "False"]
