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
from PyQt5.QtWidgets import QLabel

STATUS_FIELD_PX = 290  # longer status texts are elided (full text in the tooltip)
STATUS_MIN_PX = 60  # a field narrower than its text (a narrow window) clips it


def add_status_fields(window) -> None:
    """The permanent fields on ``window``'s status bar (a MainWindow), kept as its
    ``status_device``, ``status_model``, ``status_latency`` and ``status_dropped``."""
    bar = window.statusBar()
    window.status_device = QLabel("Input: —")
    window.status_model = QLabel("Model: loading…")
    window.status_latency = QLabel("Latency: —")
    window.status_dropped = QLabel("Dropped: 0")
    for w in (window.status_device, window.status_model, window.status_latency,
              window.status_dropped):
        w.setObjectName("statusField")
        w.setMinimumWidth(STATUS_MIN_PX)
        bar.addPermanentWidget(w)


def set_field(label: QLabel, text: str) -> None:
    """Show ``text`` in a status field, elided at the end when too long (full text in the
    tooltip)."""
    label.setText(QFontMetrics(label.font()).elidedText(text, Qt.ElideRight, STATUS_FIELD_PX))
    label.setToolTip(text)


def show_dropped(label: QLabel, overflows: int, lost: int, stale: int) -> None:
    """The Dropped field: audio blocks lost (device overflows and buffer overruns) and stale
    windows skipped; the tooltip tells them apart."""
    label.setText(f"Dropped: {overflows + lost} blocks · {stale} windows")
    label.setToolTip(f"{overflows} device overflows, {lost} buffer overruns, {stale} stale "
                     "windows skipped because the model was busy")
