"""The utterance-statistics branch: exact statistics over valid frames, fusion, training."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ser_studio.model.config.schema import AugmentConfig, ModelConfig, TrainConfig
from ser_studio.model.networks.layers import lengths_to_mask
from ser_studio.model.networks.registry import build_network
from ser_studio.model.networks.stats_branch import StatsFusion, utterance_stats
from ser_studio.model.training.trainer import train_fold

from tests.model.test_trainer import FRAME_RATE, LABELS, _data

CFG = ModelConfig(arch="baseline", input_dim=5, n_classes=4, hidden=8, gru_layers=1,
                  stats_branch=True)


def test_statistics_are_those_of_the_valid_frames():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 5, generator=gen)
    x[1, 6:] = float("nan")                                 # padding garbage
    lengths = torch.tensor([9, 6])
    stats = utterance_stats(x, lengths_to_mask(lengths, 9))
    for b, n in enumerate(lengths.tolist()):
        frames = x[b, :n].numpy().astype(np.float64)
        rms_delta = np.sqrt((np.diff(frames, axis=0) ** 2).mean(0))
        want = np.concatenate([frames.mean(0), frames.std(0), rms_delta])
        np.testing.assert_allclose(stats[b].numpy(), want, rtol=1e-4, atol=1e-5)
    # a single frame has no spread and no difference, and gives finite zeros
    one = utterance_stats(x[:1, :1], torch.ones(1, 1, dtype=torch.bool))
    assert torch.isfinite(one).all() and (one[0, 5:] < 1e-3).all()


@pytest.mark.parametrize("arch", ["baseline", "enhanced"])
def test_fusion_averages_the_two_branches_and_ignores_padding(arch):
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, arch=arch, attn_heads=2, n_speakers=3)
    net = build_network(cfg).eval()
    assert isinstance(net, StatsFusion)
    x, lengths = torch.randn(3, 14, 5), torch.tensor([14, 8, 3])
    with torch.no_grad():
        out = net(x, lengths, alpha=0.5)
        alone = net(x[1:2, :8], torch.tensor([8]), alpha=0.5)
    seq, stats = out.members
    mean = (F.softmax(seq.logits, -1) + F.softmax(stats.logits, -1)) / 2
    assert torch.allclose(F.softmax(out.logits, -1), mean, atol=1e-6)
    assert torch.allclose(out.logits[1], alone.logits[0], atol=1e-5)
    assert (seq.speaker_logits is not None) == (arch == "enhanced")


def test_both_branches_learn():
    """The loss is the mean of the branches' losses: each branch becomes a classifier."""
    train_utts, feats = _data(["s1F", "s2M", "s3F"], dim=5)
    val_utts, val_feats = _data(["s4M"], dim=5, seed=1)
    feats.update(val_feats)
    cfg = TrainConfig(epochs=6, batch_size=8, lr=5e-3, warmup_epochs=1, patience=3,
                      augment=AugmentConfig().off())
    trained = train_fold(train_utts, val_utts, feats, LABELS, CFG, cfg, frame_rate=FRAME_RATE,
                         device="cpu")
    assert isinstance(trained.network, StatsFusion)
    assert max(r["val_ua"] for r in trained.history) >= 0.75
    xs = [(feats[u.path] - trained.mean) / trained.std for u in val_utts]
    lengths = torch.tensor([len(x) for x in xs])
    batch = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    with torch.no_grad():
        seq, stats = trained.network(batch, lengths).members
    truth = torch.tensor([LABELS.index(u.label) for u in val_utts])
    for branch in (seq, stats):
        assert (branch.logits.argmax(-1) == truth).float().mean() >= 0.6
