"""bench/bench_ray.py --compare: the table of two finished runs of one recipe."""
from __future__ import annotations

import json

import pytest

from bench.bench_ray import compare


def _summary(elapsed: float, uas: list[float], cluster=None, epochs: int = 40) -> dict:
    folds = [{"fold": i + 1, "test_speakers": [f"s{i}"], "member_val_speakers": [[f"v{i}"]],
              "metrics": {"ua": ua}} for i, ua in enumerate(uas)]
    return {"protocol": "grouped-k-fold", "elapsed_s": elapsed, "folds": folds,
            "configs": {"model": {"ensemble": 5},
                        "train": {"epochs": epochs, "channel": {"variants": 4}}},
            "aggregate": {"ua": {"mean": sum(uas) / len(uas)}},
            **({"cluster": cluster} if cluster else {})}


def _write(folder, summary):
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder


def test_compare_gives_ratio_overhead_and_fold_figures(tmp_path):
    local = _write(tmp_path / "local", _summary(1000.0, [0.7, 0.6]))
    cluster = {"address": "local", "nodes": [{"cpus": 2}], "tasks": 50}
    remote = _write(tmp_path / "ray", _summary(1030.0, [0.7, 0.625], cluster))
    rows = dict(compare(local, remote))
    assert rows["wall-time ratio ray / local"] == "1.030"
    assert rows["overhead"].startswith("+3.0 %")
    assert rows["overhead per task"] == "+0.60 s"
    assert rows["fold 2 UA local / ray"] == "0.600 / 0.625 (diff +0.025; speakers same)"
    assert "2 CPUs" in rows["train --ray"]


def test_compare_refuses_runs_of_two_recipes(tmp_path):
    local = _write(tmp_path / "local", _summary(1000.0, [0.7]))
    remote = _write(tmp_path / "ray", _summary(900.0, [0.7], epochs=10))
    with pytest.raises(SystemExit, match="not runs of the same recipe"):
        compare(local, remote)
