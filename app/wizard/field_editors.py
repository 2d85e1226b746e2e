"""One Qt editor per config field kind (app.wizard.config_fields): bool -> check box, int ->
spin box, float -> double spin box, fixed choices -> combo box, other strings and (low, high)
ranges -> line edit. Editors only hold values; the config classes judge them."""
from __future__ import annotations

import math
from typing import Any

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtGui import QValidator
from PyQt5.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSizePolicy, QSpinBox, QWidget,
)

from ser_studio.app.wizard.config_fields import FieldSpec

LIMIT = 1_000_000  # spin box bounds; the configs hold the real limits
EDITOR_WIDTH = 120


class FloatSpin(QDoubleSpinBox):
    """A double spin box that shows and accepts short forms ("0.3", "1e-05", "0.002")."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(-LIMIT, LIMIT)

    def textFromValue(self, value: float) -> str:
        return format(value, ".6g")

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            float(text)
        except ValueError:
            return QValidator.Intermediate, text, pos
        return QValidator.Acceptable, text, pos

    def set_step_for(self, value: float) -> None:
        """Arrow steps of a tenth of the value's order of magnitude (0.1 for 0)."""
        magnitude = 10 ** math.floor(math.log10(abs(value))) if value else 1.0
        self.setSingleStep(magnitude / 10 if value else 0.1)


def _range_text(value: Any) -> str:
    return ", ".join(format(v, "g") for v in value)


def _range_value(text: str) -> Any:
    """"0.9, 1.1" -> [0.9, 1.1]; text that is not two numbers is passed on as it is, for the
    config to refuse with its own message."""
    try:
        parts = [float(p) for p in text.replace(";", ",").split(",")]
    except ValueError:
        return text
    return parts


class FieldEditor:
    """The widget for one field, with ``value()``/``set_value()`` and a ``changed`` signal."""

    def __init__(self, spec: FieldSpec, widget: QWidget, changed: pyqtSignal):
        self.spec, self.widget, self.changed = spec, widget, changed
        widget.setToolTip(spec.path)
        widget.setObjectName(spec.path)

    def value(self) -> Any:
        w, kind = self.widget, self.spec.kind
        if kind == "bool":
            return w.isChecked()
        if kind in ("int", "float"):
            return w.value()
        if kind == "choice":
            return w.currentData()
        text = w.text().strip()
        return _range_value(text) if kind == "range" else text

    def set_value(self, value: Any) -> None:
        w, kind = self.widget, self.spec.kind
        if kind == "bool":
            w.setChecked(bool(value))
        elif kind == "float":
            w.set_step_for(float(value))
            w.setValue(float(value))
        elif kind == "int":
            w.setValue(int(value))
        elif kind == "choice":
            if w.findData(value) < 0:  # e.g. a combination such as speech_embedding+ge2e
                w.addItem(str(value), value)
            w.setCurrentIndex(w.findData(value))
        else:
            w.setText(_range_text(value) if kind == "range" else str(value))


def make_editor(spec: FieldSpec) -> FieldEditor:
    """A new editor for ``spec`` (its value is set by the caller)."""
    if spec.kind == "bool":
        box = QCheckBox()
        return FieldEditor(spec, box, box.toggled)
    if spec.kind == "int":
        widget = QSpinBox()
        widget.setRange(-LIMIT, LIMIT)
        changed = widget.valueChanged
    elif spec.kind == "float":
        widget = FloatSpin()
        changed = widget.valueChanged
    elif spec.kind == "choice":
        widget = QComboBox()
        for choice in spec.choices:
            widget.addItem(choice, choice)
        return FieldEditor(spec, widget, widget.currentIndexChanged)
    else:
        widget = QLineEdit()
        if spec.kind != "range":
            return FieldEditor(spec, widget, widget.textChanged)
        widget.setPlaceholderText("low, high")
        changed = widget.textChanged
    widget.setMinimumWidth(EDITOR_WIDTH)
    widget.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
    return FieldEditor(spec, widget, changed)
