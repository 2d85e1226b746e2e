"""Feature-space augmentation of one training utterance (never applied to evaluation data).

Every function takes the unpadded features of one utterance, shape (T, D) or (L, T, D) (time is
always axis -2), and a ``torch.Generator`` so runs are reproducible. Because they see only the
valid frames, noise and masks never touch padding; padding is added later by the collate
function. Masked values are set to 0, which after standardisation is the training mean.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ser_studio.model.config.schema import AugmentConfig
from ser_studio.model.features.logmel import LOG_FLOOR


def _uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return float(low + (high - low) * torch.rand((), generator=gen))


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Integer uniform in [low, high] inclusive."""
    return int(torch.randint(low, high + 1, (), generator=gen))


def rescale_level(feats: torch.Tensor, gain_db: float) -> torch.Tensor:
    """Log-mel features (log(power + LOG_FLOOR)) of the same audio ``gain_db`` dB louder
    (negative: quieter); exact, the floor included. Any shape."""
    power = (feats.exp() - LOG_FLOOR).clamp_min(0.0)
    return torch.log(power * 10.0 ** (gain_db / 10.0) + LOG_FLOOR)


def random_level(feats: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """With probability cfg.gain_prob, ``rescale_level`` by a gain drawn from
    cfg.gain_range_db. Applied to raw log-mel features, before standardisation."""
    if cfg.gain_prob > 0 and _uniform(gen) < cfg.gain_prob:
        return rescale_level(feats, _uniform(gen, *cfg.gain_range_db))
    return feats


def add_noise(feats: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """Add gaussian noise of standard deviation ``std`` (feature units) to every value."""
    noise = torch.randn(feats.shape, generator=gen, dtype=feats.dtype)
    return feats + std * noise


def time_stretch(feats: torch.Tensor, factor: float) -> torch.Tensor:
    """Resample the time axis by linear interpolation: T frames -> max(1, round(T * factor)).

    factor > 1 slows the utterance down (more frames), factor < 1 speeds it up.
    """
    if factor <= 0:
        raise ValueError(f"stretch factor must be positive, got {factor}")
    n_frames = feats.shape[-2]
    new_frames = max(1, int(round(n_frames * factor)))
    if new_frames == n_frames:
        return feats
    lead = feats.shape[:-2]
    flat = feats.reshape(-1, n_frames, feats.shape[-1]).transpose(1, 2)  # (N, D, T)
    out = F.interpolate(flat, size=new_frames, mode="linear", align_corners=True)
    return out.transpose(1, 2).reshape(*lead, new_frames, feats.shape[-1])


def frequency_warp(feats: torch.Tensor, factor: float) -> torch.Tensor:
    """Warp the feature axis by ``factor`` (VTLP-like: a longer or shorter vocal tract moves the
    formants up or down). Band k takes the value at band k / factor, linearly interpolated and
    clamped at the edges. Meaningful for spectral features (log-mel) only. (..., T, D) -> same.
    """
    if factor <= 0:
        raise ValueError(f"warp factor must be positive, got {factor}")
    dim = feats.shape[-1]
    source = (torch.arange(dim, dtype=feats.dtype) / factor).clamp(0, dim - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=dim - 1)
    frac = source - low.to(feats.dtype)
    return feats[..., low] * (1 - frac) + feats[..., high] * frac


def time_mask(feats: torch.Tensor, max_width: int, count: int,
              gen: torch.Generator) -> torch.Tensor:
    """Zero ``count`` spans of 0..max_width consecutive frames (clipped to the utterance)."""
    out = feats.clone()
    n_frames = feats.shape[-2]
    for _ in range(count):
        width = min(_randint(gen, 0, max_width), n_frames)
        start = _randint(gen, 0, n_frames - width)
        out[..., start:start + width, :] = 0.0
    return out


def feature_mask(feats: torch.Tensor, max_width: int, count: int,
                 gen: torch.Generator) -> torch.Tensor:
    """Zero ``count`` bands of 0..max_width consecutive feature dimensions in every frame."""
    out = feats.clone()
    dim = feats.shape[-1]
    for _ in range(count):
        width = min(_randint(gen, 0, max_width), dim)
        start = _randint(gen, 0, dim - width)
        out[..., start:start + width] = 0.0
    return out


def augment(feats: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply each augmentation with its probability, in the order stretch, frequency warp, noise,
    time mask, feature mask. (T, D) or (L, T, D) -> same rank, T possibly changed by the stretch."""
    if cfg.stretch_prob > 0 and _uniform(gen) < cfg.stretch_prob:
        feats = time_stretch(feats, _uniform(gen, *cfg.stretch_range))
    if cfg.warp_prob > 0 and _uniform(gen) < cfg.warp_prob:
        feats = frequency_warp(feats, _uniform(gen, *cfg.warp_range))
    if cfg.noise_prob > 0 and _uniform(gen) < cfg.noise_prob:
        feats = add_noise(feats, cfg.noise_std, gen)
    if cfg.time_mask_prob > 0 and _uniform(gen) < cfg.time_mask_prob:
        feats = time_mask(feats, cfg.time_mask_width, cfg.time_masks, gen)
    if cfg.feature_mask_prob > 0 and _uniform(gen) < cfg.feature_mask_prob:
        feats = feature_mask(feats, cfg.feature_mask_width, cfg.feature_masks, gen)
    return feats
