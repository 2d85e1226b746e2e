"""The history panel: a filterable table of past predictions with replay, delete and CSV export.

Every database operation runs on a one-thread pool in the order it was asked for, so the GUI
thread never waits on SQLite and a delete is always seen by the refresh that follows it.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable

import numpy as np
from PyQt5.QtCore import (
    QDate, QDateTime, QItemSelectionModel, Qt, QThreadPool, QTime, pyqtSignal, pyqtSlot,
)
from PyQt5.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDateEdit, QFileDialog, QHBoxLayout, QHeaderView,
    QLabel, QMessageBox, QPushButton, QSpinBox, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from ser_studio.app.history.history_store import NO_SPEECH, HistoryRow, HistoryStore
from ser_studio.app.history.history_widgets import (NO_SPEECH_TEXT, HistoryTableModel,
                                                    ProbabilityBars, SoundDevicePlayer)
from ser_studio.app.shell.background_task import TaskRunner
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

ALL_SOURCES = "All sources"
ALL_LABELS = "All labels"
QUERY_LIMIT = 5000  # rows shown at most; the newest are kept
ROWS_NOTE = ("Live rows: one per speech segment, the mean of its speech windows' probabilities, "
             "as shown under \u201cLast segment\u201d in the Live tab (the Live headline shows "
             "the newest window, or the mean of the last few with smoothing). File rows: the "
             "whole file.")


class HistoryPanel(QWidget):
    """History table with filters (source, label, dates), a probability chart and replay of the
    selected row, delete (after ``confirm``) and CSV export of the rows shown.

    Tests and callers may replace: ``confirm(text) -> bool``, ``ask_export_path() -> str``
    (empty to cancel), ``show_error(text)``, ``player`` (``play(audio, rate)``, ``stop()``).
    Signals: ``refreshed(int)`` after the table shows a new query result (its row count);
    ``message(str)`` for a status-bar note.
    """

    refreshed = pyqtSignal(int)
    message = pyqtSignal(str)
    retentionChanged = pyqtSignal(int)  # days stored audio is kept (0 = until deleted)

    def __init__(self, store: HistoryStore, parent=None, *, retention_days: int = 30):
        super().__init__(parent)
        self.store = store
        self.retention_days = retention_days
        self.player = SoundDevicePlayer()
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        self.ask_export_path: Callable[[], str] = self._export_dialog
        self.show_error: Callable[[str], None] = self._error_dialog
        pool = QThreadPool(self)
        pool.setMaxThreadCount(1)
        self._runner = TaskRunner(pool, self)
        self._generation = 0
        self._stale = True
        self.model = HistoryTableModel(self)
        self._build()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        filters = self._build_filters()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setWordWrap(False)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self._build_detail())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([680, 320])

        self.delete_button = QPushButton("Delete selected")
        self.export_button = QPushButton("Export CSV…")
        self.status_label = QLabel()
        self.storage_label = QLabel()
        self.retention_spin = QSpinBox(minimum=0, maximum=3650, value=self.retention_days,
                                       suffix=" days", specialValueText="until deleted")
        self.retention_spin.setToolTip("Stored audio older than this is deleted (the rows "
                                       "stay); audio is stored only when File › Keep audio "
                                       "of live segments is on")
        actions = QHBoxLayout()
        actions.addWidget(self.delete_button)
        actions.addWidget(self.export_button)
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.storage_label)
        actions.addWidget(QLabel("keep audio"))
        actions.addWidget(self.retention_spin)

        self.rows_note = QLabel(ROWS_NOTE)
        self.rows_note.setObjectName("hint")
        self.rows_note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.rows_note)
        layout.addWidget(splitter, 1)
        layout.addLayout(actions)
        self._connect()

    def _build_filters(self) -> QHBoxLayout:
        self.source_combo = QComboBox(editable=True)
        self.source_combo.setMinimumContentsLength(18)
        self.source_combo.setInsertPolicy(QComboBox.NoInsert)
        self.source_combo.addItem(ALL_SOURCES)
        self.label_combo = QComboBox()
        self.label_combo.addItems([ALL_LABELS, NO_SPEECH_TEXT])
        self.date_check = QCheckBox("Dates")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-7), calendarPopup=True)
        self.date_to = QDateEdit(today, calendarPopup=True)
        for edit in (self.date_from, self.date_to):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.count_label = QLabel()
        filters = QHBoxLayout()
        for w in (QLabel("Source"), self.source_combo, QLabel("Label"), self.label_combo,
                  self.date_check, self.date_from, QLabel("to"), self.date_to):
            filters.addWidget(w)
        filters.addStretch(1)
        filters.addWidget(self.count_label)
        return filters

    def _build_detail(self) -> QWidget:
        box = QWidget()
        self.detail_label = QLabel("Select a row to see its probabilities.")
        self.detail_label.setWordWrap(True)
        self.bars = ProbabilityBars()
        self.bars.setMinimumSize(220, 160)
        self.play_button = QPushButton("▶ Replay")
        self.stop_button = QPushButton("■ Stop")
        self.play_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.detail_label)
        layout.addWidget(self.bars, 1)
        layout.addLayout(buttons)
        return box

    def _connect(self) -> None:
        self.source_combo.currentTextChanged.connect(self.refresh)
        self.label_combo.currentIndexChanged.connect(self.refresh)
        self.date_check.toggled.connect(self.date_from.setEnabled)
        self.date_check.toggled.connect(self.date_to.setEnabled)
        self.date_check.toggled.connect(self.refresh)
        self.date_from.dateChanged.connect(self.refresh)
        self.date_to.dateChanged.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._show_current)
        self.play_button.clicked.connect(self.replay)
        self.stop_button.clicked.connect(self.stop_playback)
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button.clicked.connect(self.export_csv)
        self.retention_spin.editingFinished.connect(self._retention_edited)

    def _retention_edited(self) -> None:
        days = self.retention_spin.value()
        if days != self.retention_days:
            self.retention_days = days
            self.retentionChanged.emit(days)
            self.refresh()

    # -- background work ---------------------------------------------------------------
    def _submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None], what: str) -> None:
        """Run ``fn`` on the pool; a failure is shown as "Cannot <what>", the error and where
        the database is."""
        self._runner.submit(fn, on_done, lambda text: self.show_error(
            f"Cannot {what}: {text}\n\nHistory database: {self.store.path}"))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def filters(self) -> dict:
        """The store.query keyword arguments for the current filter widgets."""
        kwargs: dict[str, Any] = {"limit": QUERY_LIMIT}
        source = self.source_combo.currentText().strip()
        if source and source != ALL_SOURCES:
            known = [self.source_combo.itemText(i) for i in range(1, self.source_combo.count())]
            kwargs["source" if source in known else "source_contains"] = source
        label = self.label_combo.currentText()
        if label == NO_SPEECH_TEXT:
            kwargs["label"] = NO_SPEECH
        elif label != ALL_LABELS:
            kwargs["label"] = label
        if self.date_check.isChecked():
            start = QDateTime(self.date_from.date(), QTime(0, 0))
            end = QDateTime(self.date_to.date(), QTime(23, 59, 59, 999))
            kwargs["since"] = start.toMSecsSinceEpoch() / 1000.0
            kwargs["until"] = end.toMSecsSinceEpoch() / 1000.0
        return kwargs

    @pyqtSlot()
    def refresh(self) -> None:
        """Re-query the store with the current filters (off the GUI thread). While the panel
        is hidden (another tab is shown) this only marks it stale; showing it refreshes."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        self._generation += 1
        generation, kwargs, store = self._generation, self.filters(), self.store
        days = self.retention_days

        def work():
            if days > 0:
                store.prune_audio(time.time() - days * 86400.0)
            return (store.query(**kwargs), store.sources(), store.labels(),
                    store.audio_usage())

        self._submit(work, lambda result: self._apply(generation, *result), "read the history")

    def _apply(self, generation: int, rows, sources, labels, usage=(0, 0)) -> None:
        if generation != self._generation:
            return  # a newer refresh is on its way
        clips, size = usage
        amount = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
        self.storage_label.setText(f"Stored audio: {clips} clip{'s' if clips != 1 else ''}, "
                                   f"{amount} ·")
        selected = set(self.selected_ids())
        anchor = self._view_anchor()
        self.model.set_rows(rows)
        self._fill_combo(self.source_combo, [ALL_SOURCES] + sources)
        self._fill_combo(self.label_combo, [ALL_LABELS, NO_SPEECH_TEXT] + labels)
        selection = self.table.selectionModel()
        for i, row in enumerate(rows):
            if row.id in selected:
                selection.select(self.model.index(i, 0),
                                 QItemSelectionModel.Select | QItemSelectionModel.Rows)
        self._keep_view(anchor)
        self.count_label.setText(f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
                                 + (" (newest shown)" if len(rows) >= QUERY_LIMIT else ""))
        self._show_current()
        self.refreshed.emit(len(rows))

    def _view_anchor(self) -> tuple[int, int] | None:
        """(id of the row at the top of the view, its offset in pixels) when the view must
        stay put across a refresh: the user scrolled, points at the table or has rows selected.
        New rows arrive at the top; without this every row would move down under the
        pointer, and a click would pick a different row than the one aimed at. None at the
        top with nothing selected and the pointer elsewhere: new rows then come into view."""
        table = self.table
        if not (table.verticalScrollBar().value() > 0 or table.viewport().underMouse()
                or table.selectionModel().hasSelection()):
            return None
        top = table.rowAt(0)
        if not 0 <= top < len(self.model.rows):
            return None
        return self.model.rows[top].id, table.rowViewportPosition(top)

    def _keep_view(self, anchor: tuple[int, int] | None) -> None:
        """Scroll so the anchor row is where it was (it may have moved down the list)."""
        if anchor is None:
            return
        row_id, offset = anchor
        index = next((i for i, r in enumerate(self.model.rows) if r.id == row_id), None)
        if index is None:
            return
        self.table.doItemsLayout()  # the scroll range must know the new row count
        self.table.scrollTo(self.model.index(index, 0), QAbstractItemView.PositionAtTop)
        if self.table.verticalScrollMode() == QAbstractItemView.ScrollPerPixel:
            bar = self.table.verticalScrollBar()
            bar.setValue(bar.value() - offset)

    @staticmethod
    def _fill_combo(combo: QComboBox, items: list[str]) -> None:
        """Replace a combo's items, keeping what it shows (typed text included)."""
        if [combo.itemText(i) for i in range(combo.count())] == items:
            return
        text = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(items)
        if combo.isEditable():
            combo.setEditText(text)
        else:
            combo.setCurrentIndex(max(0, combo.findText(text)))
        combo.blockSignals(False)

    # -- selection and replay ----------------------------------------------------------
    def selected_rows(self) -> list[HistoryRow]:
        """The selected rows, in table order."""
        picked = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.rows[i] for i in picked if i < len(self.model.rows)]

    def selected_ids(self) -> list[int]:
        return [r.id for r in self.selected_rows()]

    def _show_current(self, *_args) -> None:
        rows = self.selected_rows()
        row = rows[0] if rows else None
        self.play_button.setEnabled(bool(row and row.has_audio))
        self.stop_button.setEnabled(bool(row and row.has_audio))
        if row is None:
            self.detail_label.setText("Select a row to see its probabilities.")
            self.bars.show_probs({}, None)
            return
        when = datetime.fromtimestamp(row.time).strftime("%Y-%m-%d %H:%M:%S")
        what = (f"<b>{row.label}</b> {row.confidence:.0%}" if row.label
                else f"<b>{NO_SPEECH_TEXT}</b>")
        self.detail_label.setText(
            f"{what}<br>{when} · {row.duration_s:.1f} s · {row.model}<br>"
            f"<small>{row.source}</small>")
        self.bars.show_probs(row.probs, row.label)

    @pyqtSlot()
    def replay(self) -> None:
        """Play the selected row's clip (loaded off the GUI thread, played non-blocking)."""
        rows = self.selected_rows()
        if not rows or not rows[0].has_audio:
            return
        row_id, store = rows[0].id, self.store
        self._submit(lambda: store.audio(row_id), self._play, "load the stored clip")

    def _play(self, audio: np.ndarray | None) -> None:
        if audio is None:
            self.show_error("This row has no stored audio.")
            return
        try:
            self.player.play(audio, SAMPLE_RATE)
        except Exception as exc:  # no output device, PortAudio missing, device busy
            log.warning("replay failed: %s", exc)
            self.show_error(f"Cannot play the clip: {exc}")

    @pyqtSlot()
    def stop_playback(self) -> None:
        try:
            self.player.stop()
        except Exception as exc:
            log.warning("stopping playback failed: %s", exc)

    # -- delete and export -------------------------------------------------------------
    @pyqtSlot()
    def delete_selected(self) -> None:
        """Delete the selected rows after ``confirm``."""
        ids = self.selected_ids()
        if not ids:
            return
        n = len(ids)
        if not self.confirm(f"Delete {n} history row{'s' if n != 1 else ''}? "
                            "This cannot be undone."):
            return
        store = self.store
        self._submit(lambda: store.delete(ids), self._deleted, "delete the rows")

    def _deleted(self, count: int) -> None:
        self._note(f"Deleted {count} row{'s' if count != 1 else ''}.")
        self.table.clearSelection()
        self.refresh()

    @pyqtSlot()
    def export_csv(self) -> None:
        """Export the rows shown (all filters applied) to a CSV file the user picks."""
        path = self.ask_export_path()
        if not path:
            return
        rows, store = list(self.model.rows), self.store
        self._submit(lambda: store.export_csv(path, rows),
                     lambda n: self._note(f"Exported {n} rows to {path}."), "export the rows")

    def _note(self, text: str) -> None:
        self.status_label.setText(text)
        self.message.emit(text)

    # -- default dialogs ---------------------------------------------------------------
    def _confirm_dialog(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Delete history", text,
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def _export_dialog(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "history.csv",
                                              "CSV files (*.csv)")
        return path

    def _error_dialog(self, text: str) -> None:
        QMessageBox.warning(self, "History", text)
