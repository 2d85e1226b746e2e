"""The state of one training run, built from its progress events (no Qt).

The training page feeds every event to ``TrainingProgress.handle`` and draws from the state:
per-epoch curves of the current fold (of the current member, for an ensemble trained member by
member), one row per finished fold, the progress bar, and at the end the run folder and the
model to use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


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

    def add(self, event: dict) -> None:
        self.epochs.append(int(event.get("epoch", len(self.epochs) + 1)))
        self.train_loss.append(_num(event.get("train_loss")))
        self.val_loss.append(_num(event.get("val_loss")))
        self.val_ua.append(_num(event.get("val_ua")))


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
        self.done: dict | None = None
        self.error: str | None = None

    def handle(self, event: dict) -> str:
        """Update the state with one event; returns its kind ("" for unknown events)."""
        kind = event.get("event", "")
        if kind == "start":
            self.protocol = str(event.get("protocol", ""))
            self.folds_total = int(event.get("folds", 0))
            self.epochs_total = int(event.get("epochs", 0))
            self.labels = list(event.get("labels", []))
        elif kind == "fold_start":
            self.fold, self.epoch, self.curves = int(event["fold"]), 0, Curves()
            self.member = 1
            self.folds[self.fold] = FoldRow(self.fold, list(event.get("test_speakers", [])))
        elif kind in ("epoch", "final_epoch"):
            member = int(event.get("member", 1))
            if member != self.member:        # the next member starts from epoch 1
                self.member, self.curves = member, Curves()
            self.members = int(event.get("members", 1))
            self.epoch = int(event.get("epoch", self.epoch + 1))
            self.curves.add(event)
        elif kind == "fold_end":
            row = self.folds.setdefault(int(event["fold"]), FoldRow(int(event["fold"]), []))
            row.wa, row.ua, row.macro_f1 = (_num(event.get(k)) for k in ("wa", "ua", "macro_f1"))
            row.best_epoch = event.get("best_epoch")
            row.checkpoint = event.get("checkpoint")
        elif kind == "final_start":
            self.fold, self.epoch, self.curves, self.member = 0, 0, Curves(), 1
            self.final_epochs = int(event.get("epochs", 1))
        elif kind == "done":
            self.done = event
        elif kind == "error":
            self.error = str(event.get("message", "unknown error"))
        else:
            return ""
        return kind

    def finished_folds(self) -> list[FoldRow]:
        return [r for r in sorted(self.folds.values(), key=lambda r: r.fold) if r.wa is not None]

    def bar(self) -> tuple[int, int, str]:
        """(value, maximum, text) for the progress bar: fold epochs, then the final model."""
        if self.done is not None:
            state = "cancelled" if self.done.get("cancelled") else "finished"
            n = int(self.done.get("folds_completed", len(self.finished_folds())))
            return 1, 1, f"{state}: {n} of {self.folds_total} folds"
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

    def best_fold(self) -> FoldRow | None:
        """The finished fold with the highest UA (earliest on a tie) that saved a checkpoint."""
        rows = [r for r in self.finished_folds() if r.checkpoint]
        return max(rows, key=lambda r: (-math.inf if math.isnan(r.ua) else r.ua, -r.fold),
                   default=None)

    def model_path(self) -> str | None:
        """The final model when there is one, else the best fold's checkpoint."""
        if self.done and self.done.get("model"):
            return str(self.done["model"])
        best = self.best_fold()
        return best.checkpoint if best else None

    def succeeded(self) -> bool:
        """A "done" event with at least one finished fold arrived."""
        return bool(self.done) and int(self.done.get("folds_completed", 0)) > 0
