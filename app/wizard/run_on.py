"""The training wizard's "Run on" row: this computer, or a Ray cluster at an address, with a
connection check that shows the cluster's nodes and CPUs before the run starts.

The check runs ``python -m ser_studio.model.cluster.check ADDRESS`` as a QProcess (connecting
can take seconds and must not block the GUI thread or tie the app's process to a cluster) and
shows its one JSON line: "2 nodes, 24 CPUs (...)" or the error naming the address. The address
goes into run.json's "run" section as ``ray`` (model.config.run), so ``train`` runs there.
"""
from __future__ import annotations

import json
import logging
import sys

from PyQt5.QtCore import QProcess, pyqtSignal
from PyQt5.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

log = logging.getLogger(__name__)

HERE, CLUSTER = "this computer", "a Ray cluster at"
ADDRESS_HINT = "local, auto, HOST:PORT or ray://HOST:PORT"


class RunOnRow(QWidget):
    """Combo (this computer / a Ray cluster at), address field, Check button, result label.
    Signal ``checked(bool)``: a check ended (reachable or not)."""

    checked = pyqtSignal(bool)

    def __init__(self, parent=None, python: str = sys.executable):
        super().__init__(parent)
        self.python = python
        self.combo = QComboBox()
        self.combo.addItems([HERE, CLUSTER])
        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText(ADDRESS_HINT)
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("connect to the cluster and list its nodes and CPUs")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.combo, 0), (self.address_edit, 1),
                                (self.check_button, 0), (self.result_label, 2)):
            layout.addWidget(widget, stretch)
        self._process: QProcess | None = None
        self.combo.currentIndexChanged.connect(self._mode_changed)
        self.address_edit.textChanged.connect(lambda _text: self.result_label.clear())
        self.check_button.clicked.connect(self.check)
        self._mode_changed()

    def address(self) -> str | None:
        """The cluster's address, or None to run on this computer (or with no address)."""
        if self.combo.currentText() != CLUSTER:
            return None
        return self.address_edit.text().strip() or None

    def set_address(self, address: str | None) -> None:
        """Show a run.json's ``run.ray`` (None or "none": this computer)."""
        cluster = bool(address) and address.strip().lower() not in ("none", "off")
        self.combo.setCurrentText(CLUSTER if cluster else HERE)
        self.address_edit.setText(address if cluster else "")

    def _mode_changed(self) -> None:
        cluster = self.combo.currentText() == CLUSTER
        self.address_edit.setEnabled(cluster)
        self.check_button.setEnabled(cluster)
        self.result_label.clear()

    def check(self) -> None:
        """Start the connection check of the address (nothing when one is running)."""
        address = self.address()
        if address is None:
            self.result_label.setText(f"enter an address: {ADDRESS_HINT}")
            return
        if self._process is not None:
            return
        self.result_label.setText(f"connecting to {address}…")
        self.check_button.setEnabled(False)
        self._process = QProcess(self)
        self._process.finished.connect(self._finished)
        self._process.start(self.python, ["-m", "ser_studio.model.cluster.check", address])

    def _finished(self, code: int, _status) -> None:
        process, self._process = self._process, None
        raw = bytes(process.readAllStandardOutput()).decode("utf-8", "replace").strip()
        try:
            result = json.loads(raw.splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            error = bytes(process.readAllStandardError()).decode("utf-8", "replace").strip()
            result = {"error": f"the check failed (exit code {code}): "
                               f"{(error.splitlines() or ['no output'])[-1]}"}
        ok = code == 0 and "error" not in result
        self.result_label.setText(result["text"] if ok else result["error"])
        self.result_label.setStyleSheet("" if ok else "color: #c0392b;")
        self.check_button.setEnabled(self.combo.currentText() == CLUSTER)
        process.deleteLater()
        self.checked.emit(ok)
