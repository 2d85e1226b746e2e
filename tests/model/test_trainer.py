"""One fold's training: loss terms, early stopping, cancel, speaker checks, determinism."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ser_studio.model.config.schema import AugmentConfig, ModelConfig, TrainConfig
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.evaluation.metrics import compute_metrics
from ser_studio.model.networks.output import NetworkOutput
from ser_studio.model.networks.registry import build_network
from ser_studio.model.training.data import Batch, FeatureDataset
from ser_studio.model.training.folds import SpeakerLeakError
from ser_studio.model.training.trainer import (TrainingCancelled, class_weights, predict_dataset,
                                               train_fold, training_loss)

LABELS = ["angry", "happy", "neutral", "sad"]
FRAME_RATE = 10.0  # features per second of the made-up data: max_seconds 3 -> 30 frames



def _data(speakers: list[str], per_class: int = 4, dim: int = 6, seed: int = 0):
    """Utterances whose class shifts one feature dimension (learnable in a few epochs)."""
    gen = torch.Generator().manual_seed(seed)
    utts, feats = [], {}
    for spk in speakers:
        for c, label in enumerate(LABELS):
            for i in range(per_class):
                path = Path(f"/mem/{spk}_{label}_{i}.wav")
                x = torch.randn(int(torch.randint(20, 40, (), generator=gen)), dim, generator=gen)
                x[:, c] += 2.5
                utts.append(Utterance(path, label, spk, "F" if spk.endswith("F") else "M"))
                feats[path] = x
    return utts, feats


def _cfgs(**train):
    # no AdaIN: it removes the per-utterance offset that encodes the class here
    model = ModelConfig(arch="enhanced", input_dim=6, hidden=16, gru_layers=1, attn_heads=2,
                        use_adain=False)
    base = dict(epochs=6, batch_size=8, lr=5e-3, warmup_epochs=1, patience=3,
                alpha_start_epoch=1, augment=AugmentConfig().off())
    return model, TrainConfig(**{**base, **train})


def _train(cfg_over=None, model_over=None, **kwargs):
    train_utts, feats = _data(["s1F", "s2M", "s3F"])
    val_utts, val_feats = _data(["s4M"], seed=1)
    feats.update(val_feats)
    model_cfg, cfg = _cfgs(**(cfg_over or {}))
    if model_over:
        model_cfg = dataclasses.replace(model_cfg, **model_over)
    trained = train_fold(train_utts, val_utts, feats, LABELS, model_cfg, cfg,
                         frame_rate=FRAME_RATE, device="cpu", **kwargs)
    return trained, val_utts, feats, cfg


def test_learns_and_restores_the_best_epoch():
    events = []
    trained, val_utts, feats, cfg = _train(progress=lambda e: events.append(e.to_dict()), fold=3)
    history = trained.history
    assert [e["epoch"] for e in events] == [r["epoch"] for r in history]
    assert all(e["event"] == "epoch" and e["fold"] == 3 and e["epochs"] == 6 for e in events)
    best = max(history, key=lambda r: (r["val_ua"], -r["val_loss"]))
    assert trained.best_epoch == best["epoch"]
    assert best["val_ua"] >= 0.75
    # the returned weights are those of the best epoch: re-scoring gives its figures
    val_set = FeatureDataset(feats, val_utts, LABELS, trained.mean, trained.std,
                             max_frames=int(cfg.eval_max_seconds * FRAME_RATE), train=False)
    probs, loss = predict_dataset(trained.network, val_set, 8)
    ua = compute_metrics([u.label for u in val_utts], [LABELS[i] for i in probs.argmax(1)],
                         LABELS)["ua"]
    assert ua == pytest.approx(best["val_ua"]) and loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert not trained.network.training
    assert trained.model_cfg.n_speakers == 3 and trained.speakers == ["s1F", "s2M", "s3F"]
    assert trained.mean.shape == (6,) and trained.std.shape == (6,)


def test_history_rows_follow_the_schedules():
    trained, *_ = _train({"epochs": 4, "patience": 10})
    lrs = [r["lr"] for r in trained.history]
    alphas = [r["alpha"] for r in trained.history]
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(5e-3)
    assert alphas[:2] == [0.0, 0.0] and alphas[2] > 0


def test_early_stopping_after_patience_epochs_without_improvement():
    trained, *_ = _train({"epochs": 30, "patience": 2, "lr": 1e-7, "warmup_epochs": 0})
    uas = [r["val_ua"] for r in trained.history]
    first_top = uas.index(max(uas)) + 1
    assert len(trained.history) == first_top + 2 < 30
    # among epochs of equal UA the lower validation loss is kept
    tied = [r for r in trained.history if r["val_ua"] == max(uas)]
    assert trained.best_epoch == min(tied, key=lambda r: r["val_loss"])["epoch"]


def test_same_seed_same_run_and_baseline_has_no_speaker_head():
    a, *_ = _train({"epochs": 2}, {"arch": "baseline"})
    b, *_ = _train({"epochs": 2}, {"arch": "baseline"})
    assert a.history == b.history
    assert a.model_cfg.n_speakers == 0
    c, *_ = _train({"epochs": 2, "seed": 5}, {"arch": "baseline"})
    assert c.history != a.history


def test_no_adversary_without_weight():
    trained, *_ = _train({"epochs": 1, "adversarial_weight": 0.0})
    assert trained.model_cfg.n_speakers == 0


class CountingFlag:
    """A cancel flag that becomes set on its ``after``-th check."""

    def __init__(self, after: int):
        self.after, self.calls = after, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.after


def test_cancel_stops_before_the_next_batch():
    flag = CountingFlag(after=3)
    events = []
    with pytest.raises(TrainingCancelled):
        _train(progress=lambda e: events.append(e.to_dict()), cancel=flag)
    assert flag.calls == 3  # two batches ran, the third check stopped it at once
    assert events == []


def test_speaker_overlap_is_refused():
    train_utts, feats = _data(["s1F", "s2M"])
    model_cfg, cfg = _cfgs()
    with pytest.raises(SpeakerLeakError, match="test/train"):
        train_fold(train_utts, [], feats, LABELS, model_cfg, cfg, frame_rate=FRAME_RATE,
                   test_speakers=["s2M"])
    with pytest.raises(SpeakerLeakError, match="validation/train"):
        train_fold(train_utts[:16], train_utts, feats, LABELS, model_cfg, cfg,
                   frame_rate=FRAME_RATE)


def test_without_validation_trains_the_given_epochs_and_keeps_the_last():
    train_utts, feats = _data(["s1F", "s2M"])
    model_cfg, cfg = _cfgs(epochs=6)
    trained = train_fold(train_utts, [], feats, LABELS, model_cfg, cfg, frame_rate=FRAME_RATE,
                         epochs=2)
    assert [r["epoch"] for r in trained.history] == [1, 2] and trained.best_epoch == 2
    assert trained.history[-1]["val_ua"] is None


def test_gradient_accumulation_steps_the_optimiser_less_often(monkeypatch):
    steps = []
    original = torch.optim.AdamW.step

    def counting(self, *args, **kwargs):
        steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting)
    _train({"epochs": 1, "batch_size": 8, "accumulation_steps": 2})
    # 48 training utterances = 6 batches -> 3 optimiser steps
    assert len(steps) == 3
    steps.clear()
    _train({"epochs": 1, "batch_size": 8, "accumulation_steps": 4})
    assert len(steps) == 2  # 4 + the 2 left at the end of the epoch


def test_class_weights_are_inverse_frequency():
    utts = [Utterance(Path(f"/x{i}"), label, "s") for i, label in
            enumerate(["angry"] * 6 + ["sad"] * 2)]
    w = class_weights(utts, ["angry", "happy", "sad"])
    assert torch.allclose(w, torch.tensor([8 / (3 * 6), 0.0, 8 / (3 * 2)]))


def _loss(out, batch, weights, cfg, net) -> float:
    return float(training_loss(out, batch, weights, cfg, net).detach())


def test_training_loss_terms():
    torch.manual_seed(0)
    net = build_network(ModelConfig(arch="baseline", input_dim=4, hidden=4, gru_layers=1))
    logits = torch.randn(3, 4)
    speaker_logits = torch.randn(3, 2)
    batch = Batch(torch.zeros(3, 5, 4), torch.full((3,), 5), torch.tensor([0, 1, 2]),
                  torch.tensor([0, -1, 1]))
    out = NetworkOutput(logits, torch.zeros(3, 5), speaker_logits, torch.full((3,), 5))
    ce = float(torch.nn.functional.cross_entropy(logits, batch.labels))
    # speaker CE over the items with a known speaker (index -1 is left out)
    spk = float(torch.nn.functional.cross_entropy(speaker_logits[[0, 2]], torch.tensor([0, 1])))
    cfg = TrainConfig(adversarial_weight=0.5, l2_reg=0.0)
    assert _loss(out, batch, None, cfg, net) == pytest.approx(ce + 0.5 * spk)
    l2 = sum(float(p.detach().pow(2).sum()) for p in net.parameters() if p.dim() > 1)
    cfg = TrainConfig(adversarial_weight=0.0, l2_reg=0.01)
    assert _loss(out, batch, None, cfg, net) == pytest.approx(ce + 0.01 * l2, rel=1e-5)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    weighted = float(torch.nn.functional.cross_entropy(logits, batch.labels, weight=weights))
    no_spk = dataclasses.replace(out, speaker_logits=None)
    assert _loss(no_spk, batch, weights, TrainConfig(), net) == pytest.approx(weighted)
    smoothed = _loss(no_spk, batch, None, TrainConfig(label_smoothing=0.1), net)
    assert np.isfinite(smoothed) and smoothed != pytest.approx(ce)


def test_layer_stacks_train_with_augmentation():
    """(L, T, D) inputs (weighted encoder layers) go through crops, augmentation and batches."""
    train_utts, feats = _data(["s1F", "s2M"])
    val_utts, val_feats = _data(["s3F"], seed=1)
    stacks = {p: torch.stack([x, 0.5 * x]) for p, x in {**feats, **val_feats}.items()}
    model_cfg, cfg = _cfgs(epochs=2, augment=AugmentConfig(noise_prob=1.0, stretch_prob=1.0,
                                                           time_mask_prob=1.0,
                                                           feature_mask_prob=1.0))
    model_cfg = dataclasses.replace(model_cfg, input_layers=2)
    trained = train_fold(train_utts, val_utts, stacks, LABELS, model_cfg, cfg,
                         frame_rate=FRAME_RATE)
    assert len(trained.history) == 2 and trained.mean.shape == (6,)
    assert all(np.isfinite(r["train_loss"]) for r in trained.history)


def test_min_epochs_are_never_best_and_do_not_count_for_patience():
    trained, *_ = _train({"epochs": 30, "patience": 2, "lr": 1e-7, "warmup_epochs": 0,
                          "min_epochs": 6})
    uas = [r["val_ua"] for r in trained.history]
    assert trained.best_epoch >= 6
    first_top_after = uas.index(max(uas[5:]), 5) + 1
    assert len(trained.history) == first_top_after + 2



def test_the_best_epoch_is_restored_when_it_is_not_the_last(monkeypatch):
    """Validation scores scripted so that epoch 2 of 5 is best: the returned network holds
    epoch 2's weights, not the last epoch's."""
    import copy

    from ser_studio.model.training import trainer as trainer_mod

    scores = iter([0.5, 0.9, 0.6, 0.7, 0.8])
    snapshots = []

    def scripted(network, dataset, labels, cfg, device, cancel):
        snapshots.append(copy.deepcopy(network.state_dict()))
        return {"val_loss": 1.0, "val_acc": 0.5, "val_f1": 0.5, "val_ua": next(scores)}

    monkeypatch.setattr(trainer_mod, "_validate", scripted)
    trained, *_ = _train({"epochs": 5, "patience": 10})
    assert trained.best_epoch == 2 and len(snapshots) == 5
    final = trained.network.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[-1][k]) for k in final)
