"""Pieces of the history panel: the table model, the probability bar chart, label colours and
the audio player."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QAbstractTableModel, QModelIndex, Qt
from PyQt5.QtGui import QColor

from ser_studio.app.history.history_store import HistoryRow
from ser_studio.app.shell.theme import emotion_colour

NO_SPEECH_TEXT = "(no speech)"


def label_color(label: str, index: int = 0) -> QColor:
    """The app's colour for an emotion label (app.shell.theme)."""
    return emotion_colour(label, index)


class SoundDevicePlayer:
    """Non-blocking playback through sounddevice (imported on first use: PortAudio may be
    missing, and that must show a message rather than stop the app from starting)."""

    def play(self, audio: np.ndarray, samplerate: int) -> None:
        import sounddevice

        sounddevice.play(audio, samplerate)

    def stop(self) -> None:
        import sounddevice

        sounddevice.stop()


class HistoryTableModel(QAbstractTableModel):
    """HistoryRows as a read-only table, in the order given (newest first)."""

    COLUMNS = ("Time", "Source", "Label", "Conf.", "Length", "Clip")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[HistoryRow] = []

    def set_rows(self, rows: list[HistoryRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.DisplayRole:
            return self._text(row, col)
        if role == Qt.ToolTipRole:
            return f"{row.source}\nmodel: {row.model}"
        if role == Qt.ForegroundRole and col == 2 and row.label:
            return label_color(row.label).darker(115)
        if role == Qt.TextAlignmentRole and col in (3, 4, 5):
            return int((Qt.AlignCenter if col == 5 else Qt.AlignRight) | Qt.AlignVCenter)
        return None

    @staticmethod
    def _text(row: HistoryRow, col: int) -> str:
        if col == 0:
            return datetime.fromtimestamp(row.time).strftime("%Y-%m-%d %H:%M")
        if col == 1:
            return row.source.replace("\\", "/").rsplit("/", 1)[-1] or row.source
        if col == 2:
            return row.label or NO_SPEECH_TEXT
        if col == 3:
            return f"{row.confidence:.0%}" if row.label else ""
        if col == 4:
            return f"{row.duration_s:.1f} s"
        return "♪" if row.has_audio else ""


class ProbabilityBars(pg.PlotWidget):
    """Bar chart of one row's class probabilities with their percentages; the predicted class
    is drawn opaque, the others faded."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.setMouseEnabled(False, False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setYRange(0, 1.08, padding=0)
        self.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
        self.getAxis("bottom").setHeight(32)
        self.bars: pg.BarGraphItem | None = None
        self._texts: list[pg.TextItem] = []

    def show_probs(self, probs: dict[str, float], label: str | None) -> None:
        """Draw ``probs`` (label -> p); an empty dict clears the chart."""
        for item in [self.bars, *self._texts]:
            if item is not None:
                self.removeItem(item)
        self.bars, self._texts = None, []
        names = list(probs)
        if names:
            brushes = []
            for i, name in enumerate(names):
                colour = label_color(name, i)
                colour.setAlpha(255 if name == label else 90)
                brushes.append(pg.mkBrush(colour))
            self.bars = pg.BarGraphItem(x=np.arange(len(names)), height=[probs[n] for n in names],
                                        width=0.6, brushes=brushes, pen=pg.mkPen(None))
            self.addItem(self.bars)
            for i, name in enumerate(names):
                text = pg.TextItem(f"{probs[name]:.0%}", color="#333333", anchor=(0.5, 1.0))
                text.setPos(i, probs[name])
                self.addItem(text)
                self._texts.append(text)
            self.setXRange(-0.6, len(names) - 0.4, padding=0)
        self.getAxis("bottom").setTicks([list(enumerate(names))])
