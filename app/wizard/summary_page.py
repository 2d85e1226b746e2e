"""Wizard page 3: what the run will do (app.wizard.run_plan), and the Start button.

Nothing heavy happens before this page's Start: the settings page's Next only leads here.
"""
from __future__ import annotations

import html

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QLabel, QVBoxLayout, QWizard, QWizardPage

from ser_studio.app.wizard.run_plan import plan_folds, plan_rows

START_TEXT = "Start training"


def rows_html(rows: list[tuple[str, str]]) -> str:
    """(label, text) rows as a two-column HTML table (text escaped)."""
    cells = "".join(f"<tr><td style='padding:0 12px 6px 0'><b>{html.escape(k)}</b></td>"
                    f"<td style='padding-bottom:6px'>{html.escape(v)}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


class SummaryPage(QWizardPage):
    """The run in words: corpus, protocol, folds, features, training, time; Next is
    "Start training". Incomplete when the folds cannot be built from the corpus."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Ready to train")
        self.setSubTitle("Check what will run. Training runs in a separate process; you can "
                         "stop it at any time and keep the folds that finished.")
        self.setButtonText(QWizard.NextButton, START_TEXT)
        self.rows: list[tuple[str, str]] = []
        self.problem = ""
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.RichText)
        self.plan_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.error_label)
        layout.addStretch(1)

    def initializePage(self) -> None:
        """Describe the run the corpus and settings pages hold now."""
        wizard = self.wizard()
        setup = wizard.setup_page
        summary = wizard.corpus_page.summary or {}
        frontend, model, train = setup.configs()
        run = setup.run_options()
        shown = setup.editors["frontend.name"].widget.currentText()
        self.rows = plan_rows(summary, shown, frontend, model, train, run)
        self.rows.append(("Output folder", str(setup.out_dir())))
        self.rows.append(("Run on", f"the Ray cluster at {run['ray']}" if run.get("ray")
                          else "this computer"))
        self.problem = plan_folds(summary, train, run["max_folds"]).problem
        self.plan_label.setText(rows_html(self.rows))
        self.error_label.setText(self.problem and f"Go Back to change the folds: "
                                                  f"{self.problem}")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.problem
