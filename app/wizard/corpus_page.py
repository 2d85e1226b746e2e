"""Wizard page 1: the corpus or corpora (folders or CSV manifests), read and summarised off the
GUI thread. The path field is the corpus of a one-corpus run; "Add to list" moves it into the list
of corpora, and every corpus listed (plus the one in the field) is pooled into the run, speakers
named CORPUS/ID (model.corpora.multi)."""
from __future__ import annotations

import html
import logging

from PyQt5.QtCore import Qt, QThreadPool, QTimer, pyqtSignal
from PyQt5.QtWidgets import (
    QAbstractItemView, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QPushButton, QVBoxLayout, QWizardPage,
)

from ser_studio.app.shell.background_task import TaskRunner

log = logging.getLogger(__name__)

CHECK_DELAY_MS = 400  # typing pauses this long before the corpus is read


def read_corpus_summary(paths, label_map: str, classes: tuple[str, ...]) -> dict:
    """Read the corpus or corpora (``paths``: one path or several; worker thread) and return
    the summary (model.corpora.multi.CorpusSet.summary: with "corpora" when there are several)
    plus the CV protocol it gets.

    Every clip is read to find silent, too short or undecodable ones (their warnings join the
    reader's); a corpus with one class is refused (CorpusError), as training would refuse it.
    """
    from ser_studio.model.corpora.checks import audio_warnings, check_trainable
    from ser_studio.model.corpora.multi import load_corpora
    from ser_studio.model.training.folds import choose_protocol

    corpus = load_corpora(paths, label_map if label_map.strip() else None,
                          list(classes) or None)
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


def _corpus_rows(s: dict) -> list[tuple[str, str]]:
    """The "Corpus" row, or one row per corpus of several (name, kind, size, path)."""
    if not s.get("corpora"):
        return [("Corpus", f"{html.escape(s['kind'])}: {html.escape(s['root'])}")]
    return [(f"Corpus {k}", f"<b>{html.escape(c['name'])}</b> ({html.escape(c['kind'])}, "
                            f"{c['utterances']} utterances, {len(c['speakers'])} speakers): "
                            f"{html.escape(c['root'])}")
            for k, c in enumerate(s["corpora"], 1)]


def summary_html(s: dict) -> str:
    """The reader's summary as a small HTML table."""
    rows = _corpus_rows(s) + [
            ("Utterances", str(s["utterances"]) + (" in all" if s.get("corpora") else "")),
            ("Labels", _counts(s["labels"])),
            ("Speakers", f"{len(s['speakers'])}: " + _counts(s["speakers"], 8)),
            ("Sessions", f"{len(s['sessions'])}: " + _counts(s["sessions"]) if s["sessions"]
             else "none")]
    if s.get("genders"):
        rows.append(("Genders", _counts(s["genders"])))
    rows.append(("Languages", _counts(s["languages"]) if s.get("languages") else
                 "not known (a manifest can say it in a language column; the model records "
                 "the languages it was trained on)"))
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
                         "(path,label,speaker[,gender,session,language]). To train on several "
                         "corpora, add each to the list.")
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
        self.add_button = QPushButton("Add to list")
        self.add_button.setToolTip("Keep this corpus in the list and choose another: the run "
                                   "pools every corpus listed")
        self.add_button.clicked.connect(self.add_corpus)
        path_row = QHBoxLayout()
        for w in (self.path_edit, folder, manifest, self.add_button):
            path_row.addWidget(w)
        self.corpus_list = QListWidget()
        self.corpus_list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.corpus_list.setMaximumHeight(90)
        self.corpus_list.setToolTip("Corpora of this run, with the one in the field above")
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        list_row = QHBoxLayout()
        list_row.addWidget(self.corpus_list, 1)
        list_row.addWidget(self.remove_button, 0, Qt.AlignTop)
        self.map_edit = QLineEdit()
        self.map_edit.setPlaceholderText("optional, e.g. calm=neutral,exc=happy; with several "
                                         "corpora NAME:a=b maps corpus NAME only")
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText(
            "optional, e.g. angry,happy,neutral,sad (default: IEMOCAP those four, else all)")
        form = QFormLayout()
        form.addRow("Corpus", path_row)
        form.addRow("Added corpora", list_row)
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
        self._list_changed()

    def listed(self) -> list[str]:
        """The corpora in the list, in order."""
        return [self.corpus_list.item(i).text() for i in range(self.corpus_list.count())]

    def add_corpus(self) -> None:
        """Move the field's path into the list (once) and empty the field for the next."""
        path = self.path_edit.text().strip()
        if path and path not in self.listed():
            self.corpus_list.addItem(path)
        self.path_edit.clear()  # textChanged: checked again after the pause
        self._list_changed()

    def remove_selected(self) -> None:
        """Take the selected corpora out of the list."""
        for item in self.corpus_list.selectedItems():
            self.corpus_list.takeItem(self.corpus_list.row(item))
        self._list_changed()
        self._edited()

    def _list_changed(self) -> None:
        self.corpus_list.setVisible(self.corpus_list.count() > 0)
        self.remove_button.setVisible(self.corpus_list.count() > 0)
        self.add_button.setEnabled(bool(self.path_edit.text().strip()))

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Corpus folder", self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    def _choose_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Corpus manifest", self.path_edit.text(),
                                              "CSV manifests (*.csv)")
        if path:
            self.path_edit.setText(path)

    def key(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """What the reader is asked about: (corpus paths: the list's, then the field's unless
        listed already; label map; classes)."""
        paths = self.listed()
        entry = self.path_edit.text().strip()
        if entry and entry not in paths:
            paths.append(entry)
        return (tuple(paths), self.map_edit.text().strip(),
                split_classes(self.classes_edit.text()))

    def _edited(self) -> None:
        self.add_button.setEnabled(bool(self.path_edit.text().strip()))
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
        self.status_label.setText("Reading the corpus…" if len(key[0]) == 1
                                  else f"Reading {len(key[0])} corpora…")
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
            what = (f"These {len(summary['corpora'])} corpora can be used together"
                    if summary.get("corpora") else "The corpus can be used")
            self.status_label.setText(f"<span style='color:#1e8449'>✓ {what}."
                                      f"{caveat}</span>")
        else:
            self.status_label.setText("" if error else "Choose a corpus to check it.")
        self.summary_label.setText(text)
        self.error_label.setText(html.escape(error))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.summary is not None and self._checked_key == self.key()

    def validatePage(self) -> bool:
        return self.isComplete()
