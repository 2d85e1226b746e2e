"""Slow live adaptation: hops of speech grow the profile from the saved calibration, a new
profile comes every few seconds of speech, and its statistics move toward the voice heard."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ser_studio.model.adaptation.live import SlowAdaptation
from ser_studio.model.adaptation.profile import ProfileBuilder, SpeakerProfile

RATE = 12.5  # frames per second (speech_embedding's)


def test_a_profile_rebuilt_from_its_sums_is_the_same_profile():
    frames = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * 2 + 1
    builder = ProfileBuilder()
    builder.add_frames(frames, 40.0)
    profile = builder.profile("m", "f")
    again = ProfileBuilder.from_profile(profile, RATE).profile("m", "f")
    assert again.speech_seconds == profile.speech_seconds
    np.testing.assert_allclose(again.mean, profile.mean, atol=1e-9)
    np.testing.assert_allclose(again.std, profile.std, atol=1e-6)


def test_hops_update_every_few_seconds_and_move_toward_the_voice():
    base = SpeakerProfile("m", "f", (0.0, 0.0), (1.0, 1.0), speech_seconds=20.0)
    adapt = SlowAdaptation("m", "f", RATE, base=base, update_seconds=5.0)
    window = torch.full((62, 2), 4.0)  # a 5 s window of a voice far from the calibration
    window[:-6] = -100.0  # older frames of the window must not be counted again
    profiles = [adapt.add_hop(window, 0.5) for _ in range(20)]
    made = [p for p in profiles if p is not None]
    assert [i for i, p in enumerate(profiles) if p is not None] == [9, 19]
    assert adapt.speech_seconds == pytest.approx(30.0)
    assert made[0].mean[0] == pytest.approx(4.0 * 60 / (250 + 60), rel=1e-3)
    assert made[1].mean[0] > made[0].mean[0] > 0  # slowly, never a jump to the new voice
    assert made[1].model_sha1 == "m" and made[1].frontend == "f"


def test_without_a_calibration_it_starts_from_nothing():
    adapt = SlowAdaptation("m", "f", RATE, update_seconds=1.0)
    assert adapt.add_hop(torch.ones(62, 2), 0.5) is None
    profile = adapt.add_hop(torch.ones(62, 2), 0.5)
    assert profile.speech_seconds == pytest.approx(1.0) and profile.mean == (1.0, 1.0)


def test_hops_added_to_a_calibration_give_the_statistics_of_all_frames_together():
    """A 20 s calibration (250 frames) and six 0.8 s hops (10 new frames each) of a skewed,
    louder voice: the profile is the mean and population std of the 310 frames pooled, so a
    rebuilt calibration weighs its 250 frames (not one profile against one hop)."""
    rng = np.random.default_rng(4)
    calibration = rng.exponential(1.0, (250, 2))
    builder = ProfileBuilder()
    builder.add_frames(torch.tensor(calibration), 20.0)
    adapt = SlowAdaptation("m", "f", RATE, base=builder.profile("m", "f"), update_seconds=4.8)
    hops, made = [], []
    for _ in range(6):
        window = torch.tensor(rng.exponential(3.0, (62, 2)) + 2.0)
        hops.append(window[-10:].numpy())
        made.append(adapt.add_hop(window, 0.8))
    assert made[:5] == [None] * 5 and made[5] is not None
    heard = np.concatenate([calibration, *hops])
    np.testing.assert_allclose(made[5].mean, heard.mean(0), rtol=1e-6)
    np.testing.assert_allclose(made[5].std, heard.std(0), rtol=1e-6)
    assert made[5].speech_seconds == pytest.approx(24.8)
