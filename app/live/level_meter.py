"""An input level meter: a horizontal bar from -60 dBFS to 0 dBFS with a falling peak mark."""
from __future__ import annotations

import time

from PyQt5.QtCore import QRectF, QSize, Qt
from PyQt5.QtGui import QColor, QLinearGradient, QPainter, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0
PEAK_HOLD_S = 1.5
PEAK_FALL_DB_PER_S = 20.0


class LevelMeter(QWidget):
    """Shows the newest level; the owner calls ``set_level`` (cheap) and ``update``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.level_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self._peak_time = 0.0
        self.warning = ""
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Input level (dBFS)")

    def sizeHint(self) -> QSize:
        return QSize(220, 26)

    def minimumSizeHint(self) -> QSize:
        return QSize(80, 22)

    def set_level(self, db: float) -> None:
        """Store a level in dBFS; the peak mark holds, then falls."""
        now = time.monotonic()
        self.level_db = max(FLOOR_DB, min(0.0, float(db)))
        held = now - self._peak_time
        if held > PEAK_HOLD_S:
            fallen = self.peak_db - PEAK_FALL_DB_PER_S * (held - PEAK_HOLD_S)
            self.peak_db = max(FLOOR_DB, fallen)
        if self.level_db >= self.peak_db:
            self.peak_db, self._peak_time = self.level_db, now

    def reset(self) -> None:
        self.level_db = self.peak_db = FLOOR_DB
        self.set_warning("")

    def set_warning(self, text: str) -> None:
        """A level problem to show ("input is clipping ...", "input is very quiet ..."):
        the meter's label turns red and names it; "" clears it."""
        if text == self.warning:
            return
        self.warning = text
        self.setToolTip(f"{text[0].upper()}{text[1:]}" if text else "Input level (dBFS)")
        self.update()

    @staticmethod
    def _fraction(db: float) -> float:
        return (db - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        text_w = 76  # fits "-60.0 dB", "too quiet" and "clipping"
        bar = QRectF(1, 5, max(10, self.width() - text_w - 8), self.height() - 10)
        p.setPen(Qt.NoPen)
        p.setBrush(QColor("#e6e9ef"))
        p.drawRoundedRect(bar, 4, 4)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        grad.setColorAt(0.0, QColor("#3cb371"))
        grad.setColorAt(0.7, QColor("#f2c94c"))
        grad.setColorAt(1.0, QColor("#e0524a"))
        filled = QRectF(bar.left(), bar.top(), bar.width() * self._fraction(self.level_db),
                        bar.height())
        p.setBrush(grad)
        p.drawRoundedRect(filled, 4, 4)
        x = bar.left() + bar.width() * self._fraction(self.peak_db)
        p.setPen(QPen(QColor("#27303f"), 2))
        p.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
        p.setPen(QColor("#c0392b" if self.warning else "#4a5263"))
        label = "silent" if self.level_db <= FLOOR_DB else f"{self.level_db:5.1f} dB"
        if self.warning:
            label = "clipping" if "clipping" in self.warning else "too quiet"
        p.drawText(QRectF(bar.right() + 6, 0, text_w, self.height()),
                   Qt.AlignVCenter | Qt.AlignLeft, label)
        p.end()
