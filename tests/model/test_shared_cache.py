"""model.cluster.shared_cache: training tasks read cache entries from the shared folder
themselves; an entry that differs on a node is refused, naming it."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.model.cluster.shared_cache import CacheEntries, SharedStorageError
from ser_studio.model.features.cache import FeatureCache


class _Frontend:
    """A frontend of (T, 3) features: the first 3*T samples, reshaped."""

    config, dim, layers, frame_rate = None, 3, 1, 100.0

    def __init__(self, tag: str = "a") -> None:
        self.tag = tag

    def fingerprint(self) -> str:
        return f"test-{self.tag}"

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        n = len(wav) // 3 * 3
        return torch.from_numpy(wav[:n].reshape(-1, 3).copy())


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i, seconds in enumerate((0.1, 0.3)):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, rng.uniform(-0.5, 0.5, int(16000 * seconds)).astype(np.float32), 16000)
        paths.append(path)
    return paths


def test_entries_read_the_cached_features_once_and_travel_without_them(files, tmp_path):
    cache = FeatureCache(_Frontend(), tmp_path / "cache")
    want = {p: cache.get(p) for p in files}
    entries = CacheEntries({p: cache.entry_path(p) for p in files}, cache.fingerprint)
    assert len(entries) == 2 and set(entries) == set(files)
    for path in files:
        assert torch.equal(entries[str(path)], want[path])
    assert entries[files[1]] is entries[files[1]]  # read once, then kept
    with pytest.raises(KeyError):
        entries[tmp_path / "other.wav"]
    assert entries.get(tmp_path / "other.wav") is None  # as the dataset asks for variants
    travelled = pickle.dumps(entries)
    assert len(travelled) < 1000  # paths only: the arrays stay with the node that read them
    assert torch.equal(pickle.loads(travelled)[files[0]], want[files[0]])


def test_variant_entries_give_one_tensor_per_variant(files, tmp_path):
    caches = [FeatureCache(_Frontend(tag), tmp_path / "cache") for tag in ("v0", "v1", "v2")]
    entries = CacheEntries({p: [c.entry_path(p) for c in caches] for p in files},
                           [c.fingerprint for c in caches])
    for c in caches:
        c.get(files[0])
    got = entries[files[0]]
    assert len(got) == 3 and all(torch.equal(g, caches[0].get(files[0])) for g in got)


def test_an_entry_that_differs_on_this_node_is_refused_naming_it(files, tmp_path):
    cache = FeatureCache(_Frontend(), tmp_path / "cache")
    cache.get(files[0])
    entry = cache.entry_path(files[0])
    stale = CacheEntries({files[0]: entry}, "another-fingerprint")
    with pytest.raises(SharedStorageError, match="differs from the driver"):
        stale[files[0]]
    missing = CacheEntries({files[1]: cache.entry_path(files[1])}, cache.fingerprint)
    with pytest.raises(SharedStorageError, match="mounted at the same path on every node") as exc:
        missing[files[1]]
    assert str(cache.entry_path(files[1])) in str(exc.value)
    entry.write_bytes(entry.read_bytes()[:-8] + b"\0" * 8)  # the tensor's last bytes altered
    with pytest.raises(SharedStorageError, match=str(entry)):
        CacheEntries({files[0]: entry}, cache.fingerprint)[files[0]]
