"""The networks of a cross-validation run trained as Ray tasks: one task per (fold, member),
and per member of the final model.

``RayTrainer`` is the ``runner`` that model.training.experiment.run_cross_validation takes: the
experiment hands it each fold's train_fold arguments (one job per network) and the function that
makes one TrainedModel of their results; it submits every fold at once and gives the results back
fold by fold, so testing, checkpoints, curves and the report are made on the driver as in a local
run, and the run folder is complete whatever node trained what. The seeds are those of a local
run, so folds, member seeds and metrics are the same.

The features the cache lacks are extracted as tasks (model.cluster.extract) and so are the
channel variants (model.cluster.variants), before the networks that need them are submitted.
How the arrays reach the training tasks (``storage``): "ship" puts the features and variants
once into Ray's object store (no shared storage needed); "shared" sends only entry paths
(model.cluster.shared_cache.CacheEntries) and each worker reads what it trains on from the
cache folder every node mounts.

Progress: each task's "epoch" events reach the driver while it trains; those of the fold being
collected go straight to its progress callable, the others are held (in order) until their fold
is collected (model.cluster.tasks.TaskPool.wait), so a display sees the folds one after another
as in a local run. Cancel: while
collecting, a set ``cancel`` cancels every outstanding task and raises TrainingCancelled, which
the experiment handles as a local cancel (finished folds kept, ``train --resume`` continues).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

from ser_studio.model.cluster.extract import extract_on_ray
from ser_studio.model.cluster.options import cluster, wants_ray
from ser_studio.model.cluster.shared_cache import CacheEntries
from ser_studio.model.cluster.tasks import TaskPool, TasksCancelled, node_host
from ser_studio.model.cluster.variants import render_on_ray
from ser_studio.model.training.trainer import TrainedModel, TrainingCancelled, train_fold

log = logging.getLogger(__name__)

_SHIPPED = ("features", "variants")  # job entries that go through the object store once
_LOCAL = ("progress", "cancel")  # job entries that stay on the driver


@contextlib.contextmanager
def _as_training_cancel(what: str):
    """TasksCancelled inside becomes TrainingCancelled, which the experiment handles as a
    local cancel."""
    try:
        yield
    except TasksCancelled as exc:
        raise TrainingCancelled(f"{what} cancelled on the Ray cluster ({exc})") from None


def _train_task(report: Callable, job: dict, features: Mapping, variants: Mapping | None):
    """One network, on a worker: (TrainedModel, the worker's host)."""
    trained = train_fold(**job, features=features, variants=variants, progress=report)
    return trained, node_host()


class RayTrainer:
    """Trains train_fold jobs as tasks of ``pool`` (model.cluster.tasks.TaskPool) on the
    cluster ``info`` describes (model.cluster.connect.ClusterInfo; recorded by ``record``);
    ``storage``: "ship" or "shared" (the module's docstring)."""

    def __init__(self, pool: TaskPool, info=None, storage: str = "ship") -> None:
        self.pool = pool
        self.info = info
        self.storage = storage
        self._shared_features: CacheEntries | None = None
        self.hosts: set[str] = set()
        self._refs: dict[object, tuple[list, Callable]] = {}
        self._relays: dict[tuple, Callable | None] = {}
        self._shipped: dict[int, tuple[object, object]] = {}

    def _ship(self, value):
        """The object-store reference of ``value`` (put once per object); CacheEntries (shared
        storage) go as they are, paths only."""
        if value is None or isinstance(value, CacheEntries):
            return value
        if id(value) not in self._shipped:  # the value is kept so that its id stays its own
            self._shipped[id(value)] = (value, self.pool.put(
                value if isinstance(value, dict) else dict(value)))
        return self._shipped[id(value)][1]

    def features(self, cache, paths: Sequence, on_file: Callable | None = None,
                 cancel=None) -> None:
        """Extract the features of ``paths`` that ``cache`` (a FeatureCache) lacks as tasks;
        with shared storage, training tasks then read them from ``cache``'s folder.
        TrainingCancelled when ``cancel`` is set first; FillError as FeatureCache.fill."""
        with _as_training_cancel("feature extraction"):
            extract_on_ray(self.pool, cache, paths, storage=self.storage, on_file=on_file,
                           cancel=cancel)
        if self.storage == "shared":
            self._shared_features = CacheEntries({p: cache.entry_path(p) for p in paths},
                                                 cache.fingerprint)

    def variants(self, caches: Sequence, paths: Sequence, on_file: Callable | None = None,
                 cancel=None):
        """path -> the channel variants of ``paths`` (model.training.variants.variant_caches'
        caches), the missing ones rendered as tasks: the arrays (ship), or CacheEntries the
        workers read (shared). TrainingCancelled when ``cancel`` is set first."""
        from ser_studio.model.training.variants import load_variants

        with _as_training_cancel("channel variants"):
            render_on_ray(self.pool, caches, paths, storage=self.storage, on_file=on_file,
                          cancel=cancel)
        if self.storage == "shared":
            return CacheEntries({p: [c.entry_path(p) for c in caches] for p in paths},
                                [c.fingerprint for c in caches])
        return load_variants(caches, paths, cancel=cancel)

    def submitted(self, key) -> bool:
        """Whether the networks of ``key`` (a fold index; 0: the final model) are submitted
        and not yet collected."""
        return key in self._refs

    def submit(self, key, jobs: Sequence[dict], combine: Callable) -> None:
        """Start one task per job (train_fold's keyword arguments); ``combine(results)``
        makes the fold's TrainedModel of them when it is collected."""
        refs = []
        for i, job in enumerate(jobs):
            self._relays[(key, i)] = job.get("progress")
            remote = {k: v for k, v in job.items() if k not in _SHIPPED + _LOCAL}
            features = (self._shared_features if self._shared_features is not None
                        else self._ship(job["features"]))
            refs.append(self.pool.submit((key, i), _train_task, remote, features,
                                         self._ship(job.get("variants"))))
        self._refs[key] = (refs, combine)
        log.info("Ray: fold %s submitted as %d task(s)", key, len(refs))

    def collect(self, key, cancel=None) -> TrainedModel:
        """The TrainedModel of ``key`` once its tasks are done; TrainingCancelled (every
        outstanding task cancelled) when ``cancel`` is set first."""
        refs, combine = self._refs.pop(key)
        try:
            with _as_training_cancel("training"):
                results = self.pool.wait(refs, self._deliver, cancel)
        except TrainingCancelled:
            self._refs.clear()
            raise
        self.hosts.update(host for _, host in results)
        return combine([trained for trained, _ in results])

    def _deliver(self, key: tuple, event) -> None:
        relay = self._relays.get(key)
        if relay is not None:
            relay(event)

    def record(self) -> dict:
        """What run.json and metrics.json keep of the cluster's work: its address and nodes
        (host, CPUs, GPUs), the tasks submitted and the hosts that trained."""
        info = self.info
        return {"address": info.address if info else None, "storage": self.storage,
                "nodes": [dict(n) for n in info.nodes] if info else [],
                "tasks": self.pool.submitted, "hosts": sorted(self.hosts)}


@contextlib.contextmanager
def training_runner(address: str | None, cpus: int = 1, retries: int = 2,
                    memory_mb: int = 0, storage: str = "ship") -> Iterator[object]:
    """``train --ray ADDRESS``: the runner that run_cross_validation takes
    (model.cluster.training.RayTrainer with ``storage``) for the ``with`` block, or None when
    ``address`` asks for no cluster (``wants_ray``)."""
    if not wants_ray(address):
        yield None
        return
    with cluster(address, cpus, retries, memory_mb) as (info, pool):
        log.info("training on Ray cluster %s", info.describe())
        try:
            yield RayTrainer(pool, info, storage)
        finally:  # a run cancelled between two folds leaves the later folds' tasks running
            pool.cancel_all()
