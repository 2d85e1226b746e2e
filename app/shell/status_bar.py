"""The main window's status-bar fields: input device, model, latency and dropped audio.

Each field is a permanent QLabel on the status bar; a text longer than STATUS_FIELD_PX is
elided, with the full text in its tooltip. A field's minimum width is fixed (STATUS_MIN_PX), not
its text's: texts grow when listening starts ("Dropped: 0 blocks · 0 windows", the input's
rate), and a minimum that followed them would widen the window. Passing messages still go
through ``statusBar().showMessage``.
"""
from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QFontMetrics
from PyQt5.QtWidgets import QLabel, QStatusBar

STATUS_FIELD_PX = 290  # longer status texts are elided (full text in the tooltip)
STATUS_MIN_PX = 60  # a field narrower than its text (a narrow window) clips it


def set_field(label: QLabel, text: str) -> None:
    """Show ``text`` in a status field, elided at the end when too long (full text in the
    tooltip)."""
    label.setText(QFontMetrics(label.font()).elidedText(text, Qt.ElideRight, STATUS_FIELD_PX))
    label.setToolTip(text)


class StatusFields:
    """The permanent fields on ``bar``: ``device``, ``model``, ``latency`` and ``dropped``
    (QLabels, read by tests), and the drop counts the Dropped field shows."""

    def __init__(self, bar: QStatusBar):
        self.device = QLabel("Input: —")
        self.model = QLabel("Model: loading…")
        self.latency = QLabel("Latency: —")
        self.dropped = QLabel("Dropped: 0")
        self._blocks = (0, 0)  # device overflows, buffer overruns
        self._stale = 0  # windows skipped because the model was busy
        for w in (self.device, self.model, self.latency, self.dropped):
            w.setObjectName("statusField")
            w.setMinimumWidth(STATUS_MIN_PX)
            bar.addPermanentWidget(w)

    def show_device(self, text: str) -> None:
        set_field(self.device, f"Input: {text}")

    def show_model(self, text: str) -> None:
        set_field(self.model, f"Model: {text}")

    def show_latency(self, seconds: float) -> None:
        self.latency.setText(f"Latency: {seconds * 1000:.0f} ms")

    def set_blocks_lost(self, overflows: int, lost: int) -> None:
        """Audio blocks lost so far: device overflows and ring-buffer overruns."""
        self._blocks = (overflows, lost)
        self._show_dropped()

    def set_stale(self, stale: int) -> None:
        """Windows skipped so far because the model was busy."""
        self._stale = stale
        self._show_dropped()

    def drop_counts(self) -> tuple[int, int, int]:
        """(device overflows, buffer overruns, stale windows) as the Dropped field shows."""
        return (*self._blocks, self._stale)

    def _show_dropped(self) -> None:
        overflows, lost = self._blocks
        self.dropped.setText(f"Dropped: {overflows + lost} blocks · {self._stale} windows")
        self.dropped.setToolTip(f"{overflows} device overflows, {lost} buffer overruns, "
                                f"{self._stale} stale windows skipped because the model was "
                                "busy")
