"""Wizard page 4: runs the trainer as a QProcess and shows its progress live."""
from __future__ import annotations

import logging
import math
from collections import deque

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit, QProgressBar,
    QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget,
    QWizardPage,
)

from ser_studio.model.training.progress import ProgressEvent

from ser_studio.app.wizard.progress import Curves, TrainingProgress
from ser_studio.app.wizard.settings import train_args, write_run
from ser_studio.app.wizard.train_process import TrainProcess

log = logging.getLogger(__name__)

LOG_LINES = 500  # stderr lines kept in the log view
FOLD_COLUMNS = ("Fold", "Test speakers", "WA", "UA", "Macro-F1", "Best epoch")
EXTRACT_STATUS = {
    "features": "Computing the features of every clip once (clips already in the feature "
                "cache are read back quickly); the folds train after that.",
    "channel variants": "Making the recording-chain variants of this fold's training clips; "
                        "the fold trains after that (a rerun with the same settings reads "
                        "them from the cache).",
    "": "Extracting features; training starts after that."}


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setBackground("w")
    plot.setTitle(f"<span style='font-size:10pt'>{title}</span>")
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 210))
    return plot


class TrainingCurves(QWidget):
    """Train/validation loss and validation UA per epoch of the fold being trained."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = _plot("Loss", "loss")
        self.ua_plot = _plot("Validation UA", "UA")
        self.ua_plot.setYRange(0, 1, padding=0.02)
        self.train_loss = self.loss_plot.plot(pen=pg.mkPen("#2d6cdf", width=2), name="train",
                                              symbol="o", symbolSize=5, symbolBrush="#2d6cdf")
        self.val_loss = self.loss_plot.plot(pen=pg.mkPen("#e67e22", width=2), name="validation",
                                            symbol="o", symbolSize=5, symbolBrush="#e67e22")
        self.val_ua = self.ua_plot.plot(pen=pg.mkPen("#27ae60", width=2), name="validation UA",
                                        symbol="o", symbolSize=5, symbolBrush="#27ae60")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.ua_plot)

    def show_curves(self, curves: Curves, title: str) -> None:
        """Draw one fold's curves (``title`` names it: "fold 2", "final model")."""
        x = np.asarray(curves.epochs, dtype=float)
        step = max(1, math.ceil(len(x) / 10))  # whole epochs on the axis, at most ~10 ticks
        for plot in (self.loss_plot, self.ua_plot):
            plot.getAxis("bottom").setTickSpacing(major=step, minor=step)
        for item, values in ((self.train_loss, curves.train_loss),
                             (self.val_loss, curves.val_loss), (self.val_ua, curves.val_ua)):
            y = np.asarray(values, dtype=float)
            keep = np.isfinite(y)  # epochs without validation (the final model) are left out
            item.setData(x[keep], y[keep])
        ua_title = f"Validation UA — {title}" if title else "Validation UA"
        if len(x) and not np.isfinite(np.asarray(curves.val_ua, dtype=float)).any():
            ua_title = "No validation for the final model"
        loss_title = f"Loss — {title}" if title else "Loss"
        self.loss_plot.setTitle(f"<span style='font-size:10pt'>{loss_title}</span>")
        self.ua_plot.setTitle(f"<span style='font-size:10pt'>{ua_title}</span>")


class TrainPage(QWizardPage):
    """Starts ``main.py train --progress-json`` when entered; Back or Stop cancel it.

    Signal ``runFinished(bool)``: the process ended; True when at least one fold finished.
    """

    runFinished = pyqtSignal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Training")
        self.setSubTitle("Cross-validation runs in a separate process; stopping keeps the "
                         "folds that finished.")
        self.progress = TrainingProgress()
        self.process: TrainProcess | None = None
        self.failure = ""
        self._extracting = False  # the status line describes an extraction
        self._stderr_tail: deque[str] = deque(maxlen=3)
        self._build()

    def _build(self) -> None:
        self.status_label = QLabel("Waiting to start.")
        self.status_label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.stop_button = QPushButton("Stop training")
        self.stop_button.clicked.connect(self.stop)
        top = QHBoxLayout()
        top.addWidget(self.bar, 1)
        top.addWidget(self.stop_button)
        self.curves = TrainingCurves()
        self.fold_table = QTableWidget(0, len(FOLD_COLUMNS))
        self.fold_table.setHorizontalHeaderLabels(FOLD_COLUMNS)
        self.fold_table.verticalHeader().hide()
        self.fold_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        header = self.fold_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.curves)
        splitter.addWidget(self.fold_table)
        splitter.setSizes([260, 140])
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #c0392b;")
        self.error_label.setVisible(False)
        self.log_toggle = QToolButton(text="Log", checkable=True)
        self.log_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.log_toggle.setArrowType(Qt.RightArrow)
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(LOG_LINES)
        self.log_view.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.log_view.setVisible(False)
        self.log_view.setMaximumHeight(140)
        self.log_toggle.toggled.connect(self._toggle_log)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.log_toggle)
        layout.addWidget(self.log_view)

    def _set_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _toggle_log(self, shown: bool) -> None:
        self.log_toggle.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.log_view.setVisible(shown)

    # -- running -----------------------------------------------------------------------
    def initializePage(self) -> None:
        self.start()

    def cleanupPage(self) -> None:
        """Back to the settings: a run in progress is cancelled."""
        self.stop()

    def start(self) -> None:
        """Start a new run with the wizard's current settings."""
        wizard = self.wizard()
        self._discard_process()
        self.progress = TrainingProgress()
        self.failure = ""
        self._extracting = False
        self.fold_table.setRowCount(0)
        self.log_view.clear()
        self._stderr_tail.clear()
        self._set_error("")
        self.curves.show_curves(Curves(), "")
        process = TrainProcess(self, kill_after_ms=wizard.kill_after_ms)
        process.progressEvent.connect(self._event)
        process.output.connect(self._output)
        process.failed.connect(self._failed)
        process.finished.connect(self._finished)
        self.process = process
        out = wizard.run_dir()
        try:
            run_file = write_run(out, wizard.run_sections())
        except (OSError, ValueError) as exc:
            self._failed(f"Could not write the run's settings: {exc}")
            return
        args = [str(wizard.main_py)] + train_args(run_file, out)
        self._append_log(f"$ {wizard.python} {' '.join(args)}\n")
        process.start(wizard.python, args, wizard.workdir)
        self.stop_button.setEnabled(True)
        self.stop_button.setText("Stop training")
        self.status_label.setText("Starting the trainer…")
        self._update_bar()
        self.completeChanged.emit()

    def stop(self) -> None:
        """Cancel the run (SIGTERM, then kill after the wizard's timeout)."""
        if self.process is not None and self.process.is_running():
            self.process.cancel()
            self.stop_button.setEnabled(False)
            self.stop_button.setText("Stopping…")
            self.status_label.setText("Stopping after the current batch; finished folds are "
                                      "kept.")

    def running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def _discard_process(self) -> None:
        old, self.process = self.process, None
        if old is None:
            return
        for signal in (old.progressEvent, old.output, old.failed, old.finished):
            signal.disconnect()
        if old.is_running():
            old.finished.connect(old.deleteLater)
            old.cancel()
        else:
            old.deleteLater()

    # -- events ------------------------------------------------------------------------
    def _run_status(self) -> str:
        """The status line of the run's current phase (folds or the final model)."""
        p = self.progress
        if p.final_epochs:
            return f"Training the final model on every speaker for {p.final_epochs} epochs."
        return f"{p.protocol}: {p.folds_total} folds, labels {', '.join(p.labels)}"

    def _extract_status(self, event: ProgressEvent) -> None:
        """While files are extracted the status says so; afterwards the phase's line is back
        (after Stop the line keeps saying that the run is stopping)."""
        if self.process is not None and self.process.cancelled:
            return
        if self.progress.extract is not None:
            self.status_label.setText(EXTRACT_STATUS.get(event.stage, EXTRACT_STATUS[""]))
            self._extracting = True
        elif self._extracting:
            self.status_label.setText(self._run_status())
            self._extracting = False

    def _event(self, event: ProgressEvent) -> None:
        kind = self.progress.handle(event)
        p = self.progress
        self._extract_status(event)
        if kind == "start":
            self.status_label.setText(self._run_status())
        elif kind == "fold_start":
            self._fold_row(p.folds[p.fold])
        elif kind in ("epoch", "final_epoch"):
            title = f"fold {p.fold}" if kind == "epoch" else "final model"
            self.curves.show_curves(p.curves, title)
        elif kind == "fold_end":
            self._fold_row(p.folds[event.fold])
        elif kind == "final_start":
            self.status_label.setText(self._run_status())
        elif kind == "error":
            self._set_error(f"Training failed: {p.error}")
        self._update_bar()

    def _fold_row(self, row) -> None:
        index = next((i for i in range(self.fold_table.rowCount())
                      if self.fold_table.item(i, 0).text() == str(row.fold)), None)
        if index is None:
            index = self.fold_table.rowCount()
            self.fold_table.insertRow(index)

        def fmt(value):
            return "…" if value is None else ("–" if math.isnan(value) else f"{value:.3f}")

        cells = (str(row.fold), ", ".join(row.test_speakers), fmt(row.wa), fmt(row.ua),
                 fmt(row.macro_f1), "…" if row.best_epoch is None else str(row.best_epoch))
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col != 1:
                item.setTextAlignment(Qt.AlignCenter)
            self.fold_table.setItem(index, col, item)

    def _mark_unfinished(self) -> None:
        """Folds that started but never ended say so instead of waiting forever ("…")."""
        for r in range(self.fold_table.rowCount()):
            for c in range(2, len(FOLD_COLUMNS)):
                item = self.fold_table.item(r, c)
                if item is not None and item.text() == "…":
                    item.setText("stopped")
                    item.setForeground(Qt.gray)

    def _update_bar(self) -> None:
        value, maximum, text = self.progress.bar()
        self.bar.setRange(0, maximum)
        self.bar.setValue(value)
        self.bar.setFormat(text)

    def _append_log(self, text: str) -> None:
        self.log_view.appendPlainText(text.rstrip("\n"))

    def _output(self, text: str) -> None:
        self._append_log(text)
        self._stderr_tail.extend(line for line in text.splitlines() if line.strip())

    def _failed(self, message: str) -> None:
        """The process could not start at all."""
        self.failure = message
        self._set_error(message)
        self._ended()

    def _finished(self, code: int, crashed: bool) -> None:
        p = self.progress
        if p.done is None:
            if crashed:
                what = "was stopped" if self.process and self.process.cancelled else "crashed"
                reason = f"the trainer {what} before reporting results"
            else:
                reason = p.error or " ".join(self._stderr_tail) or "no results were reported"
            self.failure = f"Training failed (exit code {code}): {reason}"
            self._set_error(self.failure)
        self._ended()

    def _ended(self) -> None:
        p = self.progress
        self.stop_button.setEnabled(False)
        self.stop_button.setText("Stop training")
        self._mark_unfinished()
        if p.done is not None:
            n = p.done.folds_completed or 0
            if p.done.cancelled:
                self.status_label.setText(
                    f"Cancelled after {n} finished fold{'s' if n != 1 else ''}."
                    + (" Press Next for their results." if n else
                       " No fold finished: go Back to change the settings and start again."))
            else:
                self.status_label.setText(f"Finished: {n} folds. Press Next for the results.")
        else:
            self.status_label.setText("The trainer stopped without results; the log below "
                                      "has its messages.")
            self.log_toggle.setChecked(True)
        self._update_bar()
        if p.done is None:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.bar.setFormat("stopped without results")
        self.completeChanged.emit()
        self.runFinished.emit(p.succeeded())

    def isComplete(self) -> bool:
        return not self.running() and self.progress.succeeded()
