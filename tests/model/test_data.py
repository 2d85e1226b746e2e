"""Training data: in-memory feature store, standardisation, crops and padded batches."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ser_studio.model.audio.io import AudioError
from ser_studio.model.config.schema import AugmentConfig
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.features.cache import FillError
from ser_studio.model.training.data import (FeatureDataset, FeatureStore, centre_crop, collate,
                                            eval_loader, frames_for, norm_stats, random_crop,
                                            train_loader)


class FakeCache:
    """get(path) -> deterministic features; counts calls; 'bad' paths raise AudioError."""

    def __init__(self, shape=(20, 3)):
        self.calls = 0
        self.shape = shape

    def get(self, path):
        self.calls += 1
        if "bad" in str(path):
            raise AudioError(path, "not audio")
        return torch.full(self.shape, float(len(str(path))))


def _utts(n: int, label: str = "sad") -> list[Utterance]:
    return [Utterance(Path(f"/d/u{i}.wav"), label, f"spk{i % 2}") for i in range(n)]


def test_store_reads_each_file_once():
    cache = FakeCache()
    paths = [Path("/d/a.wav"), Path("/d/b.wav"), Path("/d/a.wav")]
    store = FeatureStore(cache, paths)
    assert cache.calls == 2 and len(store) == 2
    assert store["/d/a.wav"].shape == (20, 3)
    store["/d/a.wav"], store[Path("/d/b.wav")]
    assert cache.calls == 2


def test_store_lists_every_bad_file():
    with pytest.raises(FillError) as err:
        FeatureStore(FakeCache(), [Path("/d/bad1.wav"), Path("/d/ok.wav"), Path("/d/bad2.wav")])
    assert "bad1.wav" in str(err.value) and "bad2.wav" in str(err.value)
    assert "2 of 3" in str(err.value)


def test_norm_stats_per_dimension_over_frames_and_layers():
    a = torch.tensor([[0.0, 10.0], [2.0, 10.0]])
    b = torch.tensor([[4.0, 10.0]])
    mean, std = norm_stats([a, b])
    assert torch.allclose(mean, torch.tensor([2.0, 10.0]))
    assert torch.allclose(std[0], torch.tensor(8 / 3).sqrt())
    assert std[1] > 0  # constant dimension: floor, not zero
    stack = torch.stack([a, a + 2])  # (L=2, T=2, D=2): pooled over layers too
    mean, _ = norm_stats([stack])
    assert torch.allclose(mean, torch.tensor([2.0, 11.0]))


def test_norm_stats_pool_skewed_files_of_unequal_length_and_layers():
    """Files of 7, 40 and 3 frames with skewed, differently scaled values, then layer stacks
    whose layers differ in level and spread: the statistics are numpy's mean and population std
    (ddof 0) of every frame of every layer together (not means of per-file or per-layer
    statistics)."""
    import numpy as np

    rng = np.random.default_rng(2)
    files = [rng.exponential(scale, (n, 3)) + shift
             for n, scale, shift in ((7, 1.0, 0.0), (40, 3.0, -2.0), (3, 0.2, 5.0))]
    mean, std = norm_stats([torch.tensor(f, dtype=torch.float32) for f in files])
    every = np.concatenate(files)
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, every.std(0), rtol=1e-5)
    stacks = [np.stack([f, 4 * f + 10]) for f in files]  # (L=2, T_i, 3)
    mean, std = norm_stats([torch.tensor(s, dtype=torch.float32) for s in stacks])
    every = np.concatenate([s.reshape(-1, 3) for s in stacks])
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, every.std(0), rtol=1e-5)


def test_crops():
    feats = torch.arange(10.0)[:, None]
    assert centre_crop(feats, 4)[:, 0].tolist() == [3, 4, 5, 6]
    assert centre_crop(feats, 20) is feats
    gen = torch.Generator().manual_seed(0)
    starts = {int(random_crop(feats, 4, gen)[0, 0]) for _ in range(50)}
    assert starts <= set(range(7)) and len(starts) > 3
    crops = [random_crop(feats, 4, gen)[:, 0] for _ in range(200)]
    assert {int(c[0]) for c in crops} == set(range(7))   # the last window is reachable too
    assert all(c.tolist() == list(range(int(c[0]), int(c[0]) + 4)) for c in crops)
    assert centre_crop(torch.arange(11.0)[:, None], 4)[:, 0].tolist() == [3, 4, 5, 6]
    assert frames_for(3.0, 100.0) == 300 and frames_for(0.001, 50.0) == 1


def test_dataset_standardises_crops_and_augments_only_in_training():
    feats = {u.path: torch.randn(50, 4) * 3 + 5 for u in _utts(4)}
    mean, std = norm_stats(list(feats.values()))
    cfg = AugmentConfig(noise_prob=1.0, stretch_prob=0.0, time_mask_prob=0.0,
                        feature_mask_prob=0.0)
    args = dict(labels=["angry", "sad"], mean=mean, std=std, speakers=["spk0"])
    evalset = FeatureDataset(feats, _utts(4), max_frames=30, train=False, augment_cfg=cfg,
                             **args)
    x, label, speaker = evalset[1]
    expected = (centre_crop(feats[_utts(4)[1].path], 30) - mean) / std
    assert torch.equal(x, expected) and label == 1 and speaker == -1
    assert evalset[0][2] == 0
    trainset = FeatureDataset(feats, _utts(4), max_frames=30, train=True, augment_cfg=cfg,
                              **args)
    x, _, _ = trainset[1]
    assert x.shape == (30, 4)
    windows = [(feats[_utts(4)[1].path][s:s + 30] - mean) / std for s in range(21)]
    assert not any(torch.equal(x, w) for w in windows)  # noise was added
    plain = FeatureDataset(feats, _utts(4), max_frames=30, train=True, augment_cfg=None, **args)
    assert any(torch.allclose(plain[1][0], w) for w in windows)


def test_collate_pads_at_the_end_and_reports_lengths():
    items = [(torch.ones(3, 2), 0, 1), (torch.ones(5, 2) * 2, 1, -1)]
    batch = collate(items)
    assert batch.x.shape == (2, 5, 2)
    assert batch.lengths.tolist() == [3, 5]
    assert batch.labels.tolist() == [0, 1] and batch.speakers.tolist() == [1, -1]
    assert (batch.x[0, 3:] == 0).all() and (batch.x[0, :3] == 1).all()
    stacks = collate([(torch.ones(2, 3, 4), 0, 0), (torch.ones(2, 6, 4), 0, 0)])
    assert stacks.x.shape == (2, 2, 6, 4) and stacks.lengths.tolist() == [3, 6]


def test_loaders_are_reproducible_and_eval_order_is_by_length():
    feats = {u.path: torch.randn(10 + i, 2) for i, u in enumerate(_utts(9))}
    mean, std = torch.zeros(2), torch.ones(2)
    ds = FeatureDataset(feats, _utts(9), ["sad"], mean, std, max_frames=100, train=False)
    order = lambda seed: [b.lengths.tolist() for b in train_loader(ds, 4, seed)]  # noqa: E731
    assert order(3) == order(3) and order(3) != order(4)
    loader, idx = eval_loader(ds, 4)
    assert [b.lengths.tolist() for b in loader][0] == [10, 11, 12, 13]
    assert idx == list(range(9))
