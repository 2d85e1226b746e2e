"""Progress events of a training run: one typed record, written as one JSON line each.

The experiment (model.training.experiment, model.training.trainer, model.training.members) calls
``progress(event)`` with a ``ProgressEvent``; ``main.py train`` draws its bars from them or, with
``--progress-json``, writes ``event.to_json()`` lines on stdout; the training wizard reads those
lines back with
``ProgressEvent.from_json``. A line is a JSON object whose "event" key is the kind and whose
other keys are the kind's fields (``FIELDS``), null where a value is missing:

- "start": protocol, folds (to run), epochs (per fold), labels. Sent before features load.
- "extract": stage ("features": every clip of the corpus; "channel variants": the recording
  chain variants of a fold's training clips), files_done, files_total, elapsed_s (seconds
  since the stage began). Sent while features are computed or read from the cache, at most
  every ``FileProgress.interval_s`` and always for the last file.
- "fold_start": fold (1-based), test_speakers, val_speakers, train_speakers.
- "epoch": fold, epoch (1-based), epochs, train_loss, train_acc, train_f1, val_loss, val_acc,
  val_f1, val_ua (val_* null without validation speakers), lr, alpha.
- "fold_end": fold, wa, ua, macro_f1, best_epoch, checkpoint (path).
- "fold_resumed": fold, ua: a fold kept from a cancelled run (``train --resume``).
- "final_start": epochs, train_speakers: the final model on every speaker begins.
- "final_epoch": the "epoch" fields without fold, for the final model.
- "done": run_dir, model (final model path or null), report, metrics (paths), summary
  ({"wa"|"ua"|"macro_f1": {"mean", "std"}}, with several corpora also "per_corpus" {name:
  {"wa", "ua", "n"}} and "corpus_mean" {"wa", "ua"}; ``done_figures``; or null),
  folds_completed, cancelled.
- "error": message (the run failed; exit code 2).

Epoch events of an ensemble trained member by member also carry member (1-based) and members.
NaN and infinities are written as null (they are not JSON).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

_EPOCH = ("epoch", "epochs", "train_loss", "train_acc", "train_f1", "val_loss", "val_acc",
          "val_f1", "val_ua", "lr", "alpha")
FIELDS: dict[str, tuple[str, ...]] = {
    "start": ("protocol", "folds", "epochs", "labels"),
    "extract": ("stage", "files_done", "files_total", "elapsed_s"),
    "fold_start": ("fold", "test_speakers", "val_speakers", "train_speakers"),
    "epoch": ("fold", *_EPOCH),
    "fold_end": ("fold", "wa", "ua", "macro_f1", "best_epoch", "checkpoint"),
    "fold_resumed": ("fold", "ua"),
    "final_start": ("epochs", "train_speakers"),
    "final_epoch": _EPOCH,
    "done": ("run_dir", "model", "report", "metrics", "summary", "folds_completed",
             "cancelled"),
    "error": ("message",),
}
_MEMBER = ("member", "members")  # written only when set (ensembles)


@dataclass(frozen=True)
class ProgressEvent:
    """One progress event; ``kind`` is a key of ``FIELDS`` (the module docstring says what
    each kind carries). Fields a kind does not use stay None."""

    kind: str
    protocol: str | None = None
    folds: int | None = None
    epochs: int | None = None
    labels: list[str] | None = None
    fold: int | None = None
    test_speakers: list[str] | None = None
    val_speakers: list[str] | None = None
    train_speakers: list[str] | None = None
    epoch: int | None = None
    train_loss: float | None = None
    train_acc: float | None = None
    train_f1: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    val_f1: float | None = None
    val_ua: float | None = None
    lr: float | None = None
    alpha: float | None = None
    member: int | None = None
    members: int | None = None
    wa: float | None = None
    ua: float | None = None
    macro_f1: float | None = None
    best_epoch: int | None = None
    checkpoint: str | None = None
    run_dir: str | None = None
    model: str | None = None
    report: str | None = None
    metrics: str | None = None
    summary: dict | None = None
    folds_completed: int | None = None
    cancelled: bool | None = None
    message: str | None = None
    stage: str | None = None
    files_done: int | None = None
    files_total: int | None = None
    elapsed_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FIELDS:
            raise ValueError(f"progress event {self.kind!r} not known; available = "
                             f"{list(FIELDS)}")
        unused = [f.name for f in dataclasses.fields(self)
                  if f.name not in ("kind", *FIELDS[self.kind], *_MEMBER)
                  and getattr(self, f.name) is not None]
        if unused:
            raise ValueError(f"progress event {self.kind!r} has no fields {unused}; its "
                             f"fields = {list(FIELDS[self.kind])}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: {"event": kind, the kind's fields..., member/members if set}."""
        data = {"event": self.kind, **{name: getattr(self, name) for name in FIELDS[self.kind]}}
        data.update({name: getattr(self, name) for name in _MEMBER
                     if getattr(self, name) is not None})
        return _finite(data)

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> "ProgressEvent":
        """The event of a JSON object; ValueError when it is not one (unknown kind or keys)."""
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            raise ValueError(f"not a progress event (no \"event\" key): {data!r:.200}")
        kind = data["event"]
        if kind not in FIELDS:
            raise ValueError(f"progress event {kind!r} not known; available = {list(FIELDS)}")
        unknown = sorted(set(data) - {"event", *FIELDS[kind], *_MEMBER})
        if unknown:
            raise ValueError(f"progress event {kind!r}: unknown keys {unknown}; valid keys = "
                             f"{sorted({*FIELDS[kind], *_MEMBER})}")
        return cls(kind=kind, **{k: v for k, v in data.items() if k != "event"})

    @classmethod
    def from_json(cls, line: str | bytes) -> "ProgressEvent":
        """The event of one JSON line; ValueError for anything else."""
        return cls.from_dict(json.loads(line))


def done_figures(aggregate: dict | None) -> dict | None:
    """The "done" event's summary from a run's aggregate (model.evaluation.metrics
    .aggregate_folds): WA/UA/macro-F1 mean and std over folds and, with several corpora, each
    corpus's WA/UA/n and their mean, so no front end shows a pooled mean alone."""
    if not aggregate:
        return None
    figures = {k: {"mean": aggregate[k]["mean"], "std": aggregate[k]["std"]}
               for k in ("wa", "ua", "macro_f1")}
    if aggregate.get("per_corpus"):
        figures["per_corpus"] = {name: {k: c[k] for k in ("wa", "ua", "n")}
                                 for name, c in aggregate["per_corpus"].items()}
        figures["corpus_mean"] = {k: aggregate["corpus_mean"][k] for k in ("wa", "ua")}
    return figures


def time_left(files_done: int, files_total: int, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far (elapsed_s per files_done); None before the first file.
    Cache hits are fast and new files slow, so it is an estimate that settles as files pass."""
    if files_done <= 0 or elapsed_s < 0:
        return None
    return elapsed_s / files_done * max(files_total - files_done, 0)


class FileProgress:
    """Reports a file loop as "extract" events: call it with (files_done, files_total) before
    the first file (0) and after each one.

    progress: the run's callback (None: nothing is sent); stage: the events' stage. An event
    goes out for the first call, then at most every ``interval_s`` seconds, and always for the
    last file, so a loop over thousands of cached files writes a few lines, not thousands.
    """

    interval_s = 0.5

    def __init__(self, progress: Callable[["ProgressEvent"], None] | None, stage: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress, self.stage, self.clock = progress, stage, clock
        self.started = clock()
        self._last: float | None = None

    def __call__(self, files_done: int, files_total: int) -> None:
        if self.progress is None:
            return
        now = self.clock()
        if (files_done < files_total and self._last is not None
                and now - self._last < self.interval_s):
            return
        self._last = now
        self.progress(ProgressEvent("extract", stage=self.stage, files_done=files_done,
                                    files_total=files_total,
                                    elapsed_s=round(now - self.started, 3)))


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
