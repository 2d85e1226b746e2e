"""``--ray ADDRESS`` (model/cluster): a real private Ray runtime on this machine (started once
for the module, 2 CPUs, shut down at the end; nothing talks to another address) runs a small
synthetic extract and train, compared with local runs; progress items reach the driver while a
task runs; a task whose worker is killed is retried (bounded); a cancelled run resumes; an
unreachable address and a missing Ray give clear errors."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import ray

from ser_studio.model.cli import train as train_cli
from ser_studio.model.cli.main import main
from ser_studio.model.cluster.connect import ClusterError, connect, require_ray
from ser_studio.model.cluster.tasks import TaskPool


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    """One private Ray runtime for the module; the CLI's ``--ray local`` joins it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    # the task functions below reach the workers by value (pytest imports this file under a
    # name the workers cannot import)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A synthetic IEMOCAP layout half the size of ``synth_corpus``: 80 files, 10 speakers."""
    from ser_studio.model.corpora.synth import SynthSpec, write_synthetic_iemocap

    root = tmp_path_factory.mktemp("ray_corpus")
    write_synthetic_iemocap(root, SynthSpec(per_speaker_per_emotion=2, seed=1))
    return root


def _entries(cache: Path) -> dict[str, str]:
    """Cache entry (relative path) -> the sha1 of its tensor, from its metadata."""
    from safetensors import safe_open

    found = {}
    for path in sorted(cache.rglob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            found[path.relative_to(cache).as_posix()] = f.metadata()["tensor_sha1"]
    return found


@pytest.mark.parametrize("storage", ["ship", "shared"])
def test_extract_through_ray_writes_the_entries_a_local_extract_writes(corpus, tmp_path,
                                                                        capsys, storage):
    assert main(["extract", "--corpus", str(corpus), "--cache", str(tmp_path / "local"),
                 "--no-progress"]) == 0
    assert main(["extract", "--corpus", str(corpus), "--cache", str(tmp_path / "ray"),
                 "--no-progress", "--ray", "local", "--ray-chunk", "50",
                 "--ray-storage", storage]) == 0
    out = capsys.readouterr().out
    local, remote = _entries(tmp_path / "local"), _entries(tmp_path / "ray")
    assert len(local) == 80 and remote == local
    assert "misses 80" in out.splitlines()[-1]
    # a second run finds everything cached and sends no file out
    assert main(["extract", "--corpus", str(corpus), "--cache", str(tmp_path / "ray"),
                 "--no-progress", "--ray", "local"]) == 0
    assert "hits 80, misses 0" in capsys.readouterr().out


_TRAIN = ["--epochs", "2", "--hidden", "16", "--max-folds", "2", "--progress-json"]


def _train(corpus: Path, out: Path, capsys, *options) -> tuple[int, list[dict]]:
    code = main(["train", "--corpus", str(corpus), "--out", str(out), *_TRAIN, *options])
    # every line is an event: Ray's own notices (a worker died) go to stderr
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _steps(events: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """The (kind, fold) of each event but the epochs and "extract" (sent by elapsed time) in
    order, and the (kind, fold, member, epoch) of the epochs sorted (the members of a fold
    train at once on a cluster)."""
    epochs = [(e["event"], e.get("fold"), e.get("member"), e.get("epoch")) for e in events
              if e["event"] in ("epoch", "final_epoch")]
    return ([(e["event"], e.get("fold")) for e in events
             if e["event"] not in ("extract", "epoch", "final_epoch")], sorted(epochs, key=repr))


def test_train_through_ray_equals_the_local_run(corpus, tmp_path, capsys):
    """An ensemble of 2 (no final model: the resumed run below trains one on the cluster):
    2 folds x 2 members = 4 tasks; same folds, speakers, member validation speakers, best
    epochs and metrics, the same progress events, and a complete run folder."""
    code, local = _train(corpus, tmp_path / "local", capsys, "--ensemble", "2", "--no-final")
    assert code == 0
    code, remote = _train(corpus, tmp_path / "ray", capsys, "--ensemble", "2", "--no-final",
                          "--ray", "local")
    assert code == 0
    assert _steps(remote) == _steps(local)
    assert sum(e["event"] == "epoch" for e in remote) >= 8
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("local", "ray"))
    assert len(b["folds"]) == 2
    for fa, fb in zip(a["folds"], b["folds"]):
        for key in ("fold", "test_speakers", "val_speakers", "train_speakers",
                    "member_val_speakers", "member_best_epochs", "best_epoch"):
            assert fb[key] == fa[key], key
        assert abs(fb["metrics"]["ua"] - fa["metrics"]["ua"]) <= 0.005
    run = json.loads((tmp_path / "ray" / "run.json").read_text())["run"]
    assert run["ray"] == "local"
    assert run["cluster"]["tasks"] == 4 and run["cluster"]["nodes"][0]["cpus"] == 2
    assert b["cluster"] == run["cluster"]
    for name in ("report.md", "fold_1/model.safetensors",
                 "fold_2/model.safetensors", "curves_fold2.png", "confusion.png"):
        assert (tmp_path / "ray" / name).is_file(), name


class _StopInFold2(train_cli.JsonLines):
    """The JSON-lines display, sending this process SIGTERM (as a user would) at fold 2's
    first epoch, while the driver waits for fold 2's task."""

    def __call__(self, event) -> None:
        super().__call__(event)
        if event.kind == "epoch" and event.fold == 2 and event.epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("storage", ["ship", "shared"])
def test_features_and_channel_variants_made_on_ray_equal_the_local_ones(corpus, tmp_path,
                                                                        capsys, storage):
    """Cold caches on both sides: through Ray the features are extracted and the channel
    variants rendered as tasks (shared: the workers write the cache and read it back for
    training), and every entry, the fold's speakers and its UA equal a local run's."""
    options = ["--ensemble", "2", "--no-final", "--channel-variants", "2",
               "--set", "train.channel.prob=1.0"]  # fold 2's variants render while fold 1 trains
    code, _ = _train(corpus, tmp_path / "local", capsys, *options,
                     "--cache", str(tmp_path / "local-cache"))
    assert code == 0
    code, events = _train(corpus, tmp_path / "ray", capsys, *options,
                          "--cache", str(tmp_path / "ray-cache"), "--ray", "local",
                          "--ray-storage", storage)
    assert code == 0
    local, remote = _entries(tmp_path / "local-cache"), _entries(tmp_path / "ray-cache")
    per_folder = Counter(k.split("/")[1] for k in local if k.startswith("variants/"))
    files = sorted(per_folder.values())  # 2 folds x 2 variants: each fold's training files
    assert len(per_folder) == 4 and files[0] == files[1] and files[2] == files[3]
    assert len(local) == 80 + sum(files) and remote == local
    done = [e for e in events if e["event"] == "extract" and e["stage"] == "channel variants"]
    assert {e["files_total"] for e in done} == set(files)
    assert done[-1]["files_done"] == done[-1]["files_total"]
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("local", "ray"))
    for fa, fb in zip(a["folds"], b["folds"], strict=True):
        assert fb["member_val_speakers"] == fa["member_val_speakers"]
        assert abs(fb["metrics"]["ua"] - fa["metrics"]["ua"]) <= 0.005
    assert _steps(events)[0] == [("start", None), ("fold_start", 1), ("fold_end", 1),
                                 ("fold_start", 2), ("fold_end", 2), ("done", None)]
    run = json.loads((tmp_path / "ray" / "run.json").read_text())["run"]
    assert run["ray_storage"] == storage and run["cluster"]["storage"] == storage
    assert run.get("cache") == (str((tmp_path / "ray-cache").resolve())
                                if storage == "shared" else None)
    # features (80 files, 16 a task), each fold's variants (8 files a task), 2 x 2 networks
    assert run["cluster"]["tasks"] == 5 + sum(-(-n // 8) for n in files[::2]) + 4


def test_a_cancelled_ray_run_keeps_fold_1_and_resume_finishes_it(corpus, tmp_path,
                                                                  capsys, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(train_cli, "JsonLines", _StopInFold2)
    code, events = _train(corpus, out, capsys, "--ray", "local")
    assert code == train_cli.EXIT_CANCELLED
    summary = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1] and summary["cancelled"]
    assert summary["final_model"] is None and not (out / "fold_2").exists()
    assert events[-1]["event"] == "done" and events[-1]["cancelled"]
    monkeypatch.undo()
    # run.json says --ray local: the resumed run trains fold 2 and the final model there
    code = main(["train", "--resume", str(out), "--progress-json"])
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2] and not summary["cancelled"]
    assert summary["cluster"]["tasks"] == 2 and (out / "model.safetensors").is_file()


class _StopInFold2Variants(train_cli.JsonLines):
    """SIGTERM as fold 2's channel variants start rendering as tasks (fold 1's networks are
    submitted, no fold is collected yet)."""

    renderings = 0

    def __call__(self, event) -> None:
        super().__call__(event)
        if event.kind == "extract" and event.stage == "channel variants" and \
                event.files_done == 0:
            self.renderings += 1
            if self.renderings == 2:
                os.kill(os.getpid(), signal.SIGTERM)


def test_a_run_cancelled_while_variants_render_on_ray_resumes(corpus, tmp_path, capsys,
                                                              monkeypatch):
    """Ctrl+C before any fold is collected: the outstanding tasks are cancelled, the run folder
    says cancelled with no fold, and --resume trains it all."""
    out = tmp_path / "run"
    options = ["--no-final", "--channel-variants", "1", "--cache", str(tmp_path / "cache")]
    monkeypatch.setattr(train_cli, "JsonLines", _StopInFold2Variants)
    code, events = _train(corpus, out, capsys, *options, "--ray", "local")
    assert code == train_cli.EXIT_CANCELLED
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["folds"] == [] and summary["cancelled"]
    assert events[-1]["event"] == "done" and events[-1]["cancelled"]
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--progress-json"]) == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2] and not summary["cancelled"]


def _report_and_wait(report, flag: str) -> bool:
    """A task that reports, then waits (up to 60 s) for the driver to answer with a file:
    it ends early only if the report reached the driver while it ran."""
    report("started")
    for _ in range(600):
        if Path(flag).exists():
            return True
        time.sleep(0.1)
    return False


def test_progress_reaches_the_driver_while_the_task_runs(tmp_path):
    pool = TaskPool(cpus=1)
    flag = tmp_path / "answer"
    got = []

    def on_item(key, item):
        got.append((key, item))
        flag.touch()

    start = time.monotonic()
    assert pool.wait([pool.submit("a", _report_and_wait, str(flag))], on_item) == [True]
    assert got == [("a", "started")] and time.monotonic() - start < 55


def _count(report, n: int) -> int:
    for i in range(n):
        report(i)
    return n


def test_items_of_tasks_another_wait_collects_are_held_for_it_in_order():
    """Two kinds of task side by side (a fold's training while the next fold's variants are
    rendered): each wait sees only its own tasks' items, the others' come at their own wait."""
    pool = TaskPool(cpus=1)
    first = [pool.submit(("fold", i), _count, 3 + 2 * i) for i in range(2)]
    pool.wait([pool.submit("warm", _count, 0)], lambda k, i: None)
    time.sleep(1.0)  # the first tasks' items are in the queue by now
    got_second = []
    second = pool.submit(("variants", 0), _count, 1)
    assert pool.wait([second], lambda k, i: got_second.append((k, i))) == [1]
    assert got_second == [(("variants", 0), 0)]
    got_first = []
    assert pool.wait(first, lambda k, i: got_first.append((k, i))) == [3, 5]
    assert [i for k, i in got_first if k == ("fold", 0)] == [0, 1, 2]
    assert [i for k, i in got_first if k == ("fold", 1)] == [0, 1, 2, 3, 4]


def _sleep(report, seconds: float) -> str:
    report("sleeping")
    time.sleep(seconds)
    return "slept"


def test_cancel_stops_the_outstanding_tasks(tmp_path):
    import threading

    from ser_studio.model.cluster.tasks import TasksCancelled

    pool, cancel = TaskPool(cpus=1), threading.Event()
    refs = [pool.submit(i, _sleep, 60.0) for i in range(2)]
    start = time.monotonic()
    with pytest.raises(TasksCancelled, match="2 task"):
        pool.wait(refs, lambda key, item: cancel.set(), cancel)
    for ref in refs:
        with pytest.raises(ray.exceptions.RayError):  # TaskCancelledError / WorkerCrashedError
            ray.get(ref, timeout=30)
    assert time.monotonic() - start < 45


def _die_once(report, marker: str) -> str:
    """Reports its process id, then waits to be killed; run again (marker exists), returns."""
    if Path(marker).exists():
        return "second run"
    Path(marker).touch()
    report(os.getpid())
    time.sleep(60)
    return "not killed"


def _kill(_key, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("retries, result", [(1, "second run"), (0, None)])
def test_a_task_whose_worker_is_killed_is_retried_within_the_bound(tmp_path, retries, result):
    pool = TaskPool(cpus=1, max_retries=retries)
    ref = pool.submit("t", _die_once, str(tmp_path / "ran"))
    if result is not None:
        assert pool.wait([ref], _kill) == [result]
    else:
        with pytest.raises(ray.exceptions.RayError):
            pool.wait([ref], _kill)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["extract", "train"])
def test_an_unreachable_address_is_named_within_30_s(corpus, tmp_path, capsys, command):
    address = f"127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    code = main([command, "--corpus", str(corpus), "--cache", str(tmp_path / "c"),
                 *(["--out", str(tmp_path / "run")] if command == "train" else []),
                 "--ray", address])
    assert code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert f"Ray cluster at {address} is not reachable" in err


def test_a_malformed_address_and_another_cluster_are_refused():
    with pytest.raises(ClusterError, match="expected local, auto, HOST:PORT"):
        connect("somewhere")
    with socket.socket() as server:  # answers TCP, but is not this process's cluster
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ClusterError, match=f"{address}: this process is connected"):
            connect(address)


def test_without_ray_a_cluster_says_how_to_install_it(monkeypatch, corpus, tmp_path,
                                                      capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    with pytest.raises(ClusterError, match=r'pip install "ser-studio\[cluster\]"'):
        require_ray()
    assert main(["extract", "--corpus", str(corpus), "--cache", str(tmp_path),
                 "--no-progress", "--ray", "local"]) == 2
    assert 'ser-studio[cluster]' in capsys.readouterr().err
    assert main(["extract", "--corpus", str(corpus), "--cache", str(tmp_path),
                 "--no-progress", "--ray", "none"]) == 0  # here, without Ray


@pytest.fixture
def head(tmp_path):
    """A Ray head started by hand (``ray start --head --block``) on this machine, 2 CPUs;
    stopped (SIGTERM, then kill) at the end. Yields its HOST:PORT on 127.0.0.1."""
    import subprocess
    import tempfile

    port = _closed_port()
    temp = tempfile.mkdtemp(prefix="rayhead")  # short: Ray's socket paths must stay short
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen([str(ray_cli), "start", "--head", "--port", str(port),
                             "--num-cpus", "2", "--include-dashboard", "false",
                             "--disable-usage-stats", "--temp-dir", temp, "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(120):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_train_through_a_head_started_by_hand_equals_the_local_run(corpus, tmp_path, capsys,
                                                                    head):
    """Another process joins the head (this one holds the module's private runtime), with
    the token ``ray start`` keeps in ~/.ray and no RAY_AUTH_MODE: the same fold, speakers and
    metrics as a local run."""
    import subprocess

    one = ["--max-folds", "1", "--no-final", "--cache", str(tmp_path / "cache")]
    code, _ = _train(corpus, tmp_path / "local", capsys, *one)
    assert code == 0
    done = subprocess.run([sys.executable, "-m", "ser_studio.main", "train", "--corpus",
                           str(corpus), "--out", str(tmp_path / "head"), *_TRAIN, *one,
                           "--ray", head], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"})
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("local", "head"))
    for key in ("test_speakers", "val_speakers", "best_epoch", "history"):
        assert b["folds"][0][key] == a["folds"][0][key], key
    assert abs(b["folds"][0]["metrics"]["ua"] - a["folds"][0]["metrics"]["ua"]) <= 0.005
    assert b["cluster"]["address"] == head and b["cluster"]["tasks"] == 1


def _resources(report) -> dict:
    import torch

    return {**ray.get_runtime_context().get_assigned_resources(),
            "threads": torch.get_num_threads()}


@pytest.mark.parametrize("cpus, memory_mb", [(1, 0), (2, 64)])
def test_a_task_declares_its_cpus_and_memory_and_uses_its_cpus_as_threads(cpus, memory_mb):
    pool = TaskPool(cpus=cpus, memory_mb=memory_mb)
    got = pool.wait([pool.submit(0, _resources)], lambda key, item: None)[0]
    assert got["CPU"] == cpus and got["threads"] == cpus
    assert got.get("memory", 0) == memory_mb * 1024 * 1024


def test_robustness_scores_folds_on_ray_as_it_does_here(corpus, tmp_path, capsys, caplog):
    from bench import robustness

    code, _ = _train(corpus, tmp_path / "run", capsys, "--no-final", "--epochs", "1")
    assert code == 0
    base = ["--run", str(tmp_path / "run"), "--corpus", str(corpus), "--conditions",
            "as recorded", "gain -12 dB"]
    robustness.main([*base, "--json", str(tmp_path / "here.json")])
    robustness.main([*base, "--json", str(tmp_path / "ray.json"), "--ray", "local",
                     "--save-folds", str(tmp_path / "folds")])
    here, remote = (json.loads((tmp_path / n).read_text()) for n in ("here.json", "ray.json"))
    assert remote == here and len(list((tmp_path / "folds").glob("fold_*.json"))) == 2
    assert "scoring 2 folds on Ray cluster local" in caplog.text


def _task_workers() -> list[int]:
    """Process ids of the Ray workers running one of our tasks now (title ``ray::_run``)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_run"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


class _KillTheWorker(train_cli.JsonLines):
    """The JSON-lines display, killing (SIGKILL) the worker that trains fold 1 once it runs."""

    killed: list[int] = []

    def __call__(self, event) -> None:
        super().__call__(event)
        if event.kind == "fold_start" and not self.killed:
            for _ in range(600):
                pids = _task_workers()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    self.killed.append(pids[0])
                    return
                time.sleep(0.05)


def test_a_training_task_whose_worker_dies_is_retried_and_the_run_completes(
        corpus, tmp_path, capsys, monkeypatch):
    one = ["--max-folds", "1", "--no-final"]
    code, _ = _train(corpus, tmp_path / "local", capsys, *one)
    assert code == 0
    monkeypatch.setattr(train_cli, "JsonLines", _KillTheWorker)
    code, _ = _train(corpus, tmp_path / "ray", capsys, *one, "--ray", "local",
                     "--ray-retries", "1")
    assert code == 0 and _KillTheWorker.killed
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("local", "ray"))
    assert b["folds"][0]["history"] == a["folds"][0]["history"]
    assert b["folds"][0]["metrics"]["ua"] == a["folds"][0]["metrics"]["ua"]
