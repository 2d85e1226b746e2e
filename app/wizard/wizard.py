"""The training wizard: corpus -> settings -> summary (Start) -> training (a QProcess) ->
results."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QWizard

from ser_studio.app.wizard.corpus_page import CorpusPage
from ser_studio.app.wizard.results import ResultsPage
from ser_studio.app.wizard.setup_page import SetupPage
from ser_studio.app.wizard.summary_page import SummaryPage
from ser_studio.app.wizard.train_page import TrainPage
from ser_studio.app.wizard.train_process import KILL_AFTER_MS

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


class TrainingWizard(QWizard):
    """Train a model on a corpus and hand it to the live view.

    python: interpreter that runs the trainer; main_py: the script given ``train ...``
    (default: this repository's main.py); it runs in main_py's folder. Signal
    ``modelReady(str)``: path of the chosen checkpoint (final model, else the best fold's).
    Closing the wizard during a run cancels the run first and closes when it has ended.
    """

    modelReady = pyqtSignal(str)

    def __init__(self, parent=None, python: str = sys.executable,
                 main_py: str | Path = REPO_ROOT / "main.py"):
        super().__init__(parent)
        self.python = str(python)
        self.main_py = Path(main_py)
        self.workdir = self.main_py.resolve().parent
        self.kill_after_ms = KILL_AFTER_MS
        self._closing = False
        self.setWindowTitle("Train a model")
        self.setWizardStyle(QWizard.ModernStyle)
        self.setOption(QWizard.NoBackButtonOnLastPage, False)
        self.corpus_page = CorpusPage()
        self.setup_page = SetupPage()
        self.summary_page = SummaryPage()
        self.train_page = TrainPage()
        self.results_page = ResultsPage()
        for page in (self.corpus_page, self.setup_page, self.summary_page, self.train_page,
                     self.results_page):
            self.addPage(page)
        self.results_page.useModel.connect(self.modelReady)
        self.train_page.runFinished.connect(self._run_finished)
        self.resize(900, 680)

    def run_sections(self) -> dict:
        """The run.json object of the run the corpus and setup pages describe (ConfigError
        while a setting is not allowed)."""
        from ser_studio.model.config.run import describe_run

        paths, label_map, classes = self.corpus_page.key()
        return describe_run(*self.setup_page.configs(), corpus=list(paths),
                            label_map=[label_map] if label_map else None,
                            classes=list(classes) or None, **self.setup_page.run_options())

    def run_dir(self) -> Path:
        """The folder the run writes into."""
        return self.setup_page.out_dir()

    def reject(self) -> None:
        """Cancel/close: a running trainer is stopped first; the wizard closes once it ends."""
        if self.train_page.running():
            self._closing = True
            self.train_page.stop()
            return
        super().reject()

    def _run_finished(self, _succeeded: bool) -> None:
        if self._closing:
            self._closing = False
            super().reject()
