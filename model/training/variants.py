"""Channel-augmented variants of training utterances: K seeded recording chains per file
(model.augmentation.channel), turned into features by the run's frontend (loudness normaliser
included) and cached on disk beside the clean features.

A variant's cache folder is keyed by the frontend's fingerprint, the ChannelConfig, the seed,
the variant index and the babble pool (the audio hashes of the utterances babble may be mixed
from), and its entry by the audio file's hash, so a change in any of them is a miss. Entries
are FeatureCache entries: a corrupt or stale one is recomputed, never trusted.

Babble is mixed only from the pool handed in, and ``render_variants`` refuses a pool that
holds a test or validation speaker (SpeakerLeakError); an utterance never gets its own
speaker's voice as babble.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ser_studio.model.audio.io import load_audio
from ser_studio.model.augmentation.channel import ChannelAugmenter
from ser_studio.model.config.schema import ChannelConfig, config_to_dict
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.features.base import Frontend, digest
from ser_studio.model.features.cache import FeatureCache
from ser_studio.model.files import file_sha1
from ser_studio.model.training.folds import SpeakerLeakError
from ser_studio.model.training.trainer import TrainingCancelled

log = logging.getLogger(__name__)

BABBLE_TALKERS = (3, 6)  # people talking at once in a babble mix (inclusive)


def check_babble_pool(pool: Sequence[Utterance], forbidden: Sequence[str]) -> None:
    """Raise SpeakerLeakError when a babble source belongs to a ``forbidden`` (test or
    validation) speaker."""
    leaked = sorted({u.speaker for u in pool} & set(forbidden))
    if leaked:
        raise SpeakerLeakError(f"babble pool holds test or validation speakers {leaked}")


class Babble:
    """Waveforms of the pool's utterances (loaded once), drawn for one target speaker."""

    def __init__(self, pool: Sequence[Utterance]):
        self.pool = list(pool)
        self._audio: dict[Path, np.ndarray] = {}

    def sources_for(self, speaker: str):
        """A function rng -> 3..6 waveforms of pool speakers other than ``speaker``."""
        others = [u for u in self.pool if u.speaker != speaker]

        def draw(rng: np.random.Generator) -> list[np.ndarray]:
            if not others:
                return []
            count = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
            picks = rng.choice(len(others), size=min(count, len(others)), replace=False)
            return [self._load(others[i].path) for i in picks]
        return draw

    def _load(self, path: Path) -> np.ndarray:
        if path not in self._audio:
            self._audio[path] = load_audio(path)
        return self._audio[path]


class VariantCache(FeatureCache):
    """A FeatureCache whose entries are the features of variant ``index`` of each file."""

    def __init__(self, frontend: Frontend, cfg: ChannelConfig, index: int, seed: int,
                 pool_digest: str, babble: Babble, speakers: Mapping[Path, str],
                 root: str | Path | None = None):
        super().__init__(frontend, root)
        self.cfg, self.index, self.seed, self.pool_digest = cfg, index, seed, pool_digest
        self.babble, self.speakers = babble, speakers
        self.fingerprint = digest({"frontend": frontend.fingerprint(), "variant": index,
                                   "channel": config_to_dict(cfg), "seed": seed,
                                   "pool": pool_digest})
        self.folder = self.root / "variants" / self.fingerprint

    def _compute(self, path: Path) -> torch.Tensor:
        wav = load_audio(path)
        entropy = [self.seed, self.index, int(file_sha1(path)[:15], 16)]
        rng = np.random.default_rng(entropy)
        augmenter = ChannelAugmenter(self.cfg, self.babble.sources_for(self.speakers[path]))
        self.stats.encoder_calls += 1
        return self.frontend(augmenter(wav, rng)).detach().to(torch.float32).contiguous()


def pool_digest(pool: Sequence[Utterance]) -> str:
    """sha1 over the sorted audio hashes of the babble pool."""
    hashes = sorted(file_sha1(u.path) for u in pool)
    return hashlib.sha1("\n".join(hashes).encode()).hexdigest()


def variant_caches(utterances: Sequence[Utterance], pool: Sequence[Utterance],
                   frontend: Frontend, cfg: ChannelConfig, *, seed: int,
                   forbidden_speakers: Sequence[str], cache_dir=None
                   ) -> tuple[list[VariantCache], list[Path]]:
    """The cfg.variants caches of ``utterances`` (one per variant index) and the distinct
    audio paths they are to hold. pool: utterances babble may be mixed from (training-side
    speakers only); checked against ``forbidden_speakers`` (SpeakerLeakError) first."""
    check_babble_pool(pool, forbidden_speakers)
    babble = Babble(pool)
    speakers = {Path(u.path): u.speaker for u in utterances}
    fp = pool_digest(pool)
    caches = [VariantCache(frontend, cfg, k, seed, fp, babble, speakers, cache_dir)
              for k in range(cfg.variants)]
    return caches, list(dict.fromkeys(Path(u.path) for u in utterances))


def load_variants(caches: Sequence[VariantCache], paths: Sequence[Path], *,
                  progress: bool = False, cancel=None,
                  on_file=None) -> dict[Path, list[torch.Tensor]]:
    """path -> the features (T_k, D) of each cache's variant of it, computed on a miss.
    cancel: anything with ``is_set()``; checked before each file (TrainingCancelled).
    on_file(files_done, files_total): called before the first file (0) and after each one."""
    out = {}
    report = on_file or (lambda done, total: None)
    report(0, len(paths))
    for done, path in enumerate(tqdm(paths, desc="channel variants", unit="file",
                                     disable=not progress), 1):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("cancelled while rendering channel variants")
        out[path] = [c.get(path).float() for c in caches]
        report(done, len(paths))
    computed = sum(c.stats.misses + c.stats.recomputed for c in caches)
    if caches:
        pool = caches[0].babble.pool
        log.info("channel variants: %d files x %d variants (%d computed, %d from the cache); "
                 "babble from %d utterances of %d speakers", len(paths), len(caches), computed,
                 len(paths) * len(caches) - computed, len(pool),
                 len({u.speaker for u in pool}))
    return out


def render_variants(utterances: Sequence[Utterance], pool: Sequence[Utterance],
                    frontend: Frontend, cfg: ChannelConfig, *, seed: int,
                    forbidden_speakers: Sequence[str], cache_dir=None,
                    progress: bool = False, cancel=None, on_file=None,
                    runner=None) -> Mapping[Path, list[torch.Tensor]]:
    """path -> cfg.variants feature tensors (T_k, D) for each of ``utterances``:
    ``variant_caches`` then ``load_variants`` (their arguments), or with ``runner`` (a
    cluster: model.cluster.training.RayTrainer) its ``variants(caches, paths, on_file,
    cancel)``, which renders the missing ones as tasks.

    ``utterances`` may include a speaker that one ensemble member validates on and another
    trains on: its variants are used only by the members training on it.
    """
    check_babble_pool(pool, forbidden_speakers)
    if cfg.variants == 0:
        return {}
    caches, paths = variant_caches(utterances, pool, frontend, cfg, seed=seed,
                                   forbidden_speakers=forbidden_speakers, cache_dir=cache_dir)
    if runner is not None:
        return runner.variants(caches, paths, on_file=on_file, cancel=cancel)
    return load_variants(caches, paths, progress=progress, cancel=cancel, on_file=on_file)
