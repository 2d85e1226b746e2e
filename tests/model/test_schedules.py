"""The alpha and learning-rate schedules against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from ser_studio.model.config.schema import TrainConfig
from ser_studio.model.training.schedules import alpha_at, lr_at, restart_period


def test_alpha_zero_then_linear_then_held():
    cfg = TrainConfig(epochs=20, alpha_start_epoch=5, alpha_full_fraction=0.7, max_alpha=1.0)
    # ramp from epoch 5 (0) to epoch 0.7 * 20 = 14 (1)
    expected = {0: 0.0, 4: 0.0, 5: 0.0, 8: 3 / 9, 11: 6 / 9, 14: 1.0, 19: 1.0}
    for epoch, value in expected.items():
        assert alpha_at(epoch, cfg) == pytest.approx(value), epoch


def test_alpha_scales_with_max_alpha_and_jumps_when_ramp_is_empty():
    cfg = TrainConfig(epochs=20, max_alpha=0.5)
    assert alpha_at(8, cfg) == pytest.approx(0.5 * 3 / 9)
    short = TrainConfig(epochs=6, alpha_start_epoch=5, alpha_full_fraction=0.7, max_alpha=0.8)
    assert [alpha_at(e, short) for e in range(6)] == [0, 0, 0, 0, 0, pytest.approx(0.8)]


def test_lr_warmup_from_a_tenth():
    cfg = TrainConfig(epochs=20, lr=1e-3, warmup_epochs=2, eta_min=1e-5)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(1, cfg) == pytest.approx(5.5e-4)
    assert lr_at(2, cfg) == pytest.approx(1e-3)


def test_lr_cosine_with_warm_restarts_by_hand():
    cfg = TrainConfig(epochs=20, lr=1e-3, warmup_epochs=2, eta_min=1e-5)
    assert restart_period(cfg) == 5
    # first cycle: 5 epochs after warmup (epochs 2..6), then a restart at epoch 7 with 10
    assert lr_at(4, cfg) == pytest.approx(1e-5 + 9.9e-4 * (1 + math.cos(0.4 * math.pi)) / 2)
    assert lr_at(7, cfg) == pytest.approx(1e-3)
    assert lr_at(12, cfg) == pytest.approx(1e-5 + 9.9e-4 * 0.5)
    assert lr_at(17, cfg) == pytest.approx(1e-3)  # second restart after 5 + 10 epochs
    assert TrainConfig(epochs=3).epochs // 4 == 0 and restart_period(TrainConfig(epochs=3)) == 1


def test_lr_matches_torch_cosine_warm_restarts_after_warmup():
    cfg = TrainConfig(epochs=40, lr=2e-3, warmup_epochs=3, eta_min=1e-4)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=restart_period(cfg), T_mult=2, eta_min=cfg.eta_min)
    for epoch in range(cfg.warmup_epochs, cfg.epochs):
        assert lr_at(epoch, cfg) == pytest.approx(opt.param_groups[0]["lr"]), epoch
        opt.step()
        sched.step()
