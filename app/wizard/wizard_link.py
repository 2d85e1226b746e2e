"""The main window's link to the training wizard: opening it (one at a time) and holding the
window's close while a training runs, so quitting never cuts a run off unasked.

The wizard runs ``main.py train`` (MAIN_PY) as a subprocess. The link talks to the window only
through its signals (``modelReady``: a new model to load; ``message``: a status-bar text;
``closeRequested``: the trainer has stopped after a confirmed quit) and the ``ask`` callable it
was given (a Yes/No question), never through the window's attributes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt5.QtCore import QObject, Qt, pyqtSignal

MAIN_PY = Path(__file__).resolve().parents[2] / "main.py"


class WizardLink(QObject):
    """parent: the window the wizard opens over; ask(text) -> bool: whether to quit while a
    training runs (called afresh each time, so a window may replace its question in tests)."""

    modelReady = pyqtSignal(str)  # path of the model the wizard trained
    message = pyqtSignal(str)  # a passing status-bar text
    closeRequested = pyqtSignal()  # a confirmed quit: the trainer has ended

    def __init__(self, parent, ask: Callable[[str], bool]):
        super().__init__(parent)
        self._parent = parent
        self._ask = ask
        self._wizard = None
        self._quitting = False

    @property
    def wizard(self):
        """The open TrainingWizard, or None."""
        return self._wizard

    def show(self) -> None:
        """Open the training wizard, or raise the one already open."""
        from ser_studio.app.wizard.wizard import TrainingWizard

        if self._wizard is not None and self._wizard.isVisible():
            self._wizard.raise_()
            self._wizard.activateWindow()
            return
        wizard = TrainingWizard(self._parent, main_py=str(MAIN_PY))
        wizard.setAttribute(Qt.WA_DeleteOnClose)
        self.adopt(wizard)
        wizard.show()

    def adopt(self, wizard) -> None:
        """Make ``wizard`` (a TrainingWizard, e.g. one a test built with a fake trainer) the
        one this link forwards models from and holds the close for."""
        self._wizard = wizard
        wizard.modelReady.connect(self.modelReady)
        wizard.destroyed.connect(lambda: self._forget(wizard))

    def _forget(self, wizard) -> None:
        if self._wizard is wizard:
            self._wizard = None

    def holds_close(self) -> bool:
        """True while a wizard training keeps the window open: the user is asked first; a
        confirmed quit stops the trainer (finished folds are kept) and emits closeRequested
        once the trainer has ended, without waiting on the GUI thread."""
        wizard = self._wizard
        if wizard is None or not wizard.train_page.running():
            return False
        if self._quitting:
            return True
        run = wizard.run_dir()
        if not self._ask(
                f"A training run is writing to {run}.\n\nQuit anyway? The training stops after "
                "its current batch; finished folds are kept there and can be continued with "
                f"`python main.py train --resume {run}`."):
            return True
        self._quitting = True
        wizard.train_page.runFinished.connect(lambda _ok: self.closeRequested.emit())
        wizard.reject()  # stops the trainer; the wizard closes when it has ended
        self.message.emit("Stopping the training; the app quits when it has stopped")
        return True

    def close_wizard(self) -> None:
        """Close an open wizard (a running training is cancelled)."""
        if self._wizard is not None and self._wizard.isVisible():
            self._wizard.reject()
