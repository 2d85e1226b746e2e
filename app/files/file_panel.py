"""Analysed files: the queue of files waiting or being analysed (app/files/file_queue.py), one
row per analysed file (result or error) and, for the selected file, its whole-file probabilities
and the timeline of windows across it. ``attach`` connects it to a FileThread
(app/files/file_worker.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (QAbstractItemView, QCheckBox, QHeaderView, QLabel, QPushButton,
                             QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QHBoxLayout,
                             QWidget)

from ser_studio.app.files.file_queue import FileQueueView
from ser_studio.app.shell.theme import (MUTED, emotion_colour, icon, percent_axis, style_bar_plot,
                                        style_plot)

COLUMNS = ("File", "Length", "Emotion", "Confidence", "Details")


@dataclass
class FileEntry:
    """One row: a FileResult (with the labels of the model that made it) or an error."""

    path: str
    labels: list[str]
    result: object | None = None
    error: str | None = None


class FilePanel(QWidget):
    """Results of analysed files. ``openRequested`` asks the window for a file dialog."""

    openRequested = pyqtSignal()
    fileFailed = pyqtSignal(str, str)  # path, message (after its row was added)
    fileCancelled = pyqtSignal(str)  # path of a job the user cancelled

    def __init__(self, parent=None):
        super().__init__(parent)
        self.labels: list[str] = []
        self.entries: list[FileEntry] = []
        self._paths: dict[int, str] = {}  # job -> path, while queued or running
        self._build()

    def _build(self) -> None:
        self.hint = QLabel("Drop audio files anywhere on the window, or open them with "
                           "File › Open audio files (Ctrl+O).")
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)  # the row also holds the adapt checkbox and a button
        self.open_button = QPushButton(icon("open"), "Open audio files…")
        self.open_button.clicked.connect(self.openRequested)
        self.adapt = QCheckBox("Adapt to this file's speaker")
        self.adapt.setToolTip("For long recordings of one person: learn the speaker's own "
                              "feature statistics from the file first, then score it with "
                              "them (applies to files analysed from now on)")
        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.adapt)
        top.addWidget(self.open_button)
        self.queue = FileQueueView()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        header.setSectionResizeMode(4, QHeaderView.Stretch)
        self.table.setColumnWidth(0, 260)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.bars_plot = pg.PlotWidget()
        style_bar_plot(self.bars_plot, "Whole file")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.65)
        self.bars_plot.addItem(self.bars)
        self.segment_bands: list = []
        self.timeline_plot = pg.PlotWidget()
        style_plot(self.timeline_plot, "Across the file (one point per window)")
        percent_axis(self.timeline_plot)
        self.timeline_plot.setLabel("bottom", "seconds")
        self.legend = self.timeline_plot.addLegend(offset=(8, 4), colCount=4)
        self._add_hints()
        plots = QSplitter(Qt.Horizontal)
        plots.addWidget(self.bars_plot)
        plots.addWidget(self.timeline_plot)
        plots.setSizes([300, 700])
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(plots)
        split.setSizes([220, 380])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.queue)
        layout.addWidget(split, 1)

    def _add_hints(self) -> None:
        """Grey notes in the empty plots (hidden once a file is shown)."""
        self.bars_plot.getAxis("bottom").setTicks([[]])
        self.bars_plot.setXRange(0, 1, padding=0)
        self.timeline_plot.setXRange(0, 10, padding=0)
        self.hints = []
        for plot, x, text in ((self.bars_plot, 0.5, "Whole-file probabilities"),
                              (self.timeline_plot, 5.0, "Drop audio files here: each gets a "
                                                        "timeline of 3 s windows")):
            hint = pg.TextItem(text, color=MUTED, anchor=(0.5, 0.5))
            hint.setPos(x, 0.5)
            plot.addItem(hint)
            self.hints.append(hint)

    def set_labels(self, labels: list[str]) -> None:
        """Class names of the model that will analyse the next files."""
        self.labels = list(labels)

    # -- the file worker -------------------------------------------------------------------
    def attach(self, files) -> None:
        """Show the jobs of ``files`` (a FileThread) and send the queue's cancels to it."""
        self._files = files
        w = files.worker
        w.started.connect(self.queue.start)
        w.progress.connect(self.queue.progress)
        w.fileResult.connect(self._on_result)
        w.fileError.connect(self._on_error)
        w.cancelled.connect(self._on_cancelled)
        self.queue.cancelRequested.connect(files.cancel)
        self.adapt.toggled.connect(lambda on: setattr(w, "adapt_speaker", on))

    def analyse(self, paths) -> None:
        """Queue ``paths`` in the attached FileThread, each with its queue row."""
        for job, path in zip(self._files.analyse(paths), paths):
            self._paths[job] = str(path)
            self.queue.add(job, str(path))

    def _on_result(self, job: int, result, labels) -> None:
        self._paths.pop(job, None)
        self.queue.remove(job)
        self.add_result(result, labels)

    def _on_error(self, job: int, path: str, message: str) -> None:
        self._paths.pop(job, None)
        self.queue.remove(job)
        self.add_error(path, message)
        self.fileFailed.emit(path, message)

    def _on_cancelled(self, job: int) -> None:
        self.queue.remove(job)
        self.fileCancelled.emit(self._paths.pop(job, ""))

    # -- rows --------------------------------------------------------------------------------
    def add_result(self, result, labels: list[str] | None = None) -> None:
        """A FileResult arrived (made by a model with these ``labels``, default: the current
        model's): add its row and show it."""
        self._add(FileEntry(str(result.path), list(labels or self.labels), result=result))

    def add_error(self, path: str, message: str) -> None:
        """A file could not be analysed: add a row with the message naming it."""
        self._add(FileEntry(str(path), list(self.labels), error=message))

    def _add(self, entry: FileEntry) -> None:
        self.entries.append(entry)
        row = self.table.rowCount()
        self.table.insertRow(row)
        name = QTableWidgetItem(Path(entry.path).name)
        name.setToolTip(entry.path)
        self.table.setItem(row, 0, name)
        if entry.error is not None:
            cells = ["", "error", "", entry.error]
        else:
            r = entry.result
            label = r.overall.label
            conf = float(np.max(r.overall.probs)) if label else 0.0
            speech = sum(1 for *_, p in r.windows if p.speech)
            cells = [f"{r.duration_s:.1f} s", label.capitalize() if label else "no speech",
                     f"{conf:.0%}" if label else "",
                     f"{len(r.windows)} windows, {speech} with speech"]
        for col, text in enumerate(cells, start=1):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            self.table.setItem(row, col, item)
        if entry.error is not None:
            for col in range(len(COLUMNS)):
                self.table.item(row, col).setForeground(QColor("#c0392b"))
        elif entry.result.overall.label:
            i = entry.labels.index(entry.result.overall.label)
            self.table.item(row, 2).setForeground(emotion_colour(entry.result.overall.label, i))
        self.hint.setText(f"{len(self.entries)} file(s) analysed. Drop more files to add them.")
        self.table.selectRow(row)

    # -- plots -------------------------------------------------------------------------------
    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        entry = self.entries[rows[0].row()]
        for hint in self.hints:
            hint.setVisible(False)
        self.legend.clear()
        self.timeline_plot.clear()
        self.segment_bands: list = []  # the shown file's speech segments (_shade_segments)
        if entry.result is None:
            self.bars.setOpts(x=[], height=[])
            self.timeline_plot.setTitle(f"<span style='color:#c0392b'>{entry.error}</span>")
            return
        self._plot_result(entry)

    def _plot_result(self, entry: FileEntry) -> None:
        r, labels = entry.result, entry.labels
        n = len(labels)
        brushes = [pg.mkBrush(emotion_colour(name, i)) for i, name in enumerate(labels)]
        self.bars.setOpts(x=np.arange(n), height=np.asarray(r.overall.probs, dtype=float),
                          brushes=brushes, pens=[pg.mkPen(None)] * n)
        self.bars_plot.getAxis("bottom").setTicks([[(i, s) for i, s in enumerate(labels)]])
        self.bars_plot.setXRange(-0.6, n - 0.4, padding=0)
        name = Path(entry.path).name
        self.bars_plot.setTitle(f"<span style='color:#27303f;font-weight:600'>{name}</span>")
        centres = np.array([(s + e) / 2 for s, e, _ in r.windows], dtype=float)
        probs = np.array([p.probs if p.speech else np.full(n, np.nan) for *_, p in r.windows],
                         dtype=float).reshape(len(r.windows), n)
        heard = bool(np.isfinite(probs).any())
        note = "one point per window; gaps = no speech" if heard else "no speech in any window"
        if r.segments:
            note += f"; {len(r.segments)} speech segment{'s' * (len(r.segments) != 1)} shaded"
        self._shade_segments(r.segments, labels)
        self.timeline_plot.setTitle(
            f"<span style='color:#27303f;font-weight:600'>Across the file</span>"
            f"<span style='color:{MUTED}'> · {note}</span>")
        for i, label in enumerate(labels if heard else ()):  # all-NaN curves make numpy warn
            colour = emotion_colour(label, i)
            self.timeline_plot.plot(centres, probs[:, i], name=label, connect="finite",
                                    pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                    symbolBrush=colour, symbolPen=None)
        self.timeline_plot.setXRange(0, max(r.duration_s, 1.0), padding=0.02)
        percent_axis(self.timeline_plot)

    def _shade_segments(self, segments, labels: list[str]) -> None:
        """Each speech segment of the file (model.inference.segments) as a band in its label's
        colour behind the curves, named by its label."""
        for seg in segments:
            if seg.start_s is None:
                continue
            colour = QColor(emotion_colour(seg.label, labels.index(seg.label)))
            colour.setAlpha(40)
            band = pg.LinearRegionItem(values=(seg.start_s, seg.start_s + seg.duration_s),
                                       movable=False, brush=pg.mkBrush(colour),
                                       pen=pg.mkPen(None))
            band.setZValue(-10)
            band.setToolTip(f"{seg.label} {seg.probs[seg.label]:.0%}: {seg.start_s:.1f} s, "
                            f"{seg.duration_s:.1f} s of speech, {seg.windows} windows")
            self.timeline_plot.addItem(band)
            self.segment_bands.append(band)
