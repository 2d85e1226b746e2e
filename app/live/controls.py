"""The control bar above the live view: listen, input device, model, window, hop, smoothing.

It only emits what the user asked for; the main window decides what happens. Device listing
runs on the thread pool (PortAudio can take a moment to scan the audio system). With ``--replay
FILE`` the file is the input: the Input box names it (replay_input_name) and lists no devices,
so calibration, its saved profile and the status bar all speak of the replay, never of a
microphone.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal
from PyQt5.QtWidgets import (QComboBox, QDoubleSpinBox, QFrame, QHBoxLayout, QLabel,
                             QPushButton, QSpinBox, QToolButton)

from ser_studio.app.live.devices import InputDevice, list_input_devices, rescan
from ser_studio.app.shell.theme import icon
from ser_studio.model.constants import LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS

log = logging.getLogger(__name__)

DEFAULT_MODEL_TEXT = "Shipped default model"
DEFAULT_INPUT_TEXT = "System default input"
OPEN_MODEL_TEXT = "Open checkpoint…"
NO_MODEL_TEXT = "No model loaded"


def replay_input_name(path: str | Path) -> str:
    """The input a replayed file is (``main.py --replay FILE``): "Replay: <file name>", the
    name its speaker profiles are saved under (app/calibration/profiles.py), apart from any
    microphone's."""
    return f"Replay: {Path(path).name}"


def model_display_name(path: str) -> str:
    """A checkpoint's name in the Model box: its stem, or its run folder's name for a run's
    ``model.safetensors``."""
    p = Path(path)
    stem = p.name.removesuffix(".safetensors").removesuffix(".json")
    return p.parent.name if stem == "model" and p.parent.name else stem


class _DeviceScan(QRunnable):
    """Lists input devices on a pool thread and reports through ``signals``."""

    class Signals(QObject):
        done = pyqtSignal(object, str)  # list[InputDevice], error text ("" when fine)

    def __init__(self, do_rescan: bool):
        super().__init__()
        self.do_rescan = do_rescan
        self.signals = self.Signals()
        self.setAutoDelete(False)  # Controls keeps it until its result has arrived

    def run(self) -> None:
        try:
            if self.do_rescan:
                rescan()
            self.signals.done.emit(list_input_devices(), "")
        except Exception as exc:  # a broken audio system must not take the app down
            log.warning("listing input devices failed: %s", exc)
            self.signals.done.emit([], str(exc))


class Controls(QFrame):
    """Signals: listenToggled(bool), deviceChanged(object index or None), modelChosen(str
    path, "" = default), openModelRequested(), windowChanged(float s), hopChanged(float s),
    smoothingChanged(int windows)."""

    listenToggled = pyqtSignal(bool)
    deviceChanged = pyqtSignal(object)
    modelChosen = pyqtSignal(str)
    openModelRequested = pyqtSignal()
    windowChanged = pyqtSignal(float)
    hopChanged = pyqtSignal(float)
    smoothingChanged = pyqtSignal(int)
    devicesListed = pyqtSignal(str)  # error text, "" when the list is fine

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("controls")
        self.devices: list[InputDevice] = []
        self._wanted_device: int | str | None = None
        self._scans: list[_DeviceScan] = []
        self.replay: Path | None = None  # the replayed file when it is the input (set_replay)
        self._build()

    def _build(self) -> None:
        self.listen = QPushButton(icon("mic-white"), "Start listening")
        self.listen.setObjectName("listenButton")
        self.listen.setCheckable(True)
        self.listen.toggled.connect(self._on_listen)
        self.device = QComboBox()
        self.device.setMinimumContentsLength(10)
        self.device.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.device.setToolTip("Input device")
        self.device.currentIndexChanged.connect(self._on_device)
        self.refresh = QToolButton()
        self.refresh.setIcon(icon("refresh"))
        self.refresh.setToolTip("Look for input devices again")
        self.refresh.clicked.connect(lambda: self.refresh_devices(rescan=True))
        self.model = QComboBox()
        self.model.setMinimumContentsLength(8)
        self.model.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.model.addItem(icon("model"), DEFAULT_MODEL_TEXT, "")
        self.model.addItem(icon("open"), OPEN_MODEL_TEXT, None)
        self.model.activated.connect(self._on_model)
        self.window = self._spin(1.0, 10.0, LIVE_BUFFER_SECONDS, 0.5, " s", "Window analysed")
        self.hop = self._spin(0.25, 5.0, LIVE_HOP_SECONDS, 0.25, " s", "New analysis every")
        self.window.valueChanged.connect(self._on_window)
        self.hop.valueChanged.connect(self._on_hop)
        self.smoothing = QSpinBox()
        self.smoothing.setRange(1, 20)
        self.smoothing.setSuffix(" win")
        self.smoothing.setToolTip("Average the shown probabilities over the last this many "
                                  "speech windows of the current segment (1 = no smoothing). "
                                  "History rows are not smoothed: each is the mean of all its "
                                  "segment's windows (\u201cLast segment\u201d)")
        self.smoothing.valueChanged.connect(self.smoothingChanged)
        row = QHBoxLayout(self)
        row.setSpacing(6)
        row.addWidget(self.listen)
        row.addSpacing(10)
        for caption, widgets in (("Input", [self.device, self.refresh]), ("Model", [self.model]),
                                 ("Window", [self.window]), ("Hop", [self.hop]),
                                 ("Average", [self.smoothing])):
            label = QLabel(caption)
            label.setObjectName("caption")
            row.addWidget(label)
            for w in widgets:
                row.addWidget(w, 2 if isinstance(w, QComboBox) else 0)
            row.addSpacing(6)

    @staticmethod
    def _spin(lo, hi, value, step, suffix, tip) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        return spin

    # -- devices ---------------------------------------------------------------------------
    def refresh_devices(self, *, rescan: bool = False, select: int | str | None = None) -> None:
        """List input devices in the background; ``select`` (index or name) is chosen after."""
        if self.replay is not None:  # the replayed file is the only input
            return
        if select is not None:
            self._wanted_device = select
        elif self.device.count():
            self._wanted_device = self.device.currentData()
        self.refresh.setEnabled(False)
        scan = _DeviceScan(rescan and not self.listen.isChecked())
        scan.signals.done.connect(self._on_devices)
        self._scans.append(scan)
        QThreadPool.globalInstance().start(scan)

    def _on_devices(self, devices: list[InputDevice], error: str) -> None:
        self._scans = [s for s in self._scans if s.signals is not self.sender()]
        self.devices = devices
        self.refresh.setEnabled(True)
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItem(icon("mic"), DEFAULT_INPUT_TEXT, None)
        for dev in devices:
            self.device.addItem(dev.label(), dev.index)
            self.device.setItemData(self.device.count() - 1,
                                    f"{dev.name} · {dev.hostapi} · {dev.default_rate:g} Hz",
                                    3)  # Qt.ToolTipRole
        wanted = self._wanted_device
        pos = 0
        for i in range(1, self.device.count()):
            if wanted is not None and (self.device.itemData(i) == wanted
                                       or self.device.itemText(i) == str(wanted)):
                pos = i
        self.device.setCurrentIndex(pos)
        self.device.blockSignals(False)
        self.devicesListed.emit(error)
        self._on_device(pos)

    def set_replay(self, path: str | Path) -> None:
        """Make the replayed file ``path`` the input: the Input box shows only it (no device
        list, no rescan) and emits no deviceChanged, so the remembered microphone stays."""
        self.replay = Path(path)
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItem(icon("open"), replay_input_name(path), None)
        self.device.setItemData(0, f"Replaying {path} instead of a microphone (--replay)", 3)
        self.device.setToolTip(f"Input: {path}, replayed in real time (--replay); start "
                               "without --replay to choose a microphone")
        self.device.blockSignals(False)
        self.refresh.hide()

    def select_device(self, index: int | None) -> None:
        """Show device ``index`` (None = system default) as chosen, without deviceChanged."""
        for i in range(self.device.count()):
            if self.device.itemData(i) == index:
                self.device.blockSignals(True)
                self.device.setCurrentIndex(i)
                self.device.blockSignals(False)
                return

    def current_device(self) -> int | None:
        return self.device.currentData() if self.device.count() else None

    def current_device_text(self) -> str:
        return self.device.currentText() or DEFAULT_INPUT_TEXT

    def _on_device(self, _index: int) -> None:
        self.deviceChanged.emit(self.current_device())

    # -- model -------------------------------------------------------------------------------
    def set_model_path(self, path: str, origin: str = "", heard: str = "") -> None:
        """Show ``path`` ("" = the shipped model) as the chosen model (adding it when new);
        the box's tooltip says where the model file is, how it was chosen (``origin``) and,
        once it has loaded, the languages it was trained on (``heard``)."""
        if self.model.itemText(0) == NO_MODEL_TEXT:
            self.model.removeItem(0)
        index = 0 if not path else next(
            (i for i in range(self.model.count()) if self.model.itemData(i) == path), None)
        if index is None:
            self.model.insertItem(1, icon("model"), model_display_name(path), path)
            self.model.setItemData(1, path, 3)
            index = 1
        self.model.setCurrentIndex(index)
        where = path or "the shipped model (assets/default_model.safetensors)"
        self.model.setToolTip("\n".join(x for x in (where, origin, heard) if x))

    def show_no_model(self, why: str) -> None:
        """Show that no model is in use (loading failed with none loaded before), as the live
        view's headline does: a greyed "No model loaded" entry that cannot be picked, ``why``
        in the tooltip. The next set_model_path removes it."""
        if self.model.itemText(0) != NO_MODEL_TEXT:
            self.model.insertItem(0, icon("model"), NO_MODEL_TEXT)
            self.model.model().item(0).setEnabled(False)
        self.model.setCurrentIndex(0)
        self.model.setToolTip(why)

    def _on_model(self, index: int) -> None:
        data = self.model.itemData(index)
        if data is None:
            self.openModelRequested.emit()
        else:
            self.modelChosen.emit(data)

    # -- listening and timing ------------------------------------------------------------
    def set_listening(self, on: bool) -> None:
        """Reflect the recorder's state without emitting listenToggled."""
        self.listen.blockSignals(True)
        self.listen.setChecked(on)
        self.listen.blockSignals(False)
        self._show_listen(on)

    def _show_listen(self, on: bool) -> None:
        self.listen.setText("Stop listening" if on else "Start listening")
        self.listen.setIcon(icon("stop" if on else "mic-white"))
        self.refresh.setEnabled(not on)

    def _on_listen(self, on: bool) -> None:
        self._show_listen(on)
        self.listenToggled.emit(on)

    def _on_window(self, value: float) -> None:
        if self.hop.value() > value:
            self.hop.setValue(value)
        self.windowChanged.emit(value)

    def _on_hop(self, value: float) -> None:
        if value > self.window.value():
            self.window.setValue(value)
        self.hopChanged.emit(value)
