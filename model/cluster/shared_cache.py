"""Features that cluster workers read themselves from a cache folder every node mounts
(``--ray-storage shared``), instead of receiving them through Ray's object store.

The driver makes sure every entry exists and is sound first (model.features.cache checks
them), then hands each training task a ``CacheEntries``: audio path -> the entry file(s) to
read, plus the fingerprint they must carry. Only these small mappings travel; a worker reads
the arrays of the utterances it trains on, once each, on first use. An entry a worker cannot
read, or one that carries another fingerprint, means the folder is not the same on that node:
SharedStorageError names the entry and the node-side path.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ser_studio.model.features.cache import TENSOR_KEY, tensor_sha1


class SharedStorageError(RuntimeError):
    """An entry of the shared cache folder is missing or differs on a worker's node."""


def read_entry(entry: Path, fingerprint: str) -> torch.Tensor:
    """The float32 tensor of one cache entry, checked against ``fingerprint`` and its own
    checksum; SharedStorageError naming ``entry`` when it cannot be trusted."""
    try:
        with safe_open(str(entry), framework="pt") as f:
            meta = f.metadata() or {}
            feats = f.get_tensor(TENSOR_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as exc:
        raise SharedStorageError(
            f"{entry}: cannot read this shared cache entry on this node ({exc}); with "
            "--ray-storage shared the --cache folder must be mounted at the same path on "
            "every node") from None
    if meta.get("fingerprint") != fingerprint or tensor_sha1(feats) != meta.get("tensor_sha1"):
        raise SharedStorageError(f"{entry}: this node's copy differs from the driver's (another "
                                 "fingerprint or a failed checksum)")
    return feats


class CacheEntries(Mapping):
    """Audio path -> features (T, D) or (L, T, D), or a list of them (channel variants), read
    lazily from shared cache entries and kept once read.

    entries: audio path -> an entry path, or a list of entry paths; fingerprints: the
    fingerprint each entry must carry (one per position of the lists; one string when the
    values are single entries)."""

    def __init__(self, entries: Mapping, fingerprints: str | list[str]) -> None:
        self.entries = {Path(k): v for k, v in entries.items()}
        self.fingerprints = fingerprints
        self._read: dict[Path, object] = {}

    def __getitem__(self, path):
        path = Path(path)
        if path not in self._read:
            where = self.entries[path]  # KeyError for a path it does not hold, as a dict
            if isinstance(where, (list, tuple)):
                self._read[path] = [read_entry(Path(e), fp)
                                    for e, fp in zip(where, self.fingerprints)]
            else:
                self._read[path] = read_entry(Path(where), self.fingerprints)
        return self._read[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getstate__(self) -> dict:  # what is read stays on the node that read it
        return {"entries": self.entries, "fingerprints": self.fingerprints}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["entries"], state["fingerprints"])
