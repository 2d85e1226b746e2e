"""Menus and shortcuts of the main window."""
from __future__ import annotations

from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction

from ser_studio.app.shell.theme import icon
from ser_studio.model.audio.io import UNSUPPORTED_SUFFIXES

# The File menu's dialogs. Formats that cannot be decoded are listed too: hidden, they would
# drop out of a selection of several files without a word; chosen, the Files tab says why each
# one is refused.
AUDIO_FILTER = (f"Audio files (*.wav *.flac *.ogg *.opus *.mp3 *.aiff *.aif "
                f"{' '.join('*' + s for s in UNSUPPORTED_SUFFIXES)});;All files (*)")
MODEL_FILTER = "Models (*.safetensors *.json *.onnx);;All files (*)"


def _action(window, text: str, slot, shortcut: str | None = None, icon_name: str | None = None,
            tip: str = "") -> QAction:
    action = QAction(text, window)
    if icon_name:
        action.setIcon(icon(icon_name))
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def build_menus(window) -> dict[str, QAction]:
    """File, Train and Help menus on ``window`` (a MainWindow); returns the actions by name."""
    actions = {
        "open_audio": _action(window, "&Open audio files…", window.open_audio_files, "Ctrl+O",
                              "open", "Analyse one or more audio files"),
        "open_model": _action(window, "Open &model…", window.open_model, "Ctrl+M", "model",
                              "Load a trained checkpoint"),
        "open_run": _action(window, "Open &run folder…", lambda: window.open_model(folder=True),
                            "Ctrl+Shift+M", "model", "Load the final model of a folder that "
                            "training wrote"),
        "export_history": _action(window, "&Export history…", window.export_history, "Ctrl+E",
                                  "export", "Save the history shown as CSV"),
        "quit": _action(window, "&Quit", window.close, "Ctrl+Q", None, "Close SER Studio"),
        "wizard": _action(window, "&Training wizard…", window.open_wizard, "Ctrl+T", "train",
                          "Train a model on your own corpus"),
        "calibrate": _action(window, "&Calibrate to my voice…", window.calibration.start,
                             None, "mic", "Record about 20 s of your speech for the live model"),
        "reset_calibration": _action(window, "&Reset calibration", window.calibration.reset,
                                     None, None, "Use the training data's statistics again"),
        "about": _action(window, "&About SER Studio", window.show_about, None, "about",
                         "The program and the model card"),
    }
    actions["export_history"].setEnabled(window.history_panel is not None)
    keep = QAction("&Keep audio of live segments", window)
    keep.setCheckable(True)
    keep.setChecked(window.settings.keep_audio)
    keep.setStatusTip("Store each live speech segment's audio with its history row (replay)")
    keep.toggled.connect(window.set_keep_audio)
    keep.setEnabled(window.history_panel is not None)
    actions["keep_audio"] = keep
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    for name in ("open_audio", "open_model", "open_run", "export_history", "keep_audio"):
        file_menu.addAction(actions[name])
    file_menu.addSeparator()
    file_menu.addAction(actions["quit"])
    live_menu = bar.addMenu("&Live")
    live_menu.addAction(actions["calibrate"])
    live_menu.addAction(actions["reset_calibration"])
    bar.addMenu("&Train").addAction(actions["wizard"])
    bar.addMenu("&Help").addAction(actions["about"])
    return actions
