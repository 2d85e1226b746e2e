"""Calibration of the live model to the user's voice: the Live tab's badge and its controller.

The badge says which speaker profile the live model uses, with Calibrate/Re-calibrate, Reset
and "Keep adapting" (off until chosen, remembered): the profile then keeps growing from the
user's speech while listening (app.calibration.profiles.Adapting), and the badge shows the
speech it holds. The controller opens app/calibration/calibration_dialog.py (live listening
pauses meanwhile and resumes after), and asks the inference worker to build, save, apply and
delete profiles (app/calibration/profiles.py) in its own thread. On every model load and input
device change the saved profile of that input and model, if any, is applied; a file that does
not fit is reported in the status bar and the training statistics are used. The input is the one
the Input box names: a microphone, or with ``--replay FILE`` the replay ("Replay: <file
name>"), whose profile is its own.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton

from ser_studio.app.calibration.calibration_dialog import CalibrationDialog
from ser_studio.app.calibration.profiles import ActiveProfile, default_profiles_dir

log = logging.getLogger(__name__)

NOT_CALIBRATED = "Not calibrated"
EXPECTS_CALIBRATION = "Not calibrated: this model expects calibration to your voice"


ADAPTING_FROM_NOTHING = "Adapting to your voice: no speech heard yet"


def badge_text(active: ActiveProfile | None, expects: bool = False,
               adapting: bool = False) -> str:
    if active is None:
        if adapting:
            return ADAPTING_FROM_NOTHING
        return EXPECTS_CALIBRATION if expects else NOT_CALIBRATED
    text = f"Calibrated to {active.device}: {active.speech_seconds:.0f} s of speech"
    return text + " (adapting)" if adapting else text


class ProfileBadge(QFrame):
    """Which profile is active, with Calibrate/Re-calibrate and Reset buttons."""

    calibrateRequested = pyqtSignal()
    resetRequested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("profileBadge")
        self.expects = False  # the model was trained per speaker (model.training.speaker_norms)
        self.text = QLabel(NOT_CALIBRATED)
        self.text.setObjectName("caption")
        self.calibrate = QPushButton("Calibrate to my voice…")
        self.calibrate.setToolTip("Record about 20 s of your normal speech so the model hears "
                                  "you relative to how you usually sound")
        self.calibrate.clicked.connect(self.calibrateRequested)
        self.reset = QPushButton("Reset")
        self.reset.setToolTip("Delete this input's calibration and use the training data's "
                              "statistics again")
        self.reset.clicked.connect(self.resetRequested)
        self.adapting = QCheckBox("Keep adapting")
        self.adapting.setToolTip("While listening, keep adding your speech to this input's "
                                 "profile (saved every few seconds of speech), so the model "
                                 "follows your voice slowly")
        self.adapting.toggled.connect(lambda _on: self.show_profile(self.active))
        self.active: ActiveProfile | None = None  # shown now (set by show_profile)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 2, 8, 2)
        row.addWidget(self.text, 1)
        row.addWidget(self.calibrate)
        row.addWidget(self.reset)
        row.addWidget(self.adapting)
        self.show_profile(None)

    def show_profile(self, active: ActiveProfile | None) -> None:
        self.active = active
        self.text.setText(badge_text(active, self.expects, self.adapting.isChecked()))
        self.text.setProperty("warning", active is None and self.expects)
        self.text.style().polish(self.text)
        self.text.setToolTip(active.path if active is not None else
                             "The model standardises features with its training data's "
                             "statistics" + (" (it was trained with each speaker standardised "
                                             "by their own voice, so it works best "
                                             "calibrated)" if self.expects else ""))
        self.calibrate.setText("Re-calibrate…" if active is not None
                               else "Calibrate to my voice…")
        self.calibrate.setEnabled(True)
        self.reset.setEnabled(active is not None)

    def show_busy(self, text: str) -> None:
        self.text.setText(text)
        self.calibrate.setEnabled(False)
        self.reset.setEnabled(False)


class Calibration(QObject):
    """Drives calibration for ``window`` (a MainWindow); profiles are kept in ``folder``."""

    def __init__(self, window, folder: str | Path | None = None):
        super().__init__(window)
        self.window = window
        self.folder = Path(folder) if folder is not None else default_profiles_dir()
        self.badge = ProfileBadge()
        self.dialog: CalibrationDialog | None = None
        self._resume_listening = False
        worker = window.inference.worker
        worker.profileChanged.connect(self._on_changed)
        worker.profileError.connect(self._on_error)
        worker.modelLoaded.connect(self._on_model_loaded)
        window.controls.deviceChanged.connect(self._on_device_changed)
        self.badge.calibrateRequested.connect(self.start)
        self.badge.resetRequested.connect(self.reset)
        self.badge.adapting.setChecked(window.settings.adapt_live)
        self.badge.adapting.toggled.connect(self._on_adapting_toggled)

    @property
    def active(self) -> ActiveProfile | None:
        """The profile the live model uses (the badge shows it)."""
        return self.badge.active

    def device_name(self) -> str:
        return self.window.controls.current_device_text()

    def _on_model_loaded(self, info) -> None:
        self.badge.expects = info.expects_calibration
        self.badge.show_profile(self.active)
        self.apply_saved()

    def apply_saved(self) -> None:
        """Use the saved profile of the current input and model (if any), and keep adapting
        it when that is chosen."""
        self.window.inference.apply_profile(self.folder, self.device_name())
        self._send_adapting()

    def _send_adapting(self) -> None:
        self.window.inference.set_adapting(self.badge.adapting.isChecked(), self.folder,
                                           self.device_name())

    def _on_adapting_toggled(self, on: bool) -> None:
        self.window.settings.adapt_live = on
        if self.window.model_info is not None:
            self._send_adapting()

    def _on_device_changed(self, _index) -> None:
        if self.window.model_info is not None:  # else the model's loading applies it
            self.apply_saved()

    def reset(self) -> None:
        """Delete the current input's profile; back to the training statistics."""
        self.badge.show_busy("Resetting…")
        self.window.inference.reset_profile(self.folder, self.device_name())

    def start(self) -> None:
        """Open the calibration dialog (listening pauses until it is closed)."""
        if self.dialog is not None:
            self.dialog.raise_()
            return
        if self.window.model_info is None:
            self.window.statusBar().showMessage("Load a model before calibrating", 8000)
            return
        controls, listening = self.window.controls, self.window.listening
        self._resume_listening = controls.listen.isChecked()
        dialog = CalibrationDialog(device=controls.current_device(),
                                   device_label=self.device_name(),
                                   stream_factory=listening.stream_factory, parent=self.window)
        dialog.recorded.connect(self._on_recorded)
        dialog.failed.connect(lambda text: self.window.show_error("Calibration", text))
        dialog.finished.connect(self._on_dialog_closed)
        self.dialog = dialog
        dialog.open()
        running = listening.recorder
        if self._resume_listening:
            self.window.stop_listening()
        if running is not None:  # the device is free once the live recorder has ended
            running.finished.connect(dialog.start)
        if running is None or not running.isRunning():  # (it may end before the connect)
            dialog.start()  # start() does nothing the second time

    def _on_recorded(self, chunks) -> None:
        self.badge.show_busy("Calibrating…")
        self.window.inference.make_profile(chunks, self.folder, self.device_name())

    def _on_dialog_closed(self, _result: int) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        dialog.recorder.finished.connect(lambda: self._after_dialog(dialog))
        if not dialog.recording:  # ended already (its finished may have come before connect)
            self._after_dialog(dialog)

    def _after_dialog(self, dialog) -> None:
        """Once ``dialog``'s recorder has ended: forget it and resume listening (once)."""
        if self.dialog is not dialog:
            return
        self.dialog = None
        dialog.deleteLater()
        if self._resume_listening:
            self._resume_listening = False
            self.window.start_listening()

    def _on_changed(self, active: ActiveProfile | None) -> None:
        was = self.active
        self.badge.show_profile(active)
        if active is not None and (was is None or was.path != active.path
                                   or was.speech_seconds != active.speech_seconds):
            self.window.statusBar().showMessage(badge_text(active), 8000)

    def _on_error(self, text: str) -> None:
        self.badge.show_profile(self.active)
        self.window.statusBar().showMessage(text, 10000)

    def shutdown(self, timeout_ms: int = 300) -> None:
        """At close: stop a calibration recording (bounded wait)."""
        if self.dialog is not None and self.dialog.recording:
            self.dialog.recorder.request_stop()
            self.dialog.recorder.wait(timeout_ms)
