"""Feature augmentation: each transform changes what it should and nothing else."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from ser_studio.model.augmentation.spec import (add_noise, augment, feature_mask, time_mask,
                                                time_stretch)
from ser_studio.model.config.schema import AugmentConfig


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _feats(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(1)) + 3.0  # no exact zeros


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_time_stretch_changes_length_by_the_factor(factor):
    feats = _feats(40, 6)
    out = time_stretch(feats, factor)
    assert out.shape == (round(40 * factor), 6)
    # endpoints are kept and values stay within each dimension's range (interpolation)
    assert torch.allclose(out[0], feats[0]) and torch.allclose(out[-1], feats[-1])
    assert (out.min(0).values >= feats.min(0).values - 1e-5).all()
    assert (out.max(0).values <= feats.max(0).values + 1e-5).all()


def test_time_stretch_interpolates_a_ramp_linearly_and_handles_layer_stacks():
    ramp = torch.arange(11, dtype=torch.float32)[:, None].repeat(1, 3)  # 0..10 in every dim
    out = time_stretch(ramp, 21 / 11)
    assert out.shape == (21, 3)
    assert torch.allclose(out[:, 0], torch.linspace(0, 10, 21), atol=1e-5)
    stack = torch.stack([ramp, 2 * ramp])  # (L=2, T, D)
    out = time_stretch(stack, 21 / 11)
    assert out.shape == (2, 21, 3)
    assert torch.allclose(out[1], 2 * out[0])


def test_noise_changes_every_value_with_the_given_scale():
    feats = _feats(200, 20)
    out = add_noise(feats, 0.1, _gen())
    diff = out - feats
    assert (diff != 0).all()
    assert diff.std().item() == pytest.approx(0.1, rel=0.05)


def test_time_mask_zeros_whole_frames_only():
    feats = _feats(50, 8)
    out = time_mask(feats, max_width=10, count=3, gen=_gen(3))
    changed = (out != feats)
    rows = changed.any(1)
    assert rows.any()
    assert (out[rows] == 0).all()            # masked frames are zero in every dimension
    assert torch.equal(out[~rows], feats[~rows])
    assert rows.sum() <= 30


def test_feature_mask_zeros_whole_dimensions_only():
    feats = _feats(2, 30, 16)  # a layer stack: bands masked in every layer and frame
    out = feature_mask(feats, max_width=4, count=2, gen=_gen(5))
    cols = (out != feats).any(-2).any(0)
    assert cols.any()
    assert (out[..., cols] == 0).all()
    assert torch.equal(out[..., ~cols], feats[..., ~cols])
    assert cols.sum() <= 8


def test_masks_never_exceed_a_short_utterance():
    feats = _feats(3, 4)
    out = time_mask(feats, max_width=50, count=2, gen=_gen())
    assert out.shape == feats.shape
    out = feature_mask(feats, max_width=50, count=2, gen=_gen())
    assert out.shape == feats.shape


def test_probability_zero_is_identity():
    feats = _feats(40, 6)
    out = augment(feats, AugmentConfig().off(), _gen())
    assert torch.equal(out, feats)


def test_probability_one_applies_each_part():
    feats = _feats(40, 6)
    off = AugmentConfig().off()
    stretched = augment(feats, dataclasses.replace(off, stretch_prob=1.0, stretch_range=(1.5, 1.5)),
                        _gen())
    assert stretched.shape == (60, 6)
    noisy = augment(feats, dataclasses.replace(off, noise_prob=1.0), _gen())
    assert noisy.shape == feats.shape and (noisy != feats).all()
    masked = augment(feats, dataclasses.replace(off, time_mask_prob=1.0, time_mask_width=10),
                     _gen(2))
    assert (masked == 0).any(1).sum() == (masked == 0).all(1).sum() > 0


def test_augment_is_reproducible_from_the_generator():
    feats = _feats(40, 6)
    cfg = AugmentConfig(noise_prob=1.0, stretch_prob=1.0, time_mask_prob=1.0,
                        feature_mask_prob=1.0)
    assert torch.equal(augment(feats, cfg, _gen(7)), augment(feats, cfg, _gen(7)))
    assert not torch.equal(augment(feats, cfg, _gen(7)), augment(feats, cfg, _gen(8)))


def test_bad_stretch_factor_is_refused():
    with pytest.raises(ValueError, match="stretch factor"):
        time_stretch(_feats(10, 2), 0.0)


def test_frequency_warp_moves_a_band_and_keeps_identity_at_one():
    from ser_studio.model.augmentation.spec import frequency_warp

    feats = torch.zeros(5, 40)
    feats[:, 20] = 1.0
    torch.testing.assert_close(frequency_warp(feats, 1.0), feats)
    up = frequency_warp(feats, 1.1)  # formants move up: the peak lands near band 22
    assert int(up[0].argmax()) == 22 and up.shape == feats.shape
    down = frequency_warp(feats, 0.9)
    assert int(down[0].argmax()) == 18
    stack = torch.stack([feats, feats])  # (L, T, D) works too
    torch.testing.assert_close(frequency_warp(stack, 1.1)[1], up)


def test_rescale_level_gives_the_features_of_the_scaled_audio():
    import numpy as np

    from ser_studio.model.augmentation.spec import rescale_level
    from ser_studio.model.features.logmel import LogMelFrontend

    frontend = LogMelFrontend()
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    wav[:4000] = 0.0                                   # digital silence hits the log floor
    feats = frontend(wav)
    for gain_db in (-12.0, 6.0):
        quieter = frontend((wav * 10 ** (gain_db / 20)).astype(np.float32))
        assert torch.allclose(rescale_level(feats, gain_db), quieter, atol=1e-4)
    assert torch.allclose(rescale_level(feats, 0.0), feats, atol=1e-5)


def test_random_level_draws_nothing_when_off_and_stays_in_range_when_on():
    from ser_studio.model.augmentation.spec import rescale_level, random_level

    feats = torch.log(torch.rand(50, 8, generator=_gen(2)) + 0.1)
    gen = _gen(3)
    assert random_level(feats, AugmentConfig(), gen) is feats
    assert torch.rand((), generator=gen) == torch.rand((), generator=_gen(3))  # no draw
    cfg = AugmentConfig(gain_prob=1.0, gain_range_db=(-18.0, -6.0))
    out = random_level(feats, cfg, _gen(4))
    shift = float((out - feats).mean())
    assert rescale_level(feats, -18.0).mean() - feats.mean() <= shift
    assert shift <= rescale_level(feats, -6.0).mean() - feats.mean()
    assert AugmentConfig(gain_prob=0.7).off().gain_prob == 0.0


def _runs(zeroed: torch.Tensor) -> list[tuple[int, int]]:
    """(start, width) of each run of True in a 1-D bool tensor."""
    runs, start = [], None
    for i, flag in enumerate(zeroed.tolist() + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def test_a_mask_is_one_span_of_0_to_max_width_anywhere_in_the_utterance():
    """One time mask of up to 3 frames over 10 frames, over 300 seeds: every masked span is
    contiguous and at most 3 wide, widths 0..3 all occur (the bounds are inclusive), and
    spans start at frame 0 and end at the last frame; the feature mask likewise over bands."""
    feats = _feats(10, 4)
    spans, widths = set(), set()
    for seed in range(300):
        out = time_mask(feats, max_width=3, count=1, gen=_gen(seed))
        runs = _runs((out == 0).all(1))
        assert len(runs) <= 1 and all(w <= 3 for _, w in runs)
        spans.update(runs)
        widths.add(runs[0][1] if runs else 0)
        bands = _runs((feature_mask(feats, max_width=3, count=1, gen=_gen(seed)) == 0).all(0))
        assert len(bands) <= 1 and all(w <= 3 for _, w in bands)
    assert widths == {0, 1, 2, 3}
    assert min(s for s, _ in spans) == 0 and max(s + w for s, w in spans) == 10


def test_frequency_warp_of_a_ramp_reads_band_k_over_factor_clamped_at_the_top():
    from ser_studio.model.augmentation.spec import frequency_warp

    ramp = torch.arange(40, dtype=torch.float32).repeat(3, 1)        # (T=3, D=40), band k = k
    torch.testing.assert_close(frequency_warp(ramp, 0.8)[1],
                               (torch.arange(40.0) * 1.25).clamp(max=39.0))
    torch.testing.assert_close(frequency_warp(ramp, 1.6)[2], torch.arange(40.0) / 1.6)
