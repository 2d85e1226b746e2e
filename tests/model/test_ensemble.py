"""Ensembles (ModelConfig.ensemble): averaged probabilities, members trained one by one with
their own seeds and validation speakers, and the checkpoint -> Predictor round trip."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ser_studio.model.config.schema import AugmentConfig, FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ser_studio.model.networks.ensemble import Ensemble
from ser_studio.model.networks.registry import build_network
from ser_studio.model.training.data import Batch, norm_stats
from ser_studio.model.training.folds import make_folds
from ser_studio.model.training.members import member_folds, train_members
from ser_studio.model.training.trainer import train_fold

from tests.model.test_trainer import FRAME_RATE, LABELS, _data

CFG = ModelConfig(arch="baseline", input_dim=6, n_classes=4, hidden=8, gru_layers=1,
                  frame_pool=2, ensemble=3)


def _batch(seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 15, 6, generator=gen)
    return Batch(x, torch.tensor([15, 9, 12, 4]), torch.tensor([0, 1, 2, 3]),
                 torch.tensor([-1, -1, -1, -1]))


@pytest.mark.parametrize("arch", ["baseline", "enhanced"])
def test_probabilities_are_the_mean_of_the_members(arch):
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, arch=arch, hidden=8, attn_heads=2, n_speakers=3)
    net = build_network(cfg).eval()
    assert isinstance(net, Ensemble) and len(net.members) == 3
    batch = _batch()
    with torch.no_grad():
        out = net(batch.x, batch.lengths)
        alone = [m(batch.x, batch.lengths) for m in net.members]
    mean = torch.stack([F.softmax(o.logits, -1) for o in alone]).mean(0)
    assert torch.allclose(F.softmax(out.logits, -1), mean, atol=1e-6)
    # members start from different initialisations, so they disagree
    assert not torch.allclose(alone[0].logits, alone[1].logits)
    n = out.frame_lengths
    assert torch.allclose(out.attention.sum(1), torch.ones(4), atol=1e-5)
    assert all((out.attention[i, n[i]:] == 0).all() for i in range(4))
    assert out.speaker_logits is None


def test_padding_never_changes_an_ensemble_prediction():
    torch.manual_seed(0)
    net = build_network(CFG).eval()
    batch = _batch()
    with torch.no_grad():
        batched = net(batch.x, batch.lengths)
        alone = net(batch.x[1:2, :9], torch.tensor([9]))
    assert torch.allclose(batched.logits[1], alone.logits[0], atol=1e-5)


def _members_data():
    """Six speakers (3 F, 3 M): 2 grouped folds of 3 test speakers, 1 validation speaker."""
    utts, feats = _data(["s1F", "s2M", "s3F", "s4M", "s5F", "s6M"])
    cfg = TrainConfig(epochs=5, batch_size=8, lr=5e-3, warmup_epochs=1, patience=3, folds=2,
                      val_speakers=1, seed=4, augment=AugmentConfig().off())
    _, folds = make_folds(utts, kind="manifest", folds=2, val_speakers=1, seed=4)
    return utts, feats, cfg, folds[0]


def test_members_test_the_fold_speakers_and_validate_with_their_own_seed():
    utts, _, cfg, fold = _members_data()
    folds = member_folds(utts, "manifest", cfg, fold, 3)
    assert folds[0] == fold
    for m, member in enumerate(folds):
        _, same_seed = make_folds(utts, kind="manifest", folds=2, val_speakers=1, seed=4 + m)
        assert member == same_seed[0] and member.test_speakers == fold.test_speakers
        assert not set(member.val_speakers) & set(fold.test_speakers)


def test_an_ensemble_is_trained_member_by_member_saved_and_predicted(tmp_path):
    utts, feats, cfg, fold = _members_data()
    folds = member_folds(utts, "manifest", cfg, fold, 3)
    events = []
    trained = train_members(utts, folds, feats, LABELS, CFG, cfg, frame_rate=FRAME_RATE,
                            fold=1, progress=lambda e: events.append(e.to_dict()), device="cpu")
    assert isinstance(trained.network, Ensemble) and trained.model_cfg.ensemble == 3
    assert len(trained.member_best_epochs) == 3
    assert trained.member_val_speakers == [list(f.val_speakers) for f in folds]
    assert trained.best_epoch == int(np.ceil(np.median(trained.member_best_epochs)))
    assert [e["member"] for e in events] == sorted(e["member"] for e in events)
    assert {e["member"] for e in events} == {1, 2, 3} and {e["members"] for e in events} == {3}
    # one standardisation for all: every training-side speaker of the fold (validation too)
    side = [u for u in utts if u.speaker not in fold.test_speakers]
    mean, std = norm_stats([feats[u.path] for u in side])
    assert torch.allclose(trained.mean, mean) and torch.allclose(trained.std, std)
    # members start from different seeds, so they differ
    first, second = (m.state_dict() for m in list(trained.network.members)[:2])
    assert any(not torch.equal(first[k], second[k]) for k in first)

    ckpt = Checkpoint(frontend=FrontendConfig(n_mels=6), model=trained.model_cfg, train=cfg,
                      labels=LABELS, norm_mean=trained.mean.tolist(),
                      norm_std=trained.std.tolist(), state_dict=trained.network.state_dict())
    path = save_checkpoint(ckpt, tmp_path / "ens.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.model.ensemble == 3
    predictor = Predictor(loaded, path)
    assert predictor.name == "ens (baseline x3, logmel, high-pass 60 Hz, loudness -23 LUFS)"
    test = [u for u in utts if u.speaker in fold.test_speakers]
    x = (feats[test[0].path] - trained.mean) / trained.std
    with torch.no_grad():
        want = F.softmax(trained.network(x[None], torch.tensor([len(x)])).logits, -1)[0]
        got = F.softmax(predictor.network(x[None], torch.tensor([len(x)])).logits, -1)[0]
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)


def test_train_fold_refuses_an_ensemble():
    utts, feats, cfg, fold = _members_data()
    with pytest.raises(ValueError, match="train_members"):
        train_fold(utts, [], feats, LABELS, CFG, cfg, frame_rate=FRAME_RATE)


def test_an_ensemble_needs_two_members():
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([build_network(dataclasses.replace(CFG, ensemble=1))])
    with pytest.raises(ValueError, match="ensemble"):
        ModelConfig(ensemble=0)
