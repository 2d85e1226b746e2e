"""Channel-variant rendering as Ray tasks: the (file, variant) entries the variant caches lack,
in chunks of files, one task each.

A worker builds the run's frontend from its config (once per worker process), rebuilds each
variant's cache from what defines it (channel config, variant index, seed, babble pool and its
digest) and renders with the same seeded recording chain as a local run, so an entry is the same
whatever node made it. The worker reads the target and babble audio by the paths the driver
gives (the corpus at the same path on every node). Storage as for features
(model.cluster.extract): "ship" sends the arrays back and the driver writes them into its
caches; "shared" has the worker write into the cache folder every node mounts.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from ser_studio.model.audio.io import AudioError
from ser_studio.model.cluster.extract import chunks, frontend_on_worker
from ser_studio.model.cluster.options import STORAGES
from ser_studio.model.cluster.tasks import TaskPool
from ser_studio.model.features.cache import FillError

log = logging.getLogger(__name__)

_BABBLES: dict[str, object] = {}  # per worker process: pool digest -> Babble (audio loaded once)


def _caches_on_worker(frontend_cfg, root: str, channel_cfg, seed: int, digest: str, pool,
                      speakers: dict, indices: Sequence[int]) -> dict:
    """variant index -> VariantCache for one chunk, with this process's frontend and babble."""
    from ser_studio.model.training.variants import Babble, VariantCache

    if digest not in _BABBLES:
        _BABBLES[digest] = Babble(pool)
    frontend = frontend_on_worker(frontend_cfg)
    return {k: VariantCache(frontend, channel_cfg, k, seed, digest, _BABBLES[digest],
                            speakers, root) for k in indices}


def _variants_chunk(report: Callable, spec: dict, babble_pool: list,
                    items: list[tuple[str, list[int]]], shared: bool) -> list:
    """One chunk on a worker: [(path, variant index, features or None, problem or None)],
    features None when written to the shared cache. ``report(1)`` after each file."""
    indices = sorted({k for _, ks in items for k in ks})
    speakers = {Path(p): s for p, s in spec["speakers"].items()}
    caches = _caches_on_worker(spec["frontend"], spec["root"], spec["channel"], spec["seed"],
                               spec["digest"], babble_pool, speakers, indices)
    out = []
    for path, ks in items:
        for k in ks:
            try:
                feats = caches[k].get(path) if shared else caches[k].compute(path)
                out.append((path, k, None if shared else feats, None))
            except AudioError as exc:
                out.append((path, k, None, exc.problem))
        report(1)
    return out


def render_on_ray(pool: TaskPool, caches: Sequence, paths: Sequence[Path], *,
                  chunk: int = 8, storage: str = "ship",
                  on_file: Callable[[int, int], None] | None = None, cancel=None) -> int:
    """Make every one of ``caches`` (model.training.variants.variant_caches, one per variant
    index) hold an entry for each of ``paths``, the missing ones rendered as tasks of
    ``pool``, ``chunk`` files per task; returns the number of tasks. on_file(done, total) as
    files finish. FillError listing the files that could not be rendered, after the others
    are stored; model.cluster.tasks.TasksCancelled when ``cancel`` is set."""
    if storage not in STORAGES:
        raise ValueError(f"--ray-storage {storage!r}: expected one of {list(STORAGES)}")
    todo = [(str(p), ks) for p in paths
            if (ks := [c.index for c in caches if not c.has(p)])]
    done = len(paths) - len(todo)
    report = on_file or (lambda d, t: None)
    report(done, len(paths))
    if not todo:
        return 0
    first = caches[0]
    by_index = {c.index: c for c in caches}
    shared = storage == "shared"
    babble_pool = pool.put(first.babble.pool)  # once, for every task
    refs = []
    for i, part in enumerate(chunks(todo, max(1, chunk))):
        spec = {"frontend": first.frontend.config, "root": str(first.root),
                "channel": first.cfg, "seed": first.seed, "digest": first.pool_digest,
                "speakers": {p: first.speakers[Path(p)] for p, _ in part}}
        refs.append(pool.submit(("variants", first.fingerprint, i), _variants_chunk, spec,
                                babble_pool, part, shared))

    def on_item(_key, count: int) -> None:
        nonlocal done
        done += count
        report(done, len(paths))

    failures: dict[str, AudioError] = {}
    for result in pool.wait(refs, on_item, cancel):
        for path, k, feats, problem in result:
            if problem is not None:
                failures.setdefault(path, AudioError(Path(path), problem))
            elif feats is not None:
                by_index[k].put(path, feats)
    log.info("Ray channel variants: %d files in %d task(s), %d already rendered", len(todo),
             len(refs), len(paths) - len(todo))
    if failures:
        raise FillError(list(failures.values()), len(paths))
    return len(refs)
