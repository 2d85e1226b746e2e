"""Feature extraction as Ray tasks: the files a feature cache lacks, in chunks, one task each.

Every worker builds the frontend from its config (once per worker process) and reads the audio
files by the paths the driver gives, so the corpus must be at the same path on every node (a
shared mount, or a copy at the same place). The features reach the cache in one of two ways
(``storage``):

- "ship" (default; no shared storage needed): the worker sends the arrays back through Ray's
  object store and the driver writes them into its cache, as a local run would;
- "shared": the cache folder is a path every node mounts; each worker writes its entries there
  itself (atomically, model.features.cache) and sends back only what failed.

Either way the cache afterwards holds the same entries a local ``extract`` writes (same frontend
fingerprint, same keys), so ``train`` finds them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from ser_studio.model.audio.io import AudioError
from ser_studio.model.cluster.options import STORAGES, cluster
from ser_studio.model.cluster.tasks import TaskPool
from ser_studio.model.features.cache import FeatureCache, FillError

log = logging.getLogger(__name__)

_FRONTENDS: dict[str, object] = {}  # per worker process: fingerprint -> built frontend


def frontend_on_worker(frontend_cfg):
    """The frontend of ``frontend_cfg``, built once per worker process."""
    from ser_studio.model.features.registry import build_frontend

    key = repr(frontend_cfg)
    if key not in _FRONTENDS:
        _FRONTENDS[key] = build_frontend(frontend_cfg)
    return _FRONTENDS[key]


def _extract_chunk(report: Callable, frontend_cfg, root: str, paths: list[str], shared: bool):
    """One chunk on a worker: [(path, features or None, error message or None)], features
    None when written to the shared cache. ``report(1)`` after each file."""
    cache = FeatureCache(frontend_on_worker(frontend_cfg), root)
    out = []
    for path in paths:
        try:
            feats = cache.get(path) if shared else cache.compute(path)
            out.append((path, None if shared else feats, None))
        except AudioError as exc:
            out.append((path, None, exc.problem))
        report(1)
    return out


def chunks(items: Sequence, size: int) -> list[list]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def extract_on_ray(pool: TaskPool, cache: FeatureCache, paths: Sequence, *, chunk: int = 16,
                   storage: str = "ship", on_file: Callable[[int, int], None] | None = None,
                   cancel=None) -> int:
    """Fill ``cache`` with the features of ``paths`` through ``pool``'s cluster; returns the
    number of tasks. Files already cached are skipped (hits); the rest go out ``chunk`` files
    per task. on_file(done, total) while files finish. FillError (as FeatureCache.fill) lists
    the files that could not be loaded, after every other file is cached;
    model.cluster.tasks.TasksCancelled when ``cancel`` is set."""
    if storage not in STORAGES:
        raise ValueError(f"--ray-storage {storage!r}: expected one of {list(STORAGES)}")
    unique = list(dict.fromkeys(str(Path(p)) for p in paths))
    todo = [p for p in unique if not cache.has(p)]
    done = len(unique) - len(todo)
    report = on_file or (lambda d, t: None)
    report(done, len(unique))
    shared = storage == "shared"
    refs = [pool.submit(("features", i), _extract_chunk, cache.frontend.config,
                        str(cache.root), part, shared)
            for i, part in enumerate(chunks(todo, max(1, chunk)))]

    def on_item(_key, count: int) -> None:
        nonlocal done
        done += count
        report(done, len(unique))

    failures: list[AudioError] = []
    for result in pool.wait(refs, on_item, cancel):
        for path, feats, problem in result:
            if problem is not None:
                failures.append(AudioError(Path(path), problem))
            elif feats is not None:
                cache.put(path, feats)
            else:
                cache.stats.misses += 1  # written by the worker into the shared cache
    log.info("Ray extraction: %d files in %d task(s), %d already cached", len(todo),
             len(refs), len(unique) - len(todo))
    if failures:
        raise FillError(failures, len(unique))
    return len(refs)


def fill_on_cluster(address: str, cache: FeatureCache, paths: Sequence, *, cpus: int = 1,
                    retries: int = 2, memory_mb: int = 0, chunk: int = 16,
                    storage: str = "ship", progress: bool = False) -> int:
    """``extract --ray ADDRESS``: connect, ``extract_on_ray`` with a tqdm bar on stderr when
    ``progress``, disconnect; returns the number of tasks (FillError, ClusterError as
    there)."""
    from tqdm import tqdm

    with cluster(address, cpus, retries, memory_mb) as (info, pool):
        log.info("extracting on Ray cluster %s", info.describe())
        with tqdm(total=len(paths), desc="features (Ray)", unit="file",
                  disable=not progress) as bar:
            def on_file(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            return extract_on_ray(pool, cache, paths, chunk=chunk, storage=storage,
                                  on_file=on_file)
