"""Wizard page 2: the run's configs (FrontendConfig, ModelConfig, TrainConfig), its run options
and the output folder.

One editor per config field (app.wizard.config_fields): the common ones up front, every other
one under "Advanced". They start from the shipped model's recipe (or the config defaults, or
any config / run.json file); the configs are rebuilt on every edit through the run
description's loader (model.config.run, which ``train`` uses too), so the page shows the error
that ``train`` would give, naming the key, and cannot be left while there is one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel, QLineEdit,
    QMessageBox, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
    QWizardPage,
)

from ser_studio.model.config.run import apply_overrides, configs_from_sections, read_sections
from ser_studio.model.constants import DEFAULT_ENCODER
from ser_studio.model.package_files import assets_dir

from ser_studio.app.wizard.advanced import AdvancedSection
from ser_studio.app.wizard.config_fields import all_fields, get_path
from ser_studio.app.wizard.field_editors import FieldEditor, make_editor
from ser_studio.app.wizard.run_on import RunOnRow
from ser_studio.app.wizard.settings import default_run_dir

RECIPE_NAME = "recipe_shipped.json"
# fields shown up front, with their labels, in this order; every other one is under Advanced
COMMON = {"frontend.name": "Frontend", "frontend.encoder": "Encoder",
          "model.arch": "Architecture", "model.hidden": "Hidden size",
          "model.ensemble": "Ensemble", "model.stats_branch": "Statistics branch",
          "train.epochs": "Epochs", "train.batch_size": "Batch size",
          "train.lr": "Learning rate", "train.folds": "Folds",
          "train.channel.variants": "Recording chains"}
FRONTEND_NAMES = {"logmel": "log-mel (offline, fast)",
                  "speech_embedding": "speech_embedding (pretrained, offline; openwakeword)",
                  "ge2e": "GE2E speaker encoder states (pretrained, offline)",
                  "speech_embedding+ge2e": "speech_embedding + GE2E (pretrained, offline)",
                  "whisper-base": "Whisper base encoder (pretrained, many languages, offline)",
                  "whisper-base+speech_embedding+ge2e":
                      "Whisper base + speech_embedding + GE2E (pretrained, offline)",
                  "whisper-tiny.en": "Whisper tiny.en encoder (pretrained, English, offline)",
                  "hubert": "HuBERT / wav2vec 2.0 encoder"}
ARCH_NOTES = {"enhanced": "recurrent network with self-attention, less tied to the speaker",
              "baseline": "simpler recurrent network with attention over frames",
              "stats_linear": "a linear classifier on each clip's feature statistics"}
NOTES = {"model.ensemble": "networks trained one after another and averaged; each adds one "
                           "network's training time",
         "model.stats_branch": "also train a linear classifier on each clip's feature "
                               "averages, spreads and changes, averaged with the network",
         "train.channel.variants": "copies of each training clip as if recorded elsewhere: "
                                   "rooms, noise, voices in the background, phone, codec, "
                                   "clipping (0 = none)"}
FOLDS_NOTE = ("groups of speakers; each fold tests one group on a model trained without it "
              "(0 = one fold per speaker)")
RUN_FOLDS_NOTE = "stop after this many folds for a quicker, rougher result (all = every fold)"


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: #7a8394;")
    label.setWordWrap(True)
    return label


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    if isinstance(widgets[-1], QLabel):
        row.setStretch(len(widgets) - 1, 1)
    return row


class SetupPage(QWizardPage):
    """Training settings: the configs' fields, the folds to run, the final model, the folder."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Model and training")
        self.setSubTitle("Start from the shipped model's recipe, change what you need; "
                         "Advanced holds every other setting.")
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        self.editors: dict[str, FieldEditor] = {s.path: make_editor(s) for s in all_fields()}
        self._decorate()
        self._run_widgets()
        self._layout()
        for editor in self.editors.values():
            editor.changed.connect(self._changed)
        self.start_combo.currentIndexChanged.connect(self._start_changed)
        self._start_changed()

    # -- building ------------------------------------------------------------------------
    def _decorate(self) -> None:
        """Readable names for the frontend and network choices, and a few range limits."""
        frontend = self.editors["frontend.name"].widget
        frontend.clear()
        for name, text in FRONTEND_NAMES.items():
            frontend.addItem(text, name)
        arch = self.editors["model.arch"].widget
        for i in range(arch.count()):
            name = arch.itemData(i)
            arch.setItemText(i, f"{name} — {ARCH_NOTES[name]}" if name in ARCH_NOTES else name)
        self.editors["frontend.encoder"].widget.setPlaceholderText(
            f"hub id or local folder (default {DEFAULT_ENCODER})")
        folds = self.editors["train.folds"].widget
        folds.setMinimum(0)
        folds.setSpecialValueText("leave-one-speaker-out")
        frontend.currentIndexChanged.connect(self._frontend_changed)
        for combo in (frontend, arch):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(30)

    def _run_widgets(self) -> None:
        self.start_combo = QComboBox()
        self.start_combo.addItem(f"the shipped model's recipe (assets/{RECIPE_NAME})",
                                 str(assets_dir() / RECIPE_NAME))
        self.start_combo.addItem("the config defaults", "")
        self.start_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.start_combo.setMinimumContentsLength(30)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("start from a config file or an earlier run's run.json")
        self.open_button.clicked.connect(self._open_config)
        self.encoder_button = QPushButton("Folder…")
        self.encoder_button.clicked.connect(self._choose_encoder)
        self.max_folds_spin = QSpinBox()
        self.max_folds_spin.setRange(0, 100)
        self.max_folds_spin.setSpecialValueText("all")
        self.max_folds_spin.setMinimumWidth(120)
        self.final_check = QCheckBox("then train the final model on every speaker")
        self.final_check.setChecked(True)
        self.out_edit = QLineEdit(str(default_run_dir()))
        self.out_edit.textChanged.connect(self._changed)
        self.out_button = QPushButton("Folder…")
        self.out_button.clicked.connect(self._choose_out)
        self.run_on = RunOnRow()
        self.folds_note = _note(FOLDS_NOTE)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b;")

    def _common_form(self) -> QFormLayout:
        form = QFormLayout()
        start = _row(self.start_combo, self.open_button)
        start.setStretch(0, 1)
        form.addRow("Start from", start)
        for path, label in COMMON.items():
            widget = self.editors[path].widget
            if path == "frontend.encoder":
                self.encoder_label = QLabel(label)
                form.addRow(self.encoder_label, _row(widget, self.encoder_button))
            elif path == "train.folds":
                form.addRow(label, _row(widget, self.folds_note))
            elif path in NOTES:
                form.addRow(label, _row(widget, _note(NOTES[path])))
            else:
                form.addRow(label, widget)
        form.addRow("Run folds", _row(self.max_folds_spin, _note(RUN_FOLDS_NOTE)))
        form.addRow("Final model", self.final_check)
        form.addRow("Output folder", _row(self.out_edit, self.out_button))
        form.addRow("Run on", self.run_on)
        return form

    def _layout(self) -> None:
        content = QWidget()
        column = QVBoxLayout(content)
        column.addLayout(self._common_form())
        self.advanced = AdvancedSection([e for p, e in self.editors.items() if p not in COMMON])
        column.addWidget(self.advanced)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.error_label)
        self.error_label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)

    # -- values --------------------------------------------------------------------------
    def show_configs(self, sections: dict) -> None:
        """Set every editor from run.json-style ``sections`` (absent keys: the defaults) and
        the run options from its "run" section, when it has one."""
        frontend, model, train = configs_from_sections(sections)
        configs = {"frontend": frontend, "model": model, "train": train}
        for path, editor in self.editors.items():
            editor.set_value(get_path(configs, path))
        run = sections.get("run") or {}
        self.max_folds_spin.setValue(int(run.get("max_folds") or 0))
        self.final_check.setChecked(run.get("final", True) is not False)
        self.run_on.set_address(run.get("ray"))
        self._changed()

    def field_values(self) -> dict:
        """{"train.epochs": 40, ...}: every editor's value, under the field's dotted name."""
        return {path: editor.value() for path, editor in self.editors.items()}

    def configs(self):
        """(FrontendConfig, ModelConfig, TrainConfig) of the editors; ConfigError naming the
        key when a value is not allowed."""
        return configs_from_sections(apply_overrides({}, self.field_values()))

    def run_options(self) -> dict:
        """The run.json "run" options: final model, number of folds to run (None: all), the
        Ray cluster's address ("ray", only when one is chosen)."""
        ray = self.run_on.address()
        return {"final": self.final_check.isChecked(),
                "max_folds": self.max_folds_spin.value() or None, **({"ray": ray} if ray else {})}

    def out_dir(self) -> Path:
        return Path(self.out_edit.text().strip()).expanduser()

    def problems(self) -> list[str]:
        """Why the settings cannot be used as they are (empty when they can)."""
        found = []
        try:
            self.configs()
        except ValueError as exc:  # ConfigError included
            found.append(str(exc))
        if not self.out_edit.text().strip():
            found.append("Choose an output folder.")
        return found

    # -- reactions -----------------------------------------------------------------------
    def _start_changed(self) -> None:
        path = self.start_combo.currentData()
        try:
            self.show_configs(read_sections(Path(path)) if path else {})
        except ValueError as exc:
            self.error_label.setText(f"{path}: {exc}")

    def _open_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Start from a config", "",
                                              "Configs and run.json (*.json)")
        if path:
            self.start_combo.addItem(path, path)
            self.start_combo.setCurrentIndex(self.start_combo.count() - 1)

    def _frontend_changed(self) -> None:
        """The encoder row is shown only for frontends that run one ("hubert", "a+hubert")."""
        hubert = "hubert" in str(self.editors["frontend.name"].value()).split("+")
        for widget in (self.encoder_label, self.editors["frontend.encoder"].widget,
                       self.encoder_button):
            widget.setVisible(hubert)

    def _changed(self, *_args) -> None:
        self.error_label.setText("\n".join(self.problems()))
        self.completeChanged.emit()

    def initializePage(self) -> None:
        """Corpora with sessions get one fold per session: the number does not apply to them;
        for the others the note says how many speakers there are to split."""
        summary = self.wizard().corpus_page.summary or {}
        by_session = summary.get("protocol") == "leave-one-session-out"
        self.editors["train.folds"].widget.setEnabled(not by_session)
        speakers = len(summary.get("speakers") or {})
        if by_session:
            note = (f"not used: this corpus has {len(summary.get('sessions', {}))} sessions, "
                    "so each fold tests the speakers of one session")
        else:
            note = FOLDS_NOTE + (f"; this corpus has {speakers} speakers: 2 to {speakers}, "
                                 "or 0" if speakers else "")
        self.folds_note.setText(note)

    def _choose_encoder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Encoder folder (save_pretrained)")
        if path:
            self.editors["frontend.encoder"].set_value(path)

    def _choose_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def isComplete(self) -> bool:
        return not self.problems()

    def validatePage(self) -> bool:
        out = self.out_dir()
        if out.is_file():
            self.error_label.setText(f"{out} is a file; choose a folder.")
            return False
        if out.is_dir() and any(out.iterdir()):
            return self.confirm(f"{out} is not empty; files of an earlier run there will be "
                                "overwritten. Continue?")
        return True

    def _confirm_dialog(self, text: str) -> bool:
        return QMessageBox.question(self, "Output folder", text) == QMessageBox.Yes
