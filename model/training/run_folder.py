"""A run folder's own files: what an earlier run wrote is cleared, and the summary
(metrics.json; layout in model.evaluation.report's docstring), the plots and report.md are
written once the folds are done. ``run`` is the run's model.training.fold_run.FoldRun (not
imported: fold_run imports this module for the file names)."""
from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from ser_studio.model.config.schema import config_to_dict
from ser_studio.model.corpora.multi import run_entry
from ser_studio.model.evaluation.plots import plot_confusion, plot_per_speaker
from ser_studio.model.evaluation.report import write_report
from ser_studio.model.training.folds import Fold
from ser_studio.model.training.progress import ProgressEvent, done_figures

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "model.safetensors"
METRICS_NAME = "metrics.json"


def clear_previous_run(out_dir: Path, keep: Sequence[int] = ()) -> None:
    """Remove what an earlier run wrote into ``out_dir`` (only the names a run writes), so a
    rerun with fewer folds or without a final model leaves no stale files behind. The folds
    numbered in ``keep`` (a resumed run's) keep their checkpoints and curves."""
    names = [METRICS_NAME, "report.md", "per_speaker.png", "confusion.png", CHECKPOINT_NAME,
             Path(CHECKPOINT_NAME).with_suffix(".json").name]
    stale = [out_dir / n for n in names if (out_dir / n).is_file()]
    kept = {f"fold_{k}" for k in keep}
    stale += [p for p in sorted(out_dir.glob("curves_fold*.png"))
              if p.name not in {f"curves_fold{k}.png" for k in keep}]
    stale += [p / n for p in sorted(out_dir.glob("fold_*")) if p.is_dir() and p.name not in kept
              for n in (CHECKPOINT_NAME, Path(CHECKPOINT_NAME).with_suffix(".json").name)
              if (p / n).is_file()]
    if stale:
        log.warning("%s: replacing the outputs of an earlier run (%d files)", out_dir, len(stale))
    for path in stale:
        path.unlink()
    for folder in out_dir.glob("fold_*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def run_summary(run, protocol: str, all_folds: list[Fold], folds_done: list[dict],
             aggregate: dict | None, cancelled: bool, final_path: Path | None) -> dict:
    """The run summary (metrics.json; layout in model.evaluation.report's docstring), without
    plots."""
    return {
        "protocol": protocol,
        "corpus": run_entry(run.corpus),
        "configs": {"frontend": config_to_dict(run.frontend_cfg),
                    "model": (folds_done[-1]["model_config"] if folds_done
                              else config_to_dict(run.model_cfg)),
                    "train": config_to_dict(run.train_cfg)},
        "labels": run.labels, "folds_planned": [f.to_dict() for f in all_folds],
        "folds": folds_done,
        "aggregate": aggregate,
        "final_model": CHECKPOINT_NAME if final_path else None, "cancelled": cancelled,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def write_outputs(run, summary: dict, folds_done: list[dict]) -> None:
    """Plots, metrics.json and report.md of the run folder (``summary`` gains "plots")."""
    plots = {f"curves_fold{f['fold']}": f"curves_fold{f['fold']}.png" for f in folds_done}
    agg = summary["aggregate"]
    if agg:
        plot_per_speaker(agg["per_speaker"], run.out_dir / "per_speaker.png")
        plot_confusion(agg["confusion"], agg["labels"], run.out_dir / "confusion.png")
        plots.update(per_speaker="per_speaker.png", confusion="confusion.png")
    summary["plots"] = plots
    (run.out_dir / METRICS_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    write_report(run.out_dir, summary)


def done_event(run, summary: dict) -> ProgressEvent:
    final = summary["final_model"]
    return ProgressEvent(
        "done", run_dir=str(run.out_dir), model=str(run.out_dir / final) if final else None,
        report=str(run.out_dir / "report.md"), metrics=str(run.out_dir / METRICS_NAME),
        summary=done_figures(summary["aggregate"]),
        folds_completed=len(summary["folds"]), cancelled=summary["cancelled"])
