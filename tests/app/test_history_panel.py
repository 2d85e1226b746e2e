"""HistoryPanel: rows after a restart, filters, probabilities, replay, delete, export."""
from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta

import numpy as np
import pytest
from PyQt5.QtCore import QDate, QItemSelectionModel

from ser_studio.app.history.history_panel import ALL_LABELS, ALL_SOURCES, HistoryPanel
from ser_studio.app.history.history_store import MICROPHONE, HistoryStore
from ser_studio.app.history.history_widgets import NO_SPEECH_TEXT

NOW = time.time()
DAY = 86400.0


class FakePlayer:
    def __init__(self, error: Exception | None = None):
        self.played: list[tuple[np.ndarray, int]] = []
        self.stopped = 0
        self.error = error

    def play(self, audio, samplerate):
        if self.error:
            raise self.error
        self.played.append((audio, samplerate))

    def stop(self):
        self.stopped += 1


@pytest.fixture
def store(tmp_path):
    """A store written, closed and reopened, as after an app restart."""
    path = tmp_path / "history.sqlite3"
    first = HistoryStore(path)
    clip = (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32)
    first.add(source=MICROPHONE, label="happy", probs={"angry": 0.1, "happy": 0.6,
              "neutral": 0.2, "sad": 0.1}, duration_s=2.5, model="default", time=NOW - 3 * DAY,
              audio=clip)
    first.add(source="/recordings/interview.wav", label="sad",
              probs={"angry": 0.05, "happy": 0.05, "neutral": 0.2, "sad": 0.7},
              duration_s=12.0, model="default", time=NOW - 2 * DAY)
    first.add(source=MICROPHONE, label=None, probs={}, duration_s=0.5, model="default",
              time=NOW - DAY)
    first.add(source=MICROPHONE, label="angry", probs={"angry": 0.8, "happy": 0.1,
              "neutral": 0.05, "sad": 0.05}, duration_s=3.0, model="default", time=NOW)
    first.close()
    return HistoryStore(path)


@pytest.fixture
def panel(qtbot, store):
    widget = HistoryPanel(store)
    widget.player = FakePlayer()
    widget.errors = []
    widget.show_error = widget.errors.append
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.refreshed, timeout=5000):
        widget.show()  # a hidden panel does not query; showing it does
    assert widget.model.rowCount() == 4
    return widget


def _select(panel, *rows):
    selection = panel.table.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(panel.model.index(row, 0),
                         QItemSelectionModel.Select | QItemSelectionModel.Rows)


def _shown_labels(panel):
    return [r.label for r in panel.model.rows]


def test_rows_survive_restart_newest_first(panel):
    assert _shown_labels(panel) == ["angry", None, "sad", "happy"]
    assert panel.model.data(panel.model.index(1, 2)) == NO_SPEECH_TEXT
    assert panel.model.data(panel.model.index(2, 1)) == "interview.wav"
    assert panel.model.data(panel.model.index(0, 3)) == "80%"
    assert panel.count_label.text() == "4 rows"
    sources = [panel.source_combo.itemText(i) for i in range(panel.source_combo.count())]
    assert sources == [ALL_SOURCES, MICROPHONE, "/recordings/interview.wav"]
    labels = [panel.label_combo.itemText(i) for i in range(panel.label_combo.count())]
    assert labels == [ALL_LABELS, NO_SPEECH_TEXT, "angry", "happy", "sad"]


def test_filters_by_source_label_and_dates(qtbot, panel):
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.source_combo.setEditText("interview")
    assert _shown_labels(panel) == ["sad"]
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.source_combo.setCurrentIndex(1)  # microphone, exact
    assert _shown_labels(panel) == ["angry", None, "happy"]
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.label_combo.setCurrentText(NO_SPEECH_TEXT)
    assert _shown_labels(panel) == [None]
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.label_combo.setCurrentText(ALL_LABELS)
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.source_combo.setCurrentIndex(0)
    day = datetime.fromtimestamp(NOW - 2 * DAY).date()
    panel.date_from.setDate(QDate(day.year, day.month, day.day))
    panel.date_to.setDate(QDate(day.year, day.month, day.day))
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.date_check.setChecked(True)
    assert _shown_labels(panel) == ["sad"]
    later = day + timedelta(days=1)
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.date_to.setDate(QDate(later.year, later.month, later.day))
    assert _shown_labels(panel) == [None, "sad"]


def test_selecting_a_row_shows_probabilities_and_replays(qtbot, panel):
    assert not panel.play_button.isEnabled()
    _select(panel, 3)  # happy, with audio
    assert panel.play_button.isEnabled()
    assert "happy" in panel.detail_label.text() and "60%" in panel.detail_label.text()
    heights = panel.bars.bars.opts["height"]
    assert list(heights) == pytest.approx([0.1, 0.6, 0.2, 0.1])
    panel.play_button.click()
    qtbot.waitUntil(lambda: len(panel.player.played) == 1, timeout=5000)
    audio, rate = panel.player.played[0]
    assert rate == 16000 and audio.shape == (8000,)
    panel.stop_button.click()
    assert panel.player.stopped == 1
    _select(panel, 2)  # sad, no audio
    assert not panel.play_button.isEnabled()
    assert list(panel.bars.bars.opts["height"]) == pytest.approx([0.05, 0.05, 0.2, 0.7])
    _select(panel, 1)  # no speech: no bars
    assert panel.bars.bars is None and NO_SPEECH_TEXT in panel.detail_label.text()


def test_replay_error_is_shown_not_raised(qtbot, panel):
    panel.player = FakePlayer(error=RuntimeError("Error querying device -1"))
    _select(panel, 3)
    panel.play_button.click()
    qtbot.waitUntil(lambda: len(panel.errors) == 1, timeout=5000)
    assert "Cannot play the clip" in panel.errors[0] and "device -1" in panel.errors[0]


def test_default_player_without_output_device_shows_message(qtbot, panel, monkeypatch):
    import sounddevice

    from ser_studio.app.history.history_widgets import SoundDevicePlayer

    def no_device(*_args, **_kwargs):
        raise sounddevice.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sounddevice, "play", no_device)
    panel.player = SoundDevicePlayer()
    _select(panel, 3)
    panel.play_button.click()
    qtbot.waitUntil(lambda: len(panel.errors) == 1, timeout=5000)
    assert "Error querying device -1" in panel.errors[0]


def test_delete_asks_and_removes_rows(qtbot, panel, store):
    asked = []
    panel.confirm = lambda text: asked.append(text) or False
    _select(panel, 0, 2)
    panel.delete_button.click()
    assert asked and "Delete 2 history rows" in asked[0]
    assert store.count() == 4
    panel.confirm = lambda text: True
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.delete_button.click()
    assert _shown_labels(panel) == [None, "happy"]
    assert store.count() == 2
    assert "Deleted 2 rows" in panel.status_label.text()


def test_export_writes_the_rows_shown(qtbot, panel, tmp_path):
    out = tmp_path / "export.csv"
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.label_combo.setCurrentText("sad")
    panel.ask_export_path = lambda: str(out)
    with qtbot.waitSignal(panel.message, timeout=5000):
        panel.export_button.click()
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["source"] for r in rows] == ["/recordings/interview.wav"]
    panel.ask_export_path = lambda: ""
    panel.export_button.click()  # cancelled dialog: nothing happens
    assert panel.errors == []


def test_hidden_panel_refreshes_when_shown(qtbot, panel, store):
    panel.hide()
    store.add(source=MICROPHONE, label="sad", probs={"sad": 1.0}, duration_s=1.0,
              model="default", time=NOW + 5)
    panel.refresh()
    qtbot.wait(100)
    assert panel.model.rowCount() == 4  # not re-queried while hidden
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.show()
    assert panel.model.rowCount() == 5


def test_refresh_shows_rows_added_later(qtbot, panel, store):
    _select(panel, 0)
    store.add(source=MICROPHONE, label="neutral", probs={"neutral": 0.9, "sad": 0.1},
              duration_s=1.0, model="default", time=NOW + 10)
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.refresh()
    assert _shown_labels(panel)[0] == "neutral"
    assert [r.label for r in panel.selected_rows()] == ["angry"]  # selection kept by id


def test_audio_space_is_shown_and_old_audio_is_deleted_after_the_retention(qtbot, panel, store):
    assert store.audio_usage()[0] == 1
    assert panel.storage_label.text().startswith("Stored audio: 1 clip, ")
    assert panel.retention_spin.value() == 30
    changed = []
    panel.retentionChanged.connect(changed.append)
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.retention_spin.setValue(2)  # the clip is 3 days old
        panel.retention_spin.editingFinished.emit()
    assert changed == [2]
    assert store.audio_usage() == (0, 0) and store.count() == 4  # rows stay
    assert panel.storage_label.text().startswith("Stored audio: 0 clips, 0 KB")


def _top_row_id(panel) -> int:
    return panel.model.rows[panel.table.rowAt(0)].id


def test_rows_stay_under_the_pointer_while_new_rows_arrive(qtbot, panel, store):
    """While listening, new rows arrive at the top of the list: a scrolled view, or one with a
    selection, keeps showing the same rows in the same places (a click hits the row aimed at);
    at the top with nothing selected, the new rows come into view."""
    for i in range(40):
        store.add(source=MICROPHONE, label=("sad", "happy")[i % 2], probs={"sad": 0.6},
                  duration_s=1.0 + i, model="default", time=NOW - 4 * DAY - i)
    panel.resize(700, 320)
    with qtbot.waitSignal(panel.refreshed, timeout=5000):
        panel.refresh()

    def arrive(k: int, at: float) -> None:
        for j in range(k):
            store.add(source=MICROPHONE, label="neutral", probs={"neutral": 0.9},
                      duration_s=2.0, model="default", time=at + j)
        with qtbot.waitSignal(panel.refreshed, timeout=5000):
            panel.refresh()

    arrive(1, NOW + 1)
    assert _shown_labels(panel)[0] == "neutral" and panel.table.rowAt(0) == 0  # in view
    panel.table.verticalScrollBar().setValue(17)
    top, y = _top_row_id(panel), panel.table.rowViewportPosition(20)
    _select(panel, 20)
    chosen = panel.selected_ids()
    arrive(3, NOW + 10)
    assert _top_row_id(panel) == top
    assert panel.selected_ids() == chosen
    assert panel.table.rowViewportPosition(panel.table.rowAt(y + 1)) == y
    assert panel.model.rows[panel.table.rowAt(y + 1)].id == chosen[0]  # still under the pointer
    panel.table.verticalScrollBar().setValue(0)  # back at the top, a row still selected
    top = _top_row_id(panel)
    arrive(2, NOW + 20)
    assert _top_row_id(panel) == top and panel.selected_ids() == chosen


def test_a_failing_database_is_named_in_the_error(qtbot, panel, store, monkeypatch):
    """A query that fails says what failed and which database file it was."""
    import sqlite3

    def locked(**_kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "query", locked)
    panel.refresh()
    qtbot.waitUntil(lambda: bool(panel.errors), timeout=5000)
    assert panel.errors[0].startswith("Cannot read the history: database is locked")
    assert str(store.path) in panel.errors[0]
