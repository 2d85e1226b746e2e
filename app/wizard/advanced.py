"""The setup page's collapsible "Advanced" section: every config field not shown up front, one
group box per config (frontend, network, training, augmentation, recording chains, and any
config added later), laid out in two columns."""
from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QFormLayout, QGridLayout, QGroupBox, QLabel, QToolButton, QVBoxLayout, QWidget,
)

from ser_studio.app.wizard.config_fields import DERIVED
from ser_studio.app.wizard.field_editors import FieldEditor

GROUP_TITLES = {"frontend": "Frontend", "model": "Network", "train": "Training",
                "train.augment": "Feature augmentation (train.augment)",
                "train.channel": "Recording chains (train.channel)"}


def _group(title: str, editors: list[FieldEditor]) -> QGroupBox:
    box = QGroupBox(title)
    form = QFormLayout(box)
    form.setLabelAlignment(Qt.AlignRight)
    form.setFieldGrowthPolicy(QFormLayout.FieldsStayAtSizeHint)
    for editor in editors:
        label = QLabel(editor.spec.name)
        label.setToolTip(editor.spec.path)
        form.addRow(label, editor.widget)
    return box


def _columns(groups: dict[str, list[FieldEditor]]) -> list[list[str]]:
    """Groups split into two columns of about equal rows, in their order."""
    total = sum(len(g) for g in groups.values())
    left, rows = [], 0
    for name, editors in groups.items():
        if rows and rows + len(editors) / 2 > total / 2:
            break
        left.append(name)
        rows += len(editors)
    return [left, [n for n in groups if n not in left]]


class AdvancedSection(QWidget):
    """A "Advanced" toggle and, below it, the group boxes of ``editors`` (hidden until the
    toggle is checked)."""

    def __init__(self, editors: list[FieldEditor], parent=None):
        super().__init__(parent)
        self.toggle = QToolButton(text="Advanced: every other setting", checkable=True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.RightArrow)
        self.toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.body = QWidget()
        groups: dict[str, list[FieldEditor]] = {}
        for editor in editors:
            groups.setdefault(editor.spec.group, []).append(editor)
        grid = QGridLayout(self.body)
        grid.setContentsMargins(0, 0, 0, 0)
        for col, names in enumerate(_columns(groups)):
            column = QVBoxLayout()
            for name in names:
                column.addWidget(_group(GROUP_TITLES.get(name, name), groups[name]))
            column.addStretch(1)
            grid.addLayout(column, 0, col)
        note = QLabel(f"{', '.join(sorted(p.split('.')[-1] for p in DERIVED))} are set from the "
                      "frontend and the corpus. Hover a field for its name in run.json "
                      "(train --set NAME=VALUE on the command line).")
        note.setWordWrap(True)
        note.setStyleSheet("color: #7a8394;")
        grid.addWidget(note, 1, 0, 1, 2)
        self.body.setVisible(False)
        self.toggle.toggled.connect(self.set_open)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle)
        layout.addWidget(self.body)

    def set_open(self, shown: bool) -> None:
        self.toggle.setChecked(shown)
        self.toggle.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.body.setVisible(shown)
