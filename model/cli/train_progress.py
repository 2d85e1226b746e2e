"""Progress display of ``main.py train``: one JSON line per event (``--progress-json``, what
the training wizard reads) or tqdm bars on stderr.

Both are progress callbacks of model.training.experiment.run_cross_validation: called with each
model.training.progress.ProgressEvent, then ``close()`` once the run ends.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

from ser_studio.model.training.progress import ProgressEvent


class JsonLines:
    """Progress callback printing one JSON line per event on stdout (the stream ``sys.stdout``
    is when it is made: text that others print while ``train`` sends sys.stdout elsewhere, such
    as Ray's notices, stays out of the JSON lines)."""

    def __init__(self) -> None:
        self.stream = sys.stdout

    def __call__(self, event: ProgressEvent) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class Bars:
    """Progress callback drawing tqdm bars on stderr: folds, and the epochs of the current one
    (of the current member, for an ensemble trained member by member); while features are
    extracted ("extract" events), a bar of files with the time left at the rate so far."""

    def __init__(self) -> None:
        self.folds: tqdm | None = None
        self.epochs: tqdm | None = None
        self.files: tqdm | None = None
        self.n_epochs = 0
        self.member = 1
        self.bar = (0, "")  # total and description (without the member) of the epoch bar

    def _epoch_bar(self, total: int, desc: str, member: int = 1, members: int = 1) -> None:
        if self.epochs is not None:
            self.epochs.close()
        self.bar, self.member = (total, desc), member
        shown = f"{desc} · network {member}/{members}" if members > 1 else desc
        self.epochs = tqdm(total=total, desc=shown, unit="epoch", leave=False, file=sys.stderr)

    def _epoch(self, event: ProgressEvent) -> None:
        """One more epoch; a new ensemble member restarts the bar ("... · network m/M")."""
        member = event.member or 1
        if member != self.member:
            self._epoch_bar(*self.bar, member, event.members or 1)
        self.epochs.update(1)
        post = {"loss": f"{event.train_loss:.3f}"}
        if event.val_ua is not None:
            post["val_ua"] = f"{event.val_ua:.3f}"
        self.epochs.set_postfix(post, refresh=True)

    def _extract(self, event: ProgressEvent) -> None:
        """The files bar of an extraction stage: opened on its first event, closed on its
        last; tqdm's time left comes from the rate of the updates so far."""
        if self.files is None or self.files.desc != event.stage:
            self._close_files()
            self.files = tqdm(total=event.files_total, desc=event.stage, unit="file",
                              leave=False, file=sys.stderr)
        self.files.update(event.files_done - self.files.n)
        if event.files_done >= event.files_total:
            self._close_files()

    def _close_files(self) -> None:
        if self.files is not None:
            self.files.close()
            self.files = None

    def __call__(self, event: ProgressEvent) -> None:
        kind = event.kind
        if kind == "extract":
            self._extract(event)
        elif kind == "start":
            self.folds = tqdm(total=event.folds, desc=event.protocol, unit="fold",
                              file=sys.stderr)
            self.n_epochs = event.epochs
        elif kind == "fold_start":
            self._epoch_bar(self.n_epochs, f"fold {event.fold}")
        elif kind in ("epoch", "final_epoch"):
            self._epoch(event)
        elif kind == "fold_resumed":
            self.folds.update(1)
            tqdm.write(f"fold {event.fold}: kept from the cancelled run (UA {event.ua:.3f})",
                       file=sys.stderr)
        elif kind == "fold_end":
            self.epochs.close()
            self.folds.update(1)
            tqdm.write(f"fold {event.fold}: WA {event.wa:.3f} UA {event.ua:.3f} "
                       f"macro-F1 {event.macro_f1:.3f} (best epoch {event.best_epoch})",
                       file=sys.stderr)
        elif kind == "final_start":
            self._epoch_bar(event.epochs, "final model")
        elif kind == "done":
            self.close()

    def close(self) -> None:
        self._close_files()
        for bar in (self.epochs, self.folds):
            if bar is not None:
                bar.close()
