"""The Files tab's queue: one row per file waiting or being analysed, with the share of the
file done and a Cancel button; a "Cancel all" button drops every job. Hidden when empty.

It only shows what the file worker reports (by job id) and emits what the user asked for.
"""
from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

QUEUED, ANALYSING, CANCELLING = "queued", "analysing", "cancelling…"


def _clock(seconds: float) -> str:
    """3725 -> "1:02:05", 125 -> "2:05"."""
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class FileQueueView(QWidget):
    """Rows keyed by job id: add, start, progress, remove. Emits cancelRequested(job)."""

    cancelRequested = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: dict[int, tuple[QTableWidgetItem, QTableWidgetItem, QProgressBar]] = {}
        self.title = QLabel()
        self.cancel_all = QPushButton("Cancel all")
        self.cancel_all.clicked.connect(self._cancel_all)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel_all)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(("Analysing", "Status", "Done", ""))
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.table.setColumnWidth(2, 260)
        header.setSectionResizeMode(3, QHeaderView.ResizeToContents)
        self.table.setMaximumHeight(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)
        self.setVisible(False)

    def jobs(self) -> list[int]:
        return list(self._rows)

    def status(self, job: int) -> str:
        return self._rows[job][1].text()

    def percent(self, job: int) -> int | None:
        """The share of the file done, None while unknown."""
        bar = self._rows[job][2]
        return bar.value() if bar.maximum() == 100 and bar.value() >= 0 else None

    def add(self, job: int, path: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        name = QTableWidgetItem(Path(path).name)
        name.setToolTip(path)
        name.setData(Qt.UserRole, job)
        state = QTableWidgetItem(QUEUED)
        bar = QProgressBar()
        bar.setRange(0, 100)
        bar.setValue(0)
        bar.setFormat("waiting")
        cancel = QPushButton("Cancel")
        cancel.setToolTip(f"Stop analysing {Path(path).name}")
        cancel.clicked.connect(lambda: self.cancel(job))
        self.table.setItem(row, 0, name)
        self.table.setItem(row, 1, state)
        self.table.setCellWidget(row, 2, bar)
        self.table.setCellWidget(row, 3, cancel)
        self._rows[job] = (name, state, bar)
        self._update_title()

    def start(self, job: int) -> None:
        if job not in self._rows:
            return
        _, state, bar = self._rows[job]
        if state.text() != CANCELLING:
            state.setText(ANALYSING)
        bar.setRange(0, 0)  # busy until the first progress report (if predict_file gives any)

    def progress(self, job: int, done_s: float, total_s: float) -> None:
        if job not in self._rows or total_s <= 0:
            return
        bar = self._rows[job][2]
        bar.setRange(0, 100)
        bar.setValue(int(min(100.0, 100.0 * done_s / total_s)))
        bar.setFormat(f"%p % of {_clock(total_s)}")

    def cancel(self, job: int) -> None:
        """The user cancelled ``job``: mark it and ask the worker."""
        if job in self._rows:
            self._rows[job][1].setText(CANCELLING)
            self.cancelRequested.emit(job)

    def remove(self, job: int) -> None:
        """``job`` ended (result, error or cancelled): drop its row."""
        entry = self._rows.pop(job, None)
        if entry is None:
            return
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) == job:
                self.table.removeRow(row)
                break
        self._update_title()

    def _cancel_all(self) -> None:
        for job in list(self._rows):
            self.cancel(job)

    def _update_title(self) -> None:
        n = len(self._rows)
        self.title.setText(f"{n} file(s) waiting or being analysed")
        self.setVisible(n > 0)
