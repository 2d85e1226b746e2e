"""Wizard page 5: cross-validation results, the run's plots, and "use this model"."""
from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Callable

from PyQt5.QtCore import Qt, QThreadPool, QUrl, pyqtSignal
from PyQt5.QtGui import QDesktopServices, QImage, QPixmap
from PyQt5.QtWidgets import (
    QApplication, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout,
    QWizardPage,
)

from ser_studio.model.adaptation.profile import expects_calibration
from ser_studio.model.training.folds import LOCO
from ser_studio.model.training.progress import ProgressEvent

from ser_studio.app.shell.background_task import TaskRunner
from ser_studio.app.wizard.progress import TrainingProgress

log = logging.getLogger(__name__)

PLOTS = (("confusion.png", "Confusion matrix (all test folds)"),
         ("per_speaker.png", "Accuracy per test speaker"))


def metrics_html(progress: TrainingProgress) -> str:
    """WA / UA / macro-F1 mean ± std over folds, with what the run was."""
    done = progress.done or ProgressEvent("done")
    summary = done.summary or {}
    rows = []
    for key, name in (("wa", "WA (accuracy)"), ("ua", "UA (balanced accuracy)"),
                      ("macro_f1", "Macro-F1")):
        m = summary.get(key) or {}
        if m.get("mean") is not None:
            std = m.get("std")
            spread = f" ± {std:.3f}" if std is not None else ""
            rows.append(f"<tr><td>{name}&nbsp;&nbsp;</td>"
                        f"<td><b>{m['mean']:.3f}</b>{spread}</td></tr>")
    n = done.folds_completed or 0
    note = f"{progress.protocol or 'cross-validation'}, {n} of {progress.folds_total} folds"
    if done.cancelled:
        note += " (cancelled: only the finished folds are counted)"
    main = f"<table style='font-size:12pt'>{''.join(rows)}</table>"
    corpora = corpora_html(summary, progress.protocol == LOCO)
    if corpora:  # side by side: the pooled figures never alone
        main = (f"<table><tr><td valign=top>{main}</td><td width=40></td>"
                f"<td valign=top>{corpora}</td></tr></table>")
    return f"<p>{html.escape(note)}</p>{main}"


def corpora_html(summary: dict, loco: bool) -> str:
    """A run on several corpora: WA and UA of each corpus on its own (held out, or its test
    speakers of every fold) and their mean; "" for one corpus."""
    per = summary.get("per_corpus") or {}
    if not per:
        return ""
    title = ("Per held-out corpus (model trained on the others)" if loco
             else "Per corpus (its test speakers, all folds)")
    cells = "".join(f"<tr><td>{html.escape(name)}&nbsp;&nbsp;</td><td>{c['wa']:.3f}</td>"
                    f"<td><b>{c['ua']:.3f}</b></td><td>{c['n']}</td></tr>"
                    for name, c in per.items())
    mean = summary.get("corpus_mean") or {}
    if mean:
        cells += (f"<tr><td><i>mean</i></td><td>{mean['wa']:.3f}</td>"
                  f"<td><b>{mean['ua']:.3f}</b></td><td></td></tr>")
    head = "<tr><th align=left>corpus</th><th>WA</th><th>UA</th><th>clips</th></tr>"
    return (f"<b>{html.escape(title)}</b>"
            f"<table cellspacing=4>{head}{cells}</table>")


def calibration_html(run_dir: str | None) -> str:
    """Whether the run's model expects calibration (its train.speaker_norm), from the run
    folder's metrics.json; "" when it cannot be read."""
    try:
        summary = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (TypeError, OSError, ValueError):
        return ""
    if not expects_calibration((summary.get("configs") or {}).get("train")):
        return ("<p>Trained with the global standardisation: works without calibration "
                "(and calibrating to a voice can still help).</p>")
    ua = ((summary.get("uncalibrated_aggregate") or {}).get("ua") or {}).get("mean")
    without = f" Without calibration its UA is {ua:.3f}." if ua is not None else ""
    by_corpus = (summary.get("configs") or {}).get("train", {}).get("speaker_norm") == "corpus"
    unit, whose = ("corpus", "its own") if by_corpus else ("speaker", "their own voice")
    return (f"<p><b>This model expects calibration:</b> it was trained with each {unit} "
            f"standardised by {whose}, and the figures above are {unit}-adapted "
            f"(each test {unit}'s own unlabelled audio).{without} Use Calibrate to my voice "
            "on the Live tab.</p>")


class ScaledImage(QLabel):
    """An image label that scales its picture to fit, keeping the aspect ratio."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._original = QPixmap()
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(200, 150)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._original = QPixmap() if image is None else QPixmap.fromImage(image)
        if self._original.isNull():
            self.setPixmap(QPixmap())
            self.setText("(not available)")
        else:
            self._rescale()

    def has_image(self) -> bool:
        return not self._original.isNull()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._original.isNull():
            self._rescale()

    def _rescale(self) -> None:
        self.setPixmap(self._original.scaled(self.size(), Qt.KeepAspectRatio,
                                             Qt.SmoothTransformation))


def _load_image(path: Path) -> QImage | None:
    """Worker thread: the PNG as a QImage (QPixmaps may only be made on the GUI thread)."""
    image = QImage(str(path))
    return None if image.isNull() else image


class ResultsPage(QWizardPage):
    """Shows the finished run. ``useModel(str)`` carries the model chosen for the live view;
    ``open_url`` (replaceable) opens the report."""

    useModel = pyqtSignal(str)
    imagesShown = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Results")
        self.setSubTitle("Speaker-independent results: every number comes from speakers the "
                         "model never saw in training.")
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.model_path: str | None = None
        self.report_path: str | None = None
        self.run_dir: str | None = None
        pool = QThreadPool(self)
        pool.setMaxThreadCount(1)
        self._runner = TaskRunner(pool, self)
        self._pending_images = 0
        self._build()

    def _build(self) -> None:
        self.metrics_label = QLabel()
        self.metrics_label.setTextFormat(Qt.RichText)
        # never squeezed by the plots: its tables (per corpus too) are what the page is for
        self.metrics_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.open_failed_label = QLabel()
        self.open_failed_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.open_failed_label.setWordWrap(True)
        self.open_failed_label.hide()
        self.plot_labels: dict[str, ScaledImage] = {}
        grid = QGridLayout()
        for col, (name, title) in enumerate(PLOTS):
            image = ScaledImage()
            grid.addWidget(QLabel(f"<b>{title}</b>"), 0, col, Qt.AlignHCenter)
            grid.addWidget(image, 1, col)
            grid.setColumnStretch(col, 1)
            self.plot_labels[name] = image
        grid.setRowStretch(1, 1)
        self.report_button = QPushButton("Open report")
        self.folder_button = QPushButton("Open run folder")
        self.use_button = QPushButton("Use this model in the live view")
        self.use_button.setDefault(True)
        self.report_button.clicked.connect(lambda: self._open(self.report_path))
        self.folder_button.clicked.connect(lambda: self._open(self.run_dir))
        self.use_button.clicked.connect(self._use)
        buttons = QHBoxLayout()
        buttons.addWidget(self.report_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.metrics_label)
        layout.addLayout(grid, 1)
        layout.addWidget(self.model_label)
        layout.addLayout(buttons)
        layout.addWidget(self.open_failed_label)

    def initializePage(self) -> None:
        self.show_results(self.wizard().train_page.progress)

    def show_results(self, progress: TrainingProgress) -> None:
        """Fill the page from a finished run."""
        done = progress.done or ProgressEvent("done")
        self.run_dir = done.run_dir
        self.report_path = done.report
        self.model_path = progress.model_path()
        self.metrics_label.setText(metrics_html(progress) + calibration_html(done.run_dir))
        if done.model:
            which = "Final model (all speakers)"
        else:
            best = progress.best_fold()
            which = (f"No final model; best fold {best.fold} (UA {best.ua:.3f})" if best
                     else "No model was saved")
        self.model_label.setText(f"{which}: {html.escape(self.model_path or '')}")
        self.use_button.setEnabled(bool(self.model_path))
        self.use_button.setText("Use this model in the live view")
        self.report_button.setEnabled(bool(self.report_path) and Path(self.report_path).exists())
        self.folder_button.setEnabled(bool(self.run_dir))
        self._pending_images = len(PLOTS)
        for name, label in self.plot_labels.items():
            if not self.run_dir:
                self._image(name, None)
                continue
            label.setPixmap(QPixmap())
            label.setText("loading…")
            path = Path(self.run_dir) / name
            self._runner.submit(lambda p=path: _load_image(p),
                                lambda image, n=name: self._image(n, image),
                                lambda _text, n=name: self._image(n, None))

    def _image(self, name: str, image: QImage | None) -> None:
        self.plot_labels[name].set_image(image)
        self._pending_images -= 1
        if self._pending_images == 0:
            self.imagesShown.emit()

    def _open(self, path: str | None) -> None:
        """Open ``path`` with the desktop's handler; when there is none, show the path where
        it can be copied (and put it on the clipboard)."""
        if not path or self.open_url(QUrl.fromLocalFile(path)):
            return
        log.warning("could not open %s", path)
        QApplication.clipboard().setText(path)
        self.open_failed_label.setText(
            f"No program here opens {html.escape(Path(path).name)}; its path is on the "
            f"clipboard:<br><code>{html.escape(path)}</code>")
        self.open_failed_label.show()

    def _use(self) -> None:
        if self.model_path:
            self.useModel.emit(self.model_path)
            self.use_button.setText("✓ Sent to the live view")
