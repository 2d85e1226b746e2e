"""The state of one training run, built from its progress events (no Qt).

The training page feeds every event (model.training.progress.ProgressEvent, parsed from the
trainer's JSON lines) to ``TrainingProgress.handle`` and draws from the state:
per-epoch curves of the current fold (of the current member, for an ensemble trained member by
member), one row per finished fold, the progress bar, and at the end the run folder and the
model to use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ser_studio.model.training.progress import ProgressEvent, time_left


def format_duration(seconds: float) -> str:
    """A time left without false precision: "10 s" steps under a minute, then whole minutes,
    then hours and minutes ("less than 10 s", "40 s", "3 min", "1 h 20 min")."""
    if seconds < 10:
        return "less than 10 s"
    if seconds < 55:
        return f"{int(round(seconds / 10) * 10)} s"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _num(value) -> float:
    """A metric from an event as float (null/missing -> NaN, so curves show a gap)."""
    return float(value) if isinstance(value, (int, float)) else math.nan


@dataclass
class Curves:
    """Per-epoch values of one fold (or of the final model, fold 0)."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)

    def add(self, event: ProgressEvent) -> None:
        self.epochs.append(event.epoch or len(self.epochs) + 1)
        self.train_loss.append(_num(event.train_loss))
        self.val_loss.append(_num(event.val_loss))
        self.val_ua.append(_num(event.val_ua))


@dataclass
class FoldRow:
    """One fold of the per-fold table; metrics are None until the fold ends."""

    fold: int
    test_speakers: list[str]
    wa: float | None = None
    ua: float | None = None
    macro_f1: float | None = None
    best_epoch: int | None = None
    checkpoint: str | None = None


class TrainingProgress:
    """Accumulates the events of one ``main.py train --progress-json`` run."""

    def __init__(self) -> None:
        self.protocol = ""
        self.folds_total = 0
        self.epochs_total = 0
        self.labels: list[str] = []
        self.fold = 0            # current fold (0 while the final model trains)
        self.epoch = 0           # last epoch seen in the current fold / final model
        self.final_epochs = 0    # > 0 once the final model started
        self.member = 1          # ensemble member being trained (1-based) and how many
        self.members = 1
        self.curves = Curves()
        self.folds: dict[int, FoldRow] = {}
        self.done: ProgressEvent | None = None
        self.error: str | None = None
        self.extract: ProgressEvent | None = None  # the running extraction stage, if any

    def handle(self, event: ProgressEvent) -> str:
        """Update the state with one event; returns its kind."""
        kind = event.kind
        if kind == "extract":
            done = (event.files_done or 0) >= (event.files_total or 0)
            self.extract = None if done else event
        elif kind in ("epoch", "final_epoch", "fold_end", "done", "error"):
            self.extract = None
        if kind == "start":
            self.protocol, self.labels = event.protocol or "", list(event.labels or [])
            self.folds_total, self.epochs_total = event.folds or 0, event.epochs or 0
        elif kind == "fold_start":
            self.fold, self.epoch, self.curves, self.member = event.fold, 0, Curves(), 1
            self.folds[self.fold] = FoldRow(self.fold, list(event.test_speakers or []))
        elif kind in ("epoch", "final_epoch"):
            self._epoch(event)
        elif kind == "fold_end":
            row = self.folds.setdefault(event.fold, FoldRow(event.fold, []))
            row.wa, row.ua, row.macro_f1 = _num(event.wa), _num(event.ua), _num(event.macro_f1)
            row.best_epoch, row.checkpoint = event.best_epoch, event.checkpoint
        elif kind == "final_start":
            self.fold, self.epoch, self.curves, self.member = 0, 0, Curves(), 1
            self.final_epochs = event.epochs or 1
        elif kind == "done":
            self.done = event
        elif kind == "error":
            self.error = event.message or "unknown error"
        return kind

    def _epoch(self, event: ProgressEvent) -> None:
        member = event.member or 1
        if member != self.member:        # the next member starts from epoch 1
            self.member, self.curves = member, Curves()
        self.members = event.members or 1
        self.epoch = event.epoch or self.epoch + 1
        self.curves.add(event)

    def finished_folds(self) -> list[FoldRow]:
        return [r for r in sorted(self.folds.values(), key=lambda r: r.fold) if r.wa is not None]

    def bar(self) -> tuple[int, int, str]:
        """(value, maximum, text) for the progress bar: files while features are extracted,
        fold epochs, then the final model; at the end, the folds that finished out of those
        planned (a cancelled run's bar is as full as the work it kept)."""
        if self.done is not None:
            state = "cancelled" if self.done.cancelled else "finished"
            n = self.done.folds_completed
            n = len(self.finished_folds()) if n is None else n
            return n, max(self.folds_total, n, 1), f"{state}: {n} of {self.folds_total} folds"
        if self.extract is not None:
            return self._extract_bar(self.extract)
        member = (f" · network {self.member}/{self.members}" if self.members > 1 else "")
        if self.final_epochs:
            return (self.epoch, self.final_epochs, f"final model on all speakers{member}: "
                                                   f"epoch {self.epoch}/{self.final_epochs}")
        if not self.folds_total:
            return 0, 0, "preparing features…"
        finished = len(self.finished_folds())
        running = (0 if self.fold in {r.fold for r in self.finished_folds()}
                   else (self.member - 1) * max(self.epochs_total, 1) + self.epoch)
        per_fold = self.members * max(self.epochs_total, 1)
        total = self.folds_total * per_fold
        value = finished * per_fold + running
        if self.fold == 0:
            return value, total, f"{self.protocol}: starting"
        return (value, total, f"fold {self.fold}/{self.folds_total}{member} · "
                              f"epoch {self.epoch}/{self.epochs_total}")

    def _extract_bar(self, e: ProgressEvent) -> tuple[int, int, str]:
        done, total = e.files_done or 0, e.files_total or 0
        what = ("features" if e.stage == "features" else
                f"recording-chain variants{f' for fold {self.fold}' if self.fold else ''}")
        left = time_left(done, total, e.elapsed_s or 0.0)
        when = "time left unknown until the first file is done" if left is None else \
            f"about {format_duration(left)} left"
        return done, max(total, 1), f"extracting {what}: {done}/{total} files · {when}"

    def best_fold(self) -> FoldRow | None:
        """The finished fold with the highest UA (earliest on a tie) that saved a checkpoint."""
        rows = [r for r in self.finished_folds() if r.checkpoint]
        return max(rows, key=lambda r: (-math.inf if math.isnan(r.ua) else r.ua, -r.fold),
                   default=None)

    def model_path(self) -> str | None:
        """The final model when there is one, else the best fold's checkpoint."""
        if self.done is not None and self.done.model:
            return self.done.model
        best = self.best_fold()
        return best.checkpoint if best else None

    def succeeded(self) -> bool:
        """A "done" event with at least one finished fold arrived."""
        return self.done is not None and (self.done.folds_completed or 0) > 0
