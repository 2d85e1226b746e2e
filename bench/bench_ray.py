"""The same work locally and through a local Ray runtime (``--ray local``, 2 worker CPUs by
default): feature extraction throughput, a cross-validation run's wall time and their ratio,
and the cost of one Ray task. Prints a table; asserts nothing.

Method: a synthetic IEMOCAP-layout corpus (``--per-cell`` clips per speaker and emotion,
``main.py synth``'s generator) in ``--workdir``. The Ray runtime is started once first (its start
is its own row) and every Ray run joins it. extract: a fresh cache each time, local then Ray.
train: the same ``train`` arguments (logmel, ``--epochs``, ``--max-folds``, ``--ensemble``;
features already cached) locally then through Ray; overhead per task = (Ray wall - local wall)
/ tasks. task: ``--tasks`` empty tasks through model.cluster.tasks.TaskPool, wall per task. On a
2-core machine no speed-up is expected: the Ray run trains networks side by side on the same
cores.

``--compare LOCAL_RUN RAY_RUN``: the same table for two finished ``train`` runs of one recipe
(the shipped one's takes tens of minutes, so they are run as ordinary commands, one after the
other, each from a cold cache; bench/results/ray-2026-12-07 gives them): wall time of each run
(metrics.json's elapsed_s), ratio, overhead in percent and per task, and each fold's UA and
validation speakers side by side.

Usage: OMP_NUM_THREADS=1 python -m bench.bench_ray [--per-cell 4] [--epochs 3] [--max-folds 2]
           [--ensemble 2] [--cpus 2] [--tasks 50] [--workdir DIR]
       python -m bench.bench_ray --compare LOCAL_RUN RAY_RUN
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _timed_main(argv: list[str]) -> float:
    """Wall seconds of ``main.py ARGV`` in this process (its stdout dropped); RuntimeError
    when it fails."""
    from ser_studio.model.cli.main import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"main.py {' '.join(argv)} exited with {code}")
    return time.perf_counter() - start


def _noop(report) -> None:
    return None


def _task_cost(tasks: int) -> float:
    """Wall seconds per empty task, ``tasks`` submitted at once and collected."""
    import ray

    from ser_studio.model.cluster.tasks import TaskPool

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need no bench/
    pool = TaskPool(cpus=1)
    pool.wait([pool.submit(0, _noop)], lambda k, i: None)  # workers warm
    start = time.perf_counter()
    pool.wait([pool.submit(i, _noop) for i in range(tasks)], lambda k, i: None)
    return (time.perf_counter() - start) / tasks


def run(args) -> list[tuple[str, str]]:
    """The table's rows: (what, figure)."""
    import ray

    from ser_studio.model.corpora.synth import SynthSpec, write_synthetic_iemocap

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ray_"))
    corpus = work / "corpus"
    if not corpus.exists():
        write_synthetic_iemocap(corpus, SynthSpec(per_speaker_per_emotion=args.per_cell, seed=0))
    rows = []
    start = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    rows.append(("Ray runtime start", f"{time.perf_counter() - start:.1f} s"))
    try:
        walls = {}
        for name, extra in (("local", []), ("ray", ["--ray", "local"])):
            shutil.rmtree(work / f"cache_{name}", ignore_errors=True)
            walls[name] = _timed_main(["extract", "--corpus", str(corpus), "--no-progress",
                                       "--cache", str(work / f"cache_{name}"), *extra])
        files = len(list(corpus.rglob("*.wav")))
        for name in walls:
            rows.append((f"extract {name}", f"{walls[name]:.1f} s, {files / walls[name]:.0f} "
                                            f"files/s"))
        train = ["train", "--corpus", str(corpus), "--cache", str(work / "cache_local"),
                 "--epochs", str(args.epochs), "--max-folds", str(args.max_folds),
                 "--ensemble", str(args.ensemble), "--hidden", "32"]
        local = _timed_main([*train, "--out", str(work / "run_local")])
        remote = _timed_main([*train, "--out", str(work / "run_ray"), "--ray", "local"])
        tasks = json.loads((work / "run_ray" / "run.json").read_text())["run"]["cluster"]["tasks"]
        rows += [("train local", f"{local:.1f} s"), ("train --ray local", f"{remote:.1f} s"),
                 ("wall-time ratio ray / local", f"{remote / local:.2f}"),
                 ("tasks", str(tasks)),
                 ("overhead per training task", f"{(remote - local) / tasks:+.2f} s"),
                 ("empty task, wall each", f"{_task_cost(args.tasks) * 1000:.1f} ms")]
    finally:
        ray.shutdown()
    return rows


def compare(local_dir: Path, ray_dir: Path) -> list[tuple[str, str]]:
    """The table's rows for two finished runs of the same recipe, local and through Ray."""
    local, remote = (json.loads((Path(d) / "metrics.json").read_text())
                     for d in (local_dir, ray_dir))
    if local["configs"] != remote["configs"] or local["protocol"] != remote["protocol"]:
        raise SystemExit(f"{local_dir} and {ray_dir} are not runs of the same recipe")
    cluster = remote.get("cluster") or {}
    tasks = cluster.get("tasks") or 0
    wall_l, wall_r = local["elapsed_s"], remote["elapsed_s"]
    rows = [("recipe", f"{local['protocol']}, {len(local['folds'])} folds, ensemble "
                       f"{local['configs']['model'].get('ensemble', 1)}, "
                       f"{local['configs']['train']['channel']['variants']} channel variants"),
            ("train local", f"{wall_l:.0f} s"),
            ("train --ray", f"{wall_r:.0f} s ({cluster.get('address')}, "
                            f"{sum(n.get('cpus', 0) for n in cluster.get('nodes', []))} CPUs)"),
            ("wall-time ratio ray / local", f"{wall_r / wall_l:.3f}"),
            ("overhead", f"{100 * (wall_r - wall_l) / wall_l:+.1f} % of the local wall time"),
            ("tasks", str(tasks)),
            ("overhead per task", f"{(wall_r - wall_l) / max(tasks, 1):+.2f} s")]
    for a, b in zip(local["folds"], remote["folds"]):
        same = (a["test_speakers"] == b["test_speakers"]
                and a.get("member_val_speakers") == b.get("member_val_speakers"))
        rows.append((f"fold {a['fold']} UA local / ray", f"{a['metrics']['ua']:.3f} / "
                     f"{b['metrics']['ua']:.3f} (diff {b['metrics']['ua'] - a['metrics']['ua']:+.3f}"
                     f"; speakers {'same' if same else 'DIFFERENT'})"))
    rows.append(("mean UA local / ray", f"{local['aggregate']['ua']['mean']:.3f} / "
                                        f"{remote['aggregate']['ua']['mean']:.3f}"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-cell", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-folds", type=int, default=2)
    parser.add_argument("--ensemble", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("LOCAL_RUN", "RAY_RUN"),
                        help="print the table for two finished runs instead of running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = compare(*args.compare) if args.compare else run(args)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value")
    for what, value in rows:
        print(f"{what.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
