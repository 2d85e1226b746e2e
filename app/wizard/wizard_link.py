"""The main window's link to the training wizard: opening it (one at a time) and holding the
window's close while a training runs, so quitting never cuts a run off unasked.

The wizard runs ``main.py train`` (MAIN_PY) as a subprocess; its new model is loaded into the
live view by the window's ``_on_wizard_model``.
"""
from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"


def show_wizard(window) -> None:
    """Open the training wizard for ``window`` (a MainWindow), or raise the one already open."""
    from ser_studio.app.wizard.wizard import TrainingWizard

    if window.wizard is not None and window.wizard.isVisible():
        window.wizard.raise_()
        window.wizard.activateWindow()
        return
    wizard = TrainingWizard(window, main_py=str(MAIN_PY))
    wizard.modelReady.connect(window._on_wizard_model)
    wizard.setAttribute(Qt.WA_DeleteOnClose)
    wizard.destroyed.connect(lambda: setattr(window, "wizard", None))
    wizard.show()
    window.wizard = wizard


def training_holds_close(window) -> bool:
    """True while a wizard training keeps ``window`` open: the user is asked first
    (``window.ask_quit_training``); a confirmed quit stops the trainer (finished folds are kept)
    and closes the window once the trainer has ended, without waiting on the GUI thread."""
    wizard = window.wizard
    if wizard is None or not wizard.train_page.running():
        return False
    if window._quitting_after_training:
        return True
    run = wizard.run_dir()
    if not window.ask_quit_training(
            f"A training run is writing to {run}.\n\nQuit anyway? The training stops after "
            "its current batch; finished folds are kept there and can be continued with "
            f"`python main.py train --resume {run}`."):
        return True
    window._quitting_after_training = True
    wizard.train_page.runFinished.connect(lambda _ok: window.close())
    wizard.reject()  # stops the trainer; the wizard closes when it has ended
    window.statusBar().showMessage("Stopping the training; the app quits when it has "
                                   "stopped")
    return True
