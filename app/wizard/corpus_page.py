"""Wizard page 1: the corpus (a folder or a CSV manifest), read and summarised off the GUI thread."""
from __future__ import annotations

import html
import logging

from PyQt5.QtCore import QThreadPool, QTimer, pyqtSignal
from PyQt5.QtWidgets import (
    QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
    QWizardPage,
)

from ser_studio.app.shell.background_task import TaskRunner

log = logging.getLogger(__name__)

CHECK_DELAY_MS = 400  # typing pauses this long before the corpus is read


def read_corpus_summary(path: str, label_map: str, classes: tuple[str, ...]) -> dict:
    """Read the corpus (worker thread) and return its summary plus the CV protocol it gets.

    Every clip is read to find silent, too short or undecodable ones (their warnings join the
    reader's); a corpus with one class is refused (CorpusError), as training would refuse it.
    """
    from ser_studio.model.corpora.checks import audio_warnings, check_trainable
    from ser_studio.model.corpora.corpus import load_corpus
    from ser_studio.model.corpora.labels import parse_label_map
    from ser_studio.model.training.folds import choose_protocol

    mapping = parse_label_map(label_map) if label_map.strip() else None
    corpus = load_corpus(path, mapping, list(classes) or None)
    check_trainable(corpus)
    summary = corpus.summary()
    summary["warnings"] += [w.to_dict() for w in audio_warnings(corpus.utterances)]
    summary["protocol"] = choose_protocol(corpus.utterances, corpus.kind, 5)
    return summary


def split_classes(text: str) -> tuple[str, ...]:
    """"angry, happy sad" -> ("angry", "happy", "sad")."""
    return tuple(p for p in text.replace(",", " ").split() if p)


def _counts(counts: dict, limit: int = 12) -> str:
    items = [f"{html.escape(str(k))}&nbsp;{v}" for k, v in list(counts.items())[:limit]]
    more = f", … (+{len(counts) - limit})" if len(counts) > limit else ""
    return ", ".join(items) + more


def summary_html(s: dict) -> str:
    """The reader's summary as a small HTML table."""
    rows = [("Corpus", f"{html.escape(s['kind'])}: {html.escape(s['root'])}"),
            ("Utterances", str(s["utterances"])),
            ("Labels", _counts(s["labels"])),
            ("Speakers", f"{len(s['speakers'])}: " + _counts(s["speakers"], 8)),
            ("Sessions", f"{len(s['sessions'])}: " + _counts(s["sessions"]) if s["sessions"]
             else "none")]
    if s.get("genders"):
        rows.append(("Genders", _counts(s["genders"])))
    if s.get("dropped"):
        rows.append(("Left out", _counts(s["dropped"])))
    if s.get("missing_audio"):
        rows.append(("Missing audio", f"{s['missing_audio']} utterances skipped"))
    for warning in s.get("warnings", []):
        first = ", ".join(warning["examples"])
        text = warning["message"] + (f" (first: {first})" if first else "")
        rows.append(("<span style='color:#b35c00'>Warning</span>", html.escape(text)))
    if s.get("protocol") == "leave-one-session-out":
        rows.append(("Protocol", "leave-one-session-out (one fold per session)"))
    cells = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


class CorpusPage(QWizardPage):
    """Choose the corpus; complete only once the reader accepted exactly what is entered."""

    checked = pyqtSignal(bool)  # a check finished: whether the corpus is valid

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Corpus")
        self.setSubTitle("Choose a corpus folder (IEMOCAP, RAVDESS) or a CSV manifest "
                         "(path,label,speaker[,gender,session]).")
        self.summary: dict | None = None
        self._checked_key: tuple | None = None
        self._generation = 0
        pool = QThreadPool(self)
        pool.setMaxThreadCount(1)
        self._runner = TaskRunner(pool, self)
        self._timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check)
        self._build()

    def _build(self) -> None:
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("corpus folder or manifest.csv")
        folder = QPushButton("Folder…")
        manifest = QPushButton("CSV file…")
        folder.clicked.connect(self._choose_folder)
        manifest.clicked.connect(self._choose_csv)
        path_row = QHBoxLayout()
        for w in (self.path_edit, folder, manifest):
            path_row.addWidget(w)
        self.map_edit = QLineEdit()
        self.map_edit.setPlaceholderText("optional, e.g. calm=neutral,exc=happy")
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText(
            "optional, e.g. angry,happy,neutral,sad (default: IEMOCAP those four, else all)")
        form = QFormLayout()
        form.addRow("Corpus", path_row)
        form.addRow("Label map", self.map_edit)
        form.addRow("Classes", self.classes_edit)
        self.status_label = QLabel()
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        for edit in (self.path_edit, self.map_edit, self.classes_edit):
            edit.textChanged.connect(self._edited)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Corpus folder", self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    def _choose_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Corpus manifest", self.path_edit.text(),
                                              "CSV manifests (*.csv)")
        if path:
            self.path_edit.setText(path)

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """What the reader is asked about: (path, label map, classes)."""
        return (self.path_edit.text().strip(), self.map_edit.text().strip(),
                split_classes(self.classes_edit.text()))

    def _edited(self) -> None:
        self.summary = None
        self._checked_key = None
        self.completeChanged.emit()
        self._timer.start()

    def check(self) -> None:
        """Read the corpus on the worker pool; the newest request wins."""
        self._timer.stop()
        key = self.key()
        self._generation += 1
        generation = self._generation
        if not key[0]:
            self._show(None, "", "")
            return
        self.status_label.setText("Reading the corpus…")
        self._runner.submit(lambda: read_corpus_summary(*key),
                            lambda s: self._result(generation, key, s, ""),
                            lambda text: self._result(generation, key, None, text))

    def _result(self, generation: int, key: tuple, summary: dict | None, error: str) -> None:
        if generation != self._generation:
            return
        self._checked_key = key if summary is not None else None
        self._show(summary, summary_html(summary) if summary else "", error)
        self.checked.emit(summary is not None)

    def _show(self, summary: dict | None, text: str, error: str) -> None:
        self.summary = summary
        if summary is not None:
            caveat = " Read the warnings below first." if summary.get("warnings") else ""
            self.status_label.setText("<span style='color:#1e8449'>✓ The corpus can be "
                                      f"used.{caveat}</span>")
        else:
            self.status_label.setText("" if error else "Choose a corpus to check it.")
        self.summary_label.setText(text)
        self.error_label.setText(html.escape(error))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.summary is not None and self._checked_key == self.key()

    def validatePage(self) -> bool:
        return self.isComplete()
