"""On-disk feature cache: features are computed once per audio file and reused by every epoch
and fold.

Layout: ``root/<fingerprint>/<sha[:2]>/<sha>.safetensors``, where the fingerprint names the
frontend (name, settings, encoder identity) and ``sha`` is the sha1 of the audio file's bytes, so
a renamed or copied file is a hit and an edited one is a miss. Each entry holds one float32
tensor, (T, D) or (L, T, D), and metadata: format, fingerprint, audio hash, shape and a sha1 of
the tensor bytes. An entry that is truncated, garbage, of the wrong shape or dtype, fails its
checksum or carries another fingerprint is recomputed, never trusted. Entries are written to a
temporary file and renamed into place, so a process killed mid-write leaves no entry at all.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from ser_studio.model.audio.io import AudioError, load_audio
from ser_studio.model.features.base import Frontend
from ser_studio.model.files import atomic_write, default_cache_dir, file_sha1

log = logging.getLogger(__name__)

ENTRY_FORMAT = "ser-studio-features"
ENTRY_VERSION = "1"
TENSOR_KEY = "features"


def tensor_sha1(tensor: torch.Tensor) -> str:
    """sha1 of a tensor's raw bytes (contiguous CPU layout)."""
    return hashlib.sha1(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@dataclass
class CacheStats:
    """Each ``get`` counts exactly one of hits, misses (no entry) and recomputed (an entry that
    was corrupt or stale); encoder_calls counts frontend invocations."""

    hits: int = 0
    misses: int = 0
    recomputed: int = 0
    encoder_calls: int = 0


class FillError(AudioError):
    """Some files of a ``fill`` could not be loaded; all the others were cached.

    ``failures`` holds one AudioError per bad file; the message lists them.
    """

    def __init__(self, failures: list[AudioError], total: int):
        self.failures = list(failures)
        self.path = failures[0].path
        self.problem = f"{len(failures)} of {total} audio files could not be loaded"
        lines = "\n".join(f"  {err}" for err in self.failures)
        ValueError.__init__(self, f"{self.problem} (the other {total - len(failures)} are "
                                  f"cached):\n{lines}")


class CacheFolderError(ValueError):
    """The cache folder is not a folder that can be used; the message says which and why."""


def _check_root(root: Path) -> Path:
    """``root`` as a usable cache folder path: refused when it or a parent is a file."""
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is" if folder == root else f"is inside {folder}, which is"
                raise CacheFolderError(f"feature cache {root} {where} a file, not a folder: "
                                       "pass --cache with a folder (or set SER_CACHE_DIR)")
            break
    return root


class FeatureCache:
    """Features of audio files, computed once with ``frontend`` and kept under ``root``."""

    def __init__(self, frontend: Frontend, root: str | Path | None = None):
        self.frontend = frontend
        self.fingerprint = frontend.fingerprint()
        self.root = _check_root(Path(root) if root is not None else default_cache_dir())
        self.folder = self.root / self.fingerprint
        self.stats = CacheStats()

    @property
    def hits(self) -> int:
        return self.stats.hits

    @property
    def misses(self) -> int:
        return self.stats.misses

    @property
    def recomputed(self) -> int:
        return self.stats.recomputed

    @property
    def encoder_calls(self) -> int:
        return self.stats.encoder_calls

    def entry_path(self, audio_path: str | Path) -> Path:
        """Where the features of ``audio_path`` are (or will be) stored."""
        sha = file_sha1(audio_path)
        return self.folder / sha[:2] / f"{sha}.safetensors"

    def get(self, path: str | Path) -> torch.Tensor:
        """Features of one audio file: (T, D) or (L, T, D) float32, from disk when cached.

        Raises AudioError naming the file when it is missing or not usable audio.
        """
        path = Path(path)
        if not path.is_file():
            raise AudioError(path, "file not found" if not path.exists() else "not a file")
        try:
            sha = file_sha1(path)
        except OSError as exc:
            raise AudioError(path, f"unreadable ({exc.strerror or exc})") from exc
        entry = self.folder / sha[:2] / f"{sha}.safetensors"
        if entry.exists():
            feats, problem = self._read(entry, sha)
            if feats is not None:
                self.stats.hits += 1
                return feats
            log.warning("cache entry %s for %s %s; recomputing", entry, path, problem)
            self.stats.recomputed += 1
        else:
            self.stats.misses += 1
        feats = self._compute(path)
        self._write(entry, feats, sha)
        return feats

    def has(self, path: str | Path) -> bool:
        """Whether a sound entry for ``path`` is stored (read and checked, counted as a hit);
        a file that cannot be hashed is not. Nothing is computed: the cluster's extraction
        (model.cluster.extract) computes only the files this is false for."""
        try:
            sha = file_sha1(path)
        except OSError:
            return False
        entry = self.folder / sha[:2] / f"{sha}.safetensors"
        if not entry.exists() or self._read(entry, sha)[0] is None:
            return False
        self.stats.hits += 1
        return True

    def compute(self, path: str | Path) -> torch.Tensor:
        """The features of one audio file, computed with the frontend and not stored: (T, D)
        or (L, T, D) float32. AudioError naming the file when it is not usable audio."""
        return self._compute(Path(path))

    def put(self, path: str | Path, feats: torch.Tensor) -> Path:
        """Store ``feats``, computed elsewhere with this cache's frontend (a cluster worker),
        as the entry of ``path`` (counted as a miss); returns the entry's path."""
        sha = file_sha1(path)
        entry = self.folder / sha[:2] / f"{sha}.safetensors"
        self.stats.misses += 1
        self._write(entry, feats.detach().to(torch.float32).contiguous(), sha)
        return entry

    def fill(self, paths, progress: bool = False) -> None:
        """Make sure every file in ``paths`` is cached (a tqdm bar on stderr when ``progress``).

        A file that cannot be loaded does not stop the others; afterwards FillError (an
        AudioError) lists every bad file.
        """
        paths = list(paths)
        failures: list[AudioError] = []
        for path in tqdm(paths, desc="features", unit="file", disable=not progress):
            try:
                self.get(path)
            except AudioError as exc:
                log.debug("skipping %s", exc)
                failures.append(exc)
        if failures:
            raise FillError(failures, len(paths))

    def _compute(self, path: Path) -> torch.Tensor:
        wav = load_audio(path)
        self.stats.encoder_calls += 1
        try:
            feats = self.frontend(wav)
        except ValueError as exc:  # e.g. a signal too short for the frontend
            raise AudioError(path, f"cannot compute features: {exc}") from exc
        return feats.detach().to(torch.float32).contiguous()

    def _read(self, entry: Path, sha: str) -> tuple[torch.Tensor | None, str]:
        """(features, "") for a sound entry, else (None, what is wrong with it)."""
        try:
            with safe_open(str(entry), framework="pt") as f:
                meta = f.metadata() or {}
                feats = f.get_tensor(TENSOR_KEY)
        except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as exc:
            return None, f"is unreadable ({type(exc).__name__}: {exc})"
        if meta.get("format") != ENTRY_FORMAT or meta.get("version") != ENTRY_VERSION:
            return None, f"has format {meta.get('format')!r} v{meta.get('version')!r}"
        if meta.get("fingerprint") != self.fingerprint or meta.get("audio_sha1") != sha:
            return None, "is stale (another frontend or audio file)"
        problem = self._shape_problem(feats, meta)
        if problem:
            return None, problem
        if tensor_sha1(feats) != meta.get("tensor_sha1"):
            return None, "fails its checksum"
        return feats, ""

    def _shape_problem(self, feats: torch.Tensor, meta: dict[str, str]) -> str:
        """What is wrong with the stored tensor's dtype or shape, or ""."""
        if feats.dtype != torch.float32:
            return f"has dtype {feats.dtype}, expected float32"
        layers, dim, got = self.frontend.layers, self.frontend.dim, tuple(feats.shape)
        if layers == 1:
            ok, want = len(got) == 2 and got[1] == dim and got[0] > 0, f"(T, {dim})"
        else:
            ok = len(got) == 3 and got[0] == layers and got[2] == dim and got[1] > 0
            want = f"({layers}, T, {dim})"
        if not ok:
            return f"has shape {got}, expected {want}"
        if meta.get("shape") != ",".join(map(str, got)):
            return f"has shape {got} but its metadata says {meta.get('shape')}"
        return ""

    def _write(self, entry: Path, feats: torch.Tensor, sha: str) -> None:
        """Store ``feats`` atomically: a temporary file renamed over the entry."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": ENTRY_FORMAT, "version": ENTRY_VERSION, "fingerprint": self.fingerprint,
            "audio_sha1": sha, "shape": ",".join(map(str, feats.shape)),
            "tensor_sha1": tensor_sha1(feats),
        }
        atomic_write(entry, lambda tmp: save_file({TENSOR_KEY: feats}, str(tmp), metadata=meta))
