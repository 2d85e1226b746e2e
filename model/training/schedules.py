"""Pure schedule functions of the epoch: the gradient-reversal strength and the learning rate.

Both are stepped once per epoch (0-based epoch index) so tests can compare them with values
computed by hand.
"""
from __future__ import annotations

import math

from ser_studio.model.config.schema import TrainConfig


def alpha_at(epoch: int, cfg: TrainConfig) -> float:
    """Gradient-reversal strength for ``epoch`` (0-based).

    0 for the first ``alpha_start_epoch`` epochs, then a linear ramp that starts at 0 at epoch
    ``alpha_start_epoch`` and reaches ``max_alpha`` at epoch ``alpha_full_fraction * epochs``,
    then held. The speaker adversary only pushes once the emotion head has something to keep.
    """
    start = cfg.alpha_start_epoch
    if epoch < start:
        return 0.0
    full = cfg.alpha_full_fraction * cfg.epochs
    if full <= start:
        return float(cfg.max_alpha)
    return float(cfg.max_alpha * min(1.0, (epoch - start) / (full - start)))


def restart_period(cfg: TrainConfig) -> int:
    """T_0 of the cosine schedule with warm restarts: a quarter of the epochs, at least 1."""
    return max(1, cfg.epochs // 4)


def lr_at(epoch: int, cfg: TrainConfig) -> float:
    """Learning rate for ``epoch`` (0-based).

    Warmup: linear from 0.1 * lr at epoch 0 towards lr over ``warmup_epochs`` epochs. Then
    cosine annealing with warm restarts (as torch's CosineAnnealingWarmRestarts, T_mult = 2,
    T_0 = ``restart_period``), counted from the end of warmup, decaying to ``eta_min``.
    """
    if epoch < cfg.warmup_epochs:
        return float(cfg.lr * (0.1 + 0.9 * epoch / cfg.warmup_epochs))
    t_cur = epoch - cfg.warmup_epochs
    period = restart_period(cfg)
    while t_cur >= period:  # T_mult = 2: each cycle twice as long as the one before
        t_cur -= period
        period *= 2
    cosine = (1.0 + math.cos(math.pi * t_cur / period)) / 2.0
    return float(cfg.eta_min + (cfg.lr - cfg.eta_min) * cosine)
