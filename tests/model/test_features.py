"""Log-mel frontend, mel filterbank, frontend specs and the Frontend interface."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import (DEFAULT_ENCODER, MEL_FRAME_RATE, MEL_HOP_LENGTH, N_MELS,
                                        SAMPLE_RATE)
from ser_studio.model.features.base import Frontend
from ser_studio.model.features.logmel import (LOG_FLOOR, LogMelFrontend, hz_to_mel, mel_filterbank,
                                              mel_to_hz)
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec


def tone(freq_hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def band_centres_hz(n_mels: int) -> np.ndarray:
    return mel_to_hz(np.linspace(0, hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))[1:-1]


def test_logmel_shape_dtype_and_frame_rate():
    frontend = build_frontend(FrontendConfig(name="logmel"))
    assert isinstance(frontend, Frontend)
    assert (frontend.dim, frontend.layers, frontend.frame_rate) == (N_MELS, 1, MEL_FRAME_RATE)
    for n in (SAMPLE_RATE, 12_345, 1):
        feats = frontend(np.random.default_rng(0).standard_normal(n).astype(np.float32))
        assert feats.shape == (1 + n // MEL_HOP_LENGTH, N_MELS)
        assert feats.dtype == torch.float32
    three_seconds = frontend(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    assert three_seconds.shape[0] == 3 * int(MEL_FRAME_RATE) + 1


def test_logmel_is_deterministic_and_batch_matches():
    wav = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    a, b = LogMelFrontend(), LogMelFrontend()
    assert torch.equal(a(wav), b(wav))
    assert a.fingerprint() == b.fingerprint()
    batch = a.batch([wav, wav[:4000]])
    assert torch.equal(batch[0], a(wav)) and torch.equal(batch[1], a(wav[:4000]))


def test_tone_lights_the_band_of_its_frequency():
    frontend = LogMelFrontend()
    centres = band_centres_hz(N_MELS)
    for freq in (300.0, 1000.0, 4000.0):
        energy = frontend(tone(freq))[10:-10].mean(dim=0)
        peak = int(torch.argmax(energy))
        assert abs(centres[peak] - freq) < 0.1 * freq + 60, (freq, centres[peak])


def test_log_scale_floor_and_loudness():
    frontend = LogMelFrontend()
    silence = frontend(np.zeros(4000, dtype=np.float32))
    assert torch.allclose(silence, torch.full_like(silence, math.log(LOG_FLOOR)))
    quiet, loud = frontend(tone(1000.0, amplitude=0.1)), frontend(tone(1000.0, amplitude=0.2))
    band = int(torch.argmax(quiet[10:-10].mean(dim=0)))
    # Twice the amplitude is four times the power: + log(4) where the floor is negligible.
    assert torch.allclose(loud[10:-10, band] - quiet[10:-10, band],
                          torch.full((quiet.shape[0] - 20,), math.log(4.0)), atol=1e-3)


def test_mel_filterbank_is_htk_triangles():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # HTK scale anchor
    assert mel_to_hz(hz_to_mel(2345.0)) == pytest.approx(2345.0)
    filters = mel_filterbank(N_MELS)
    assert filters.shape == (201, N_MELS) and filters.dtype == torch.float32
    assert bool((filters >= 0).all()) and float(filters.max()) <= 1.0 + 1e-6
    assert bool((filters.sum(dim=0) > 0).all()), "every band covers at least one FFT bin"
    peaks = filters.argmax(dim=0)
    assert bool((peaks[1:] >= peaks[:-1]).all()), "bands rise with frequency"


def test_output_is_an_ordinary_tensor_usable_in_training():
    feats = LogMelFrontend()(tone(500.0, seconds=0.2))
    assert not feats.is_inference() and not feats.requires_grad
    weight = torch.ones(N_MELS, requires_grad=True)
    (feats * weight).sum().backward()
    assert weight.grad is not None


@pytest.mark.parametrize("bad, problem", [
    (np.zeros((2, 100), dtype=np.float32), "shape"),
    (np.zeros(0, dtype=np.float32), "empty"),
    (np.array([0.0, np.nan, 0.0], dtype=np.float32), "NaN"),
])
def test_bad_waveforms_are_refused(bad, problem):
    with pytest.raises(ValueError, match=problem):
        LogMelFrontend()(bad)


def test_fingerprint_follows_settings():
    base = LogMelFrontend().fingerprint()
    assert len(base) == 40 and int(base, 16) >= 0
    assert LogMelFrontend(FrontendConfig(name="logmel", n_mels=40)).fingerprint() != base
    assert LogMelFrontend(FrontendConfig(name="logmel", n_mels=40)).dim == 40


def test_parse_frontend_spec(tmp_path):
    assert parse_frontend_spec("logmel") == FrontendConfig(name="logmel")
    assert parse_frontend_spec("hubert") == FrontendConfig(name="hubert", encoder=DEFAULT_ENCODER)
    assert parse_frontend_spec("hubert@weighted") == FrontendConfig(
        name="hubert", encoder=DEFAULT_ENCODER, layer_mode="weighted")
    assert parse_frontend_spec("hubert:org/model@last") == FrontendConfig(
        name="hubert", encoder="org/model")
    folder = tmp_path / "enc"
    folder.mkdir()
    cfg = parse_frontend_spec(f"hubert:{folder}@weighted")
    assert cfg.encoder == str(folder.resolve()) and cfg.layer_mode == "weighted"


@pytest.mark.parametrize("spec, message", [
    ("mfcc", "available"), ("logmel:x", "logmel takes no"), ("logmel@weighted", "logmel takes no"),
])
def test_bad_frontend_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_frontend_spec(spec)


def test_cmvn_removes_a_microphone_colour_and_keeps_the_shape():
    """A fixed per-band gain (EQ) is a constant per band in log-mel: CMVN removes it."""
    from ser_studio.model.augmentation.channel import eq_tilt
    from ser_studio.model.config.schema import FrontendConfig
    from ser_studio.model.features.registry import build_frontend

    rng = np.random.default_rng(0)
    t = np.arange(2 * 16000) / 16000
    wav = (np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
           + 0.05 * rng.standard_normal(t.size)).astype(np.float32) * 0.2
    cmvn = build_frontend(FrontendConfig(name="logmel", band_norm="cmvn"))
    plain = build_frontend(FrontendConfig(name="logmel"))
    feats = cmvn(wav)
    assert feats.shape == plain(wav).shape
    assert torch.allclose(feats.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(feats.std(0, unbiased=False), torch.ones(80), atol=1e-3)
    coloured = eq_tilt(wav, 6.0, -9.0)
    shift_plain = (plain(coloured) - plain(wav)).abs().mean()
    shift_cmvn = (cmvn(coloured) - feats).abs().mean()
    assert float(shift_cmvn) < 0.1 * float(shift_plain)
    assert cmvn.fingerprint() != plain.fingerprint()
    with pytest.raises(ValueError, match="band_norm"):
        FrontendConfig(name="hubert", band_norm="cmvn")


def test_combined_frontend_pools_whole_groups_of_consecutive_frames():
    """Fake parts at 100 and 25 frames/s: the fast part's frames are averaged four at a time,
    group j over frames 4j..4j+3 (skewed values, so a shifted or strided group differs), the
    parts are concatenated in order, and the sequence is as long as the shorter part."""
    from types import SimpleNamespace

    from ser_studio.model.features.combined import ConcatFrontend

    fast_frames = torch.arange(22, dtype=torch.float32).reshape(11, 2) ** 2  # 11 frames
    slow_frames = -torch.arange(2, dtype=torch.float32)[:, None] - 1.0       # 2 frames

    class _Part:
        def __init__(self, name, rate, frames):
            self.config, self.frame_rate, self.dim, self.layers = (
                SimpleNamespace(name=name), rate, frames.shape[1], 1)
            self.frames = frames

        def __call__(self, wav):
            return self.frames

    combined = ConcatFrontend(None, [_Part("fast", 100.0, fast_frames),
                                     _Part("slow", 25.0, slow_frames)])
    assert combined.factors == [4, 1] and (combined.frame_rate, combined.dim) == (25.0, 3)
    out = combined(np.zeros(SAMPLE_RATE, dtype=np.float32))
    assert out.shape == (2, 3)                    # ceil(11 / 4) = 3 pooled frames, 2 slow ones
    for j in range(2):
        torch.testing.assert_close(out[j, :2], fast_frames[4 * j:4 * j + 4].mean(0))
    torch.testing.assert_close(out[:, 2], slow_frames[:, 0])
    with pytest.raises(ValueError, match="whole multiple"):
        ConcatFrontend(None, [_Part("fast", 100.0, fast_frames), _Part("odd", 30.0, slow_frames)])
