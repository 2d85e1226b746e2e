"""``--ray ADDRESS`` and its companions, the same on every command (extract, train): the
options, and opening the cluster they name for one command.

``--ray`` absent (or ``none``): everything runs on this machine, as without Ray; Ray is only
imported once an address is given (model.cluster.connect says how to install it if missing).
"""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from ser_studio.model.cluster.connect import NO_RAY, ClusterInfo, connect, disconnect
from ser_studio.model.config.run import RUN_FILE, read_sections, write_run_file

log = logging.getLogger(__name__)

STORAGES = ("ship", "shared")  # how extracted features reach the cache (model.cluster.extract)
RAY_HELP = ("run the work as Ray tasks on a cluster: local (a private Ray runtime on this "
            "machine), auto (the cluster `ray start` runs here), HOST:PORT (the head's GCS "
            "address) or ray://HOST:PORT; none: here, without Ray")


def add_ray_options(parser) -> None:
    """--ray ADDRESS, --ray-cpus N (CPUs, and torch threads, per task), --ray-retries,
    --ray-memory and --ray-storage."""
    parser.add_argument("--ray", metavar="ADDRESS", default=None, help=RAY_HELP)
    parser.add_argument("--ray-cpus", type=int, default=1, metavar="N",
                        help="CPUs each Ray task declares and uses as torch threads "
                             "(default 1)")
    parser.add_argument("--ray-retries", type=int, default=2, metavar="K",
                        help="runs again of a Ray task whose worker died (default 2)")
    parser.add_argument("--ray-memory", type=int, default=0, metavar="MB",
                        help="memory each Ray task declares, so Ray places no more tasks "
                             "on a node than its memory holds (default: none declared)")
    parser.add_argument("--ray-storage", choices=STORAGES, default=None,
                        help="ship (default): the arrays travel through Ray's object store; "
                             "shared: --cache is a folder every node mounts at the same path, "
                             "where workers write and read features and channel variants")


def wants_ray(address: str | None) -> bool:
    """Whether ``address`` asks for a cluster (not absent, not ``none``/``off``)."""
    return bool(address) and address.strip().lower() not in NO_RAY


@contextlib.contextmanager
def cluster(address: str, cpus: int = 1, retries: int = 2, memory_mb: int = 0
            ) -> Iterator[tuple[ClusterInfo, object]]:
    """Connected to ``address`` for the ``with`` block: (ClusterInfo, TaskPool with ``cpus``,
    ``memory_mb`` (0: none declared) per task and ``retries``); disconnected afterwards (a
    ``local`` runtime stops) unless this process was connected before (a test's runtime).
    ClusterError naming the address when it cannot be reached; ValueError for a count out of
    range."""
    if cpus < 1 or retries < 0 or memory_mb < 0:
        raise ValueError(f"--ray-cpus must be >= 1, --ray-retries and --ray-memory >= 0, got "
                         f"{cpus}, {retries} and {memory_mb}")
    ray = sys.modules.get("ray")  # not imported before connect: it reads its auth mode once
    joined = ray is None or not ray.is_initialized()
    info = connect(address)
    try:
        from ser_studio.model.cluster.tasks import TaskPool

        yield info, TaskPool(cpus=cpus, memory_mb=memory_mb, max_retries=retries)
    finally:
        if joined:
            disconnect()


def record_cluster(run_dir: Path, runner) -> None:
    """Keep ``runner.record()`` (address, nodes, tasks, hosts) in ``run_dir``'s run.json under
    "run" -> "cluster" (nothing without a runner or a run.json)."""
    path = Path(run_dir) / RUN_FILE
    if runner is None or not path.is_file():
        return
    sections = read_sections(path)
    sections.setdefault("run", {})["cluster"] = runner.record()
    write_run_file(Path(run_dir), sections)
