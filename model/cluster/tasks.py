"""Units of work as Ray tasks: declared resources, bounded retries, progress relayed to the
driver while they run, and cancellation.

A task is a module-level function ``fn(report, *args)``; ``report(item)`` sends ``item`` (any
picklable value, e.g. a model.training.progress.ProgressEvent) to the driver through a Ray queue
(an actor with no CPU of its own), where ``TaskPool.wait`` hands it to ``on_item(key, item)``
as it arrives; an item of a task that another ``wait`` will collect (tasks of two kinds, or of
several folds, run side by side) is held, in order, until that ``wait``. Inside a task torch
uses as many threads as the task declared CPUs. A task whose worker process dies is run again
up to ``max_retries`` times (Ray's own retry; its progress items then come again from the
start); an exception the function raises is not retried, it reaches the driver.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from ser_studio.model.cluster.connect import require_ray

log = logging.getLogger(__name__)


class TasksCancelled(Exception):
    """``cancel`` was set while waiting; every outstanding task of the pool was cancelled."""


def _run(fn: Callable, key, queue, cpus: int, *args):
    """The body of every task: torch threads = the task's CPUs, ``report`` into the queue."""
    import torch

    torch.set_num_threads(max(1, int(cpus)))

    def report(item) -> None:
        queue.put((key, item))

    return fn(report, *args)


@dataclasses.dataclass
class TaskPool:
    """Submits tasks to the connected cluster (model.cluster.connect.connect first).

    cpus: CPUs each task declares (and the torch threads it uses); memory_mb: memory each task
    declares (0: none declared); max_retries: runs again of a task whose worker died.
    ``submitted`` counts the tasks submitted. Keys name tasks: one key per outstanding
    task."""

    cpus: int = 1
    memory_mb: int = 0
    max_retries: int = 2
    submitted: int = 0

    def __post_init__(self) -> None:
        ray = require_ray()
        from ray.util.queue import Queue

        self._ray = ray
        self._remote = ray.remote(_run)  # one remote function: exported to workers once
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._outstanding: dict = {}  # ObjectRef -> its task's key
        self._held: dict = {}  # key -> progress items waiting for the wait that collects it

    def submit(self, key, fn: Callable, *args):
        """Start ``fn(report, *args)`` as a task; returns its ObjectRef. ObjectRefs among
        ``args`` reach the function as their values (put large shared inputs once with
        ``put``)."""
        options = dict(num_cpus=self.cpus, max_retries=self.max_retries)
        if self.memory_mb:
            options["memory"] = self.memory_mb * 1024 * 1024
        ref = self._remote.options(**options).remote(fn, key, self._queue, self.cpus, *args)
        self.submitted += 1
        self._outstanding[ref] = key
        return ref

    def put(self, value):
        """``value`` in the object store, once, for many tasks."""
        return self._ray.put(value)

    def drain(self, on_item: Callable, keys=None) -> None:
        """Hand every progress item that has arrived to ``on_item(key, item)``: those of
        ``keys`` (None: all), the others held for the wait that collects their task."""
        while not self._queue.empty():
            key, item = self._queue.get(block=False)
            if keys is None or key in keys:
                on_item(key, item)
            else:
                self._held.setdefault(key, []).append(item)

    def wait(self, refs: Sequence, on_item: Callable, cancel=None, poll_s: float = 0.2) -> list:
        """The results of ``refs`` in order, relaying their tasks' progress items meanwhile
        (items that arrived earlier first). TasksCancelled (after ``cancel_all``) once
        ``cancel.is_set()``; a task's own exception is raised as it is (Ray's RayTaskError
        subclasses it)."""
        keys = {self._outstanding.get(ref) for ref in refs}
        for key in keys:
            for item in self._held.pop(key, []):
                on_item(key, item)
        pending = list(refs)
        while pending:
            if cancel is not None and cancel.is_set():
                self.cancel_all()
                raise TasksCancelled(f"{len(pending)} task(s) cancelled")
            _, pending = self._ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            self.drain(on_item, keys)
        self.drain(on_item, keys)
        results = self._ray.get(list(refs))
        for ref in refs:
            self._outstanding.pop(ref, None)
        return results

    def cancel_all(self) -> None:
        """Cancel every task not yet collected (a running one's worker is stopped)."""
        for ref in self._outstanding:
            self._ray.cancel(ref, force=True)
        if self._outstanding:
            log.info("cancelled %d outstanding Ray task(s)", len(self._outstanding))
        self._outstanding.clear()
        self._held.clear()


def node_host() -> str:
    """The address of the node this code runs on (inside a task: the worker's node)."""
    import ray

    return ray.util.get_node_ip_address()

