"""The main window: composes the live view, files, history, menus and status bar.

Heavy work lives elsewhere: the recorder thread (app/live/recorder.py via
app/live/listening.py), the inference worker thread (app/live/inference_worker.py), the file
worker thread (app/files/file_worker.py: files never hold live windows back) and the history
panel's own pool. Nothing here blocks: slots store results in widgets, which paint on their own
timers. The other areas are reached through their signals and public methods: the live input
(InputLink: device, window and hop, listening), the status-bar fields (StatusFields), the menus
(``build_menus`` returns the actions) and the training wizard (WizardLink).
"""
from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (QFileDialog, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout,
                             QWidget)

from ser_studio.app.calibration.calibration import Calibration
from ser_studio.app.files.file_panel import FilePanel
from ser_studio.app.files.file_worker import FileThread, FileWorker
from ser_studio.app.history.history_store import MICROPHONE
from ser_studio.app.live.controls import Controls
from ser_studio.app.live.inference_thread import InferenceThread
from ser_studio.app.live.inference_worker import InferenceWorker
from ser_studio.app.live.listening import Listening
from ser_studio.app.live.live_panel import LivePanel
from ser_studio.app.shell.about import AboutDialog
from ser_studio.app.shell.input_link import InputLink
from ser_studio.app.shell.menus import AUDIO_FILTER, MODEL_FILTER, build_menus
from ser_studio.app.shell.model_info import languages_text
from ser_studio.app.shell.model_origin import (ORIGIN_BOX, ORIGIN_CLI, ORIGIN_OPENED,
                                               ORIGIN_REMEMBERED, ORIGIN_RUN_FOLDER, ORIGIN_SHIPPED,
                                               ORIGIN_WIZARD)
from ser_studio.app.shell.settings import AppSettings
from ser_studio.app.shell.status_bar import StatusFields
from ser_studio.app.shell.theme import icon
from ser_studio.app.shell.torch_threads import inference_threads, use_threads
from ser_studio.app.wizard.wizard_link import WizardLink
from ser_studio.model.networks.checkpoint import CheckpointError, resolve_model_path

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """model_path: checkpoint to load (None = the saved choice, else the default model);
    history: a HistoryStore (None = no history); device: NAME_OR_INDEX from the command line;
    settings: AppSettings (tests pass an ini-backed one); stream_factory: replaces the
    sounddevice input stream (tests); profiles_dir: where speaker profiles are kept (None =
    the user data folder's, app/calibration/profiles.py)."""

    def __init__(self, *, model_path: str | None = None, history=None, device=None,
                 settings: AppSettings | None = None, stream_factory=None, profiles_dir=None):
        super().__init__()
        self.settings = settings or AppSettings()
        self.history = history
        self.model_info = None
        self.model_origin = ""
        self._pending_origin = ""
        self._error_box: QMessageBox | None = None
        self.setWindowTitle("SER Studio — speech emotion recognition")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        replayed = getattr(stream_factory, "path", None)
        worker = InferenceWorker(history=history, smoothing=self.settings.smoothing,
                                 keep_audio=self.settings.keep_audio,
                                 live_source=f"replay: {replayed}" if replayed else MICROPHONE)
        use_threads(inference_threads())  # before any worker runs torch (app.shell.torch_threads)
        self.inference = InferenceThread(worker, self)
        self.files = FileThread(FileWorker(history=history), self)
        self.listening = Listening(self.inference, stream_factory, self)
        self._build()
        if replayed:  # the file is the input, named as such in the Input box (app/live/controls.py)
            self.controls.set_replay(replayed)
            self.status.show_device(self.controls.current_device_text())
        self.calibration = Calibration(self, profiles_dir)
        self.live_box.insertWidget(1, self.calibration.badge)
        self.input_link = InputLink(self.controls, self.listening, self.status, self.settings,
                                    status_bar=self.statusBar(), cli_device=device, parent=self,
                                    show_error=lambda title, text: self.show_error(title, text))
        self.actions_by_name = build_menus(self)
        self._wire()
        self._restore()
        if model_path is not None:
            self.load_model(str(model_path), ORIGIN_CLI)
        else:
            self.load_model(self.settings.model_path,
                            ORIGIN_REMEMBERED if self.settings.model_path else ORIGIN_SHIPPED)
        self.controls.refresh_devices(select=device if device is not None
                                      else (self.settings.device or None))

    # -- composition ---------------------------------------------------------------------
    def _build(self) -> None:
        self.controls = Controls()
        self.live_panel = LivePanel()
        self.file_panel = FilePanel()
        live = QWidget()
        box = self.live_box = QVBoxLayout(live)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.controls)
        box.addWidget(self.live_panel, 1)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(live, icon("mic"), "Live")
        self.tabs.addTab(self.file_panel, icon("open"), "Files")
        self.history_panel = None
        if self.history is not None:
            from ser_studio.app.history.history_panel import HistoryPanel

            self.history_panel = HistoryPanel(
                self.history, retention_days=self.settings.audio_retention_days)
            self.history_panel.retentionChanged.connect(
                lambda days: setattr(self.settings, "audio_retention_days", days))
            self.tabs.addTab(self.history_panel, icon("history"), "History")
        self.setCentralWidget(self.tabs)
        self.status = StatusFields(self.statusBar())
        self.wizard_link = WizardLink(self, ask=lambda text: self.ask_quit_training(text))

    def _wire(self) -> None:
        c, w = self.controls, self.inference.worker
        c.modelChosen.connect(lambda path: self.load_model(path, ORIGIN_BOX))
        c.openModelRequested.connect(self.open_model)
        c.smoothingChanged.connect(self._on_smoothing)
        self.file_panel.openRequested.connect(self.open_audio_files)
        self.file_panel.attach(self.files)
        self.file_panel.adapt.setChecked(self.settings.adapt_file_speaker)
        self.file_panel.adapt.toggled.connect(
            lambda on: setattr(self.settings, "adapt_file_speaker", on))
        self.file_panel.fileFailed.connect(self._on_file_error)
        self.file_panel.fileCancelled.connect(lambda path: self.statusBar().showMessage(
            f"Cancelled {Path(path).name}", 5000))
        self.files.worker.modelError.connect(lambda t: self.statusBar().showMessage(t, 10000))
        self.files.worker.historyError.connect(lambda t: self.statusBar().showMessage(t, 8000))
        self.listening.state.connect(self.live_panel.set_listening)
        self.listening.level.connect(self.live_panel.set_level)
        w.result.connect(self._on_result)
        w.segmentClosed.connect(self.live_panel.set_segment)
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelError.connect(self._on_model_error)
        w.historyError.connect(lambda text: self.statusBar().showMessage(text, 8000))
        if self.history_panel is not None:
            w.historyAdded.connect(lambda _id: self.history_panel.refresh())
            self.files.worker.historyAdded.connect(lambda _id: self.history_panel.refresh())
            self.history_panel.message.connect(lambda t: self.statusBar().showMessage(t, 5000))
        self.tabs.currentChanged.connect(lambda i: setattr(self.settings, "tab", i))
        self.wizard_link.modelReady.connect(self._on_wizard_model)
        self.wizard_link.message.connect(self.statusBar().showMessage)
        self.wizard_link.closeRequested.connect(self.close)

    def _restore(self) -> None:
        s = self.settings
        if s.geometry is not None:
            self.restoreGeometry(s.geometry)
        else:
            self.resize(1280, 820)
        if s.window_state is not None:
            self.restoreState(s.window_state)
        for spin, value in ((self.controls.window, s.window_s), (self.controls.hop, s.hop_s),
                            (self.controls.smoothing, s.smoothing)):
            spin.blockSignals(True)  # restoring is not a change to save back
            spin.setValue(value)
            spin.blockSignals(False)
        self.tabs.setCurrentIndex(min(s.tab, self.tabs.count() - 1))

    # -- model -----------------------------------------------------------------------------
    def load_model(self, path: str, origin: str = "") -> None:
        """Load a checkpoint ("" = the default model) in the worker thread; ``origin`` says
        how it was chosen (shown with the model once it has loaded)."""
        self.status.model.setText("Model: loading…")
        self._pending_origin = origin or (ORIGIN_SHIPPED if not path else ORIGIN_BOX)
        try:  # a run folder: the box shows (and settings keep) its model.safetensors
            path = str(resolve_model_path(path)) if path else ""
        except CheckpointError:
            pass  # the loaders report it, with what the folder holds
        self.controls.set_model_path(path or "", self._pending_origin)
        self.inference.load_model(path or "")
        self.files.load_model(path or "")  # its own Predictor; files queued later wait for it

    def open_model(self, folder: bool = False) -> None:
        """File › Open model, or with ``folder`` File › Open run folder (its final model)."""
        start = self.settings.last_folder("model")
        path = (QFileDialog.getExistingDirectory(self, "Open run folder", start) if folder else
                QFileDialog.getOpenFileName(self, "Open model", start, MODEL_FILTER)[0])
        if path:
            self.settings.remember_folder("model", path)
            self.load_model(path, ORIGIN_RUN_FOLDER if folder else ORIGIN_OPENED)
        else:
            self._show_model_in_box()

    def _on_model_loaded(self, info) -> None:
        self.model_info = info
        default = info.facts.get("shipped") is True
        self.settings.model_path = "" if default else info.path
        self.model_origin = ORIGIN_SHIPPED if default else self._pending_origin
        self._show_model_in_box()
        self.status.show_model(f"{info.name} — {self.model_origin}")
        self.live_panel.set_labels(info.labels)
        self.live_panel.set_idle_text("Ready", "Press Start to listen")
        self.file_panel.set_labels(info.labels)
        self.statusBar().showMessage(f"Model {info.name} loaded ({', '.join(info.labels)})", 5000)

    def _show_model_in_box(self) -> None:
        """The Model box shows the model in use: its path, how it was chosen and (once one
        has loaded) the languages it was trained on."""
        heard = languages_text(self.model_info.languages) if self.model_info else ""
        self.controls.set_model_path(self.settings.model_path, self.model_origin, heard)

    def _on_model_error(self, text: str) -> None:
        if self.model_info is not None:  # the model loaded before stays in use
            self.status.show_model(self.model_info.name)
            self._show_model_in_box()
        else:  # the headline, the Model box and the status bar all say so
            self.status.model.setText("Model: none")
            self.live_panel.set_idle_text("No model", "Open a model (File › Open model, "
                                          "Ctrl+M) or train one (Train › Training wizard)")
            self.controls.show_no_model(f"No model is loaded: {text.splitlines()[0]}")
        self.show_error("Model", text + "\n\nTrain a model (Train › Training wizard, Ctrl+T) "
                        "or open a checkpoint (File › Open model, Ctrl+M).")

    # -- listening (the input itself: app/shell/input_link.py) --------------------------------
    def start_listening(self) -> None:
        self.controls.listen.setChecked(True)

    def stop_listening(self) -> None:
        self.controls.listen.setChecked(False)

    def confirm_keep_audio(self, text: str) -> bool:
        """Yes/No before storing microphone audio (replaceable in tests)."""
        answer = QMessageBox.question(self, "Keep audio of live segments?", text,
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def set_keep_audio(self, keep: bool) -> None:
        """Whether live segments keep their audio (read by the worker at each write). Turning
        it on says what is stored where, for how long, and asks first."""
        days = self.settings.audio_retention_days
        kept = f"for {days} days (History tab)" if days else "until you delete it"
        if keep and not self.confirm_keep_audio(
                "The audio of every speech segment the microphone hears will be stored with its "
                f"history row in {self.history.path} (16 kHz FLAC, about 25 KB per second of "
                f"speech) and kept {kept}. Anyone with access to that file can listen to it."
                "\n\nStore the audio?"):
            action = self.actions_by_name["keep_audio"]
            action.blockSignals(True)
            action.setChecked(False)
            action.blockSignals(False)
            keep = False
        self.settings.keep_audio = keep
        self.inference.worker.keep_audio = keep

    def _on_smoothing(self, windows: int) -> None:
        self.settings.smoothing = windows
        self.inference.set_smoothing(windows)

    def _on_result(self, result) -> None:
        self.live_panel.set_result(result)
        if result.model_loaded:
            self.status.show_latency(result.latency_s)
        self.status.set_stale(result.stale_dropped)

    # -- files -----------------------------------------------------------------------------
    def open_audio_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open audio files",
                                                self.settings.last_folder("audio"), AUDIO_FILTER)
        if paths:
            self.settings.remember_folder("audio", paths[0])
            self.analyse_files(paths)

    def analyse_files(self, paths) -> None:
        """Analyse files in the file worker's thread (live windows keep flowing); each shows
        in the Files tab's queue with its progress, then as a result or error row."""
        paths = [str(p) for p in paths]
        self.tabs.setCurrentWidget(self.file_panel)
        self.statusBar().showMessage(f"Analysing {len(paths)} file(s)…", 4000)
        self.file_panel.analyse(paths)

    def _on_file_error(self, path: str, _message: str) -> None:
        self.statusBar().showMessage(f"Could not analyse {Path(path).name} (see Files)", 8000)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.analyse_files(paths)

    # -- dialogs ---------------------------------------------------------------------------
    def export_history(self) -> None:
        if self.history_panel is not None:
            self.tabs.setCurrentWidget(self.history_panel)
            self.history_panel.export_csv()

    def open_wizard(self) -> None:
        """Train › Training wizard; its new model is loaded into the live view."""
        self.wizard_link.show()

    @property
    def wizard(self):
        """The open training wizard, or None."""
        return self.wizard_link.wizard

    def _on_wizard_model(self, path: str) -> None:
        self.load_model(path, ORIGIN_WIZARD)
        self.tabs.setCurrentIndex(0)

    def show_about(self) -> None:
        AboutDialog(self.model_info, self).exec_()

    def show_error(self, title: str, text: str) -> None:
        """A non-modal warning; at most one is open (a newer message replaces the text)."""
        log.warning("%s: %s", title, text)
        self.statusBar().showMessage(text.splitlines()[0], 10000)
        if self._error_box is None:
            self._error_box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self)
            self._error_box.setWindowModality(Qt.NonModal)
        self._error_box.setWindowTitle(title)
        self._error_box.setText(text)
        self._error_box.show()

    # -- closing -----------------------------------------------------------------------------
    def ask_quit_training(self, text: str) -> bool:
        """Yes/No question before quitting while the wizard trains (replaceable in tests)."""
        answer = QMessageBox.question(self, "Training is running", text,
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def closeEvent(self, event) -> None:
        """Stop flags first, then bounded waits (under 2 s in all); never hangs."""
        if self.wizard_link.holds_close():
            event.ignore()
            return
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()
        self.live_panel.stop()
        self.inference.worker.stop()
        self.files.worker.stop()  # a file in progress stops at its next window
        self.listening.shutdown(600)
        self.calibration.shutdown(300)
        self.inference.shutdown(1000)
        self.files.shutdown(300)
        if self.history_panel is not None:
            self.history_panel.stop_playback()
        self.wizard_link.close_wizard()  # cancels a running training
        event.accept()
