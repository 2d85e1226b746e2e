"""Wizard page 2: frontend, architecture, hyperparameters, folds and the output folder."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt5.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
    QLineEdit, QMessageBox, QPushButton, QSizePolicy, QSpinBox, QWidget, QWizardPage,
)

from model.config import ModelConfig, TrainConfig, config_from_dict, train_config_from_dict
from model.config import FrontendConfig
from model.constants import DEFAULT_ENCODER
from model.package_files import assets_dir

from app.wizard.settings import default_run_dir

RECIPE_NAME = "recipe_ravdess.json"


def read_recipe(path: str) -> dict:
    """The frontend, model and train configs of a recipe file ({"frontend": FrontendConfig,
    "model": ModelConfig, "train": TrainConfig}); defaults for absent sections."""
    import json

    sections = json.loads(Path(path).read_text())
    return {"frontend": config_from_dict(FrontendConfig, sections.get("frontend", {})),
            "model": config_from_dict(ModelConfig, sections.get("model", {})),
            "train": train_config_from_dict(sections.get("train", {}))}


ARCH_NOTES = {
    "enhanced": "BiGRU + self-attention, AdaIN and an adversarial speaker head",
    "baseline": "the seed's BiGRU with attention pooling",
    "stats_linear": "a linear classifier on pooled utterance statistics",
}


def _spin(low: int, high: int, value: int, step: int = 1, special: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    return box


def _with_note(field: QWidget, note: QLabel) -> QHBoxLayout:
    note.setStyleSheet("color: #7a8394;")
    row = QHBoxLayout()
    row.addWidget(field)
    row.addWidget(note, 1)
    return row


def _dspin(low: float, high: float, value: float, step: float, decimals: int) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class SetupPage(QWizardPage):
    """Training settings; defaults come from the config dataclasses."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Model and training")
        self.setSubTitle("Choose the features, the network and the main hyperparameters.")
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        train, model = TrainConfig(), ModelConfig()
        self.recipe_combo = QComboBox()
        self.recipe_combo.addItem("the shipped model's recipe (assets/recipe_ravdess.json)",
                                  str(assets_dir() / RECIPE_NAME))
        self.recipe_combo.addItem("custom: the settings below", "")
        self.frontend_combo = QComboBox()
        self.frontend_combo.addItem("log-mel (offline, fast)", "logmel")
        self.frontend_combo.addItem("speech_embedding (pretrained, offline; openwakeword)",
                                    "speech_embedding")
        self.frontend_combo.addItem("GE2E speaker encoder states (pretrained, offline)", "ge2e")
        self.frontend_combo.addItem("speech_embedding + GE2E (pretrained, offline)",
                                    "speech_embedding+ge2e")
        self.frontend_combo.addItem("HuBERT / wav2vec 2.0 encoder", "hubert")
        self.encoder_edit = QLineEdit()
        self.encoder_edit.setPlaceholderText(f"hub id or local folder (default {DEFAULT_ENCODER})")
        self.encoder_button = QPushButton("Folder…")
        self.weighted_check = QCheckBox("learn a weighted mix of all encoder layers")
        self.arch_combo = QComboBox()
        for name, note in ARCH_NOTES.items():
            self.arch_combo.addItem(f"{name} — {note}", name)
        self.arch_combo.setCurrentIndex(list(ARCH_NOTES).index(model.arch))
        self.epochs_spin = _spin(1, 1000, train.epochs)
        self.batch_spin = _spin(1, 1024, train.batch_size)
        self.lr_spin = _dspin(1e-6, 1.0, train.lr, 1e-4, 6)
        self.attn_heads = model.attn_heads
        self.hidden_spin = _spin(model.attn_heads, 4096, model.hidden, model.attn_heads)
        self.ensemble_spin = _spin(1, 16, model.ensemble)
        self.stats_check = QCheckBox("add a linear classifier on utterance statistics")
        self.stats_check.setChecked(model.stats_branch)
        self.folds_spin = _spin(0, 100, train.folds, special="leave-one-speaker-out")
        self.max_folds_spin = _spin(0, 100, 0, special="all")
        self.augment_check = QCheckBox("noise, time stretch and masking on training batches")
        self.augment_check.setChecked(True)
        self.loudness_check = QCheckBox("bring every clip's speech to -23 LUFS before features")
        self.loudness_check.setChecked(True)
        self.band_norm_check = QCheckBox("normalise each log-mel band over the utterance (CMVN)")
        self.band_norm_check.setChecked(True)
        self.channel_spin = _spin(0, 64, 4, special="off")
        self.adversarial_spin = _dspin(0.0, 10.0, train.adversarial_weight, 0.05, 3)
        self.final_check = QCheckBox("then train the final model on every speaker")
        self.final_check.setChecked(True)
        self.out_edit = QLineEdit(str(default_run_dir()))
        self.out_button = QPushButton("Folder…")
        self.hint_label = QLabel()
        self.hint_label.setStyleSheet("color: #c0392b;")
        self._layout()
        self._connect()
        self._frontend_changed()
        self._recipe_changed()

    def _layout(self) -> None:
        for box in (self.epochs_spin, self.batch_spin, self.lr_spin, self.hidden_spin,
                    self.ensemble_spin, self.folds_spin, self.max_folds_spin, self.adversarial_spin,
                    self.channel_spin):
            box.setMinimumWidth(110)
            box.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        self.folds_note = QLabel()
        encoder_row = QHBoxLayout()
        encoder_row.addWidget(self.encoder_edit)
        encoder_row.addWidget(self.encoder_button)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(self.out_button)
        form = QFormLayout(self)
        form.addRow("Start from", self.recipe_combo)
        form.addRow("Frontend", self.frontend_combo)
        form.addRow("Encoder", encoder_row)
        form.addRow("", self.weighted_check)
        form.addRow("Architecture", self.arch_combo)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Hidden size", self.hidden_spin)
        form.addRow("Statistics branch", self.stats_check)
        form.addRow("Ensemble", _with_note(self.ensemble_spin, QLabel(
            "networks averaged; each adds one network's training time")))
        form.addRow("Folds (k)", _with_note(self.folds_spin, self.folds_note))
        form.addRow("Run folds", _with_note(self.max_folds_spin,
                                            QLabel("only the first K folds, for a quick look")))
        form.addRow("Augmentation", self.augment_check)
        form.addRow("Loudness", self.loudness_check)
        form.addRow("Band normalisation", self.band_norm_check)
        form.addRow("Recording chains", _with_note(self.channel_spin, QLabel(
            "variants per training clip: rooms, noise, babble, phone band, codec, clipping")))
        form.addRow("Adversarial weight", self.adversarial_spin)
        form.addRow("Final model", self.final_check)
        form.addRow("Output folder", out_row)
        form.addRow("", self.hint_label)
        self.folds_note.setText("grouped k-fold by speaker; 0 = leave-one-speaker-out")

    def _connect(self) -> None:
        self.recipe_combo.currentIndexChanged.connect(self._recipe_changed)
        self.frontend_combo.currentIndexChanged.connect(self._frontend_changed)
        self.arch_combo.currentIndexChanged.connect(self._arch_changed)
        self.encoder_button.clicked.connect(self._choose_encoder)
        self.out_button.clicked.connect(self._choose_out)
        self.folds_spin.valueChanged.connect(self._changed)
        self.hidden_spin.valueChanged.connect(self._changed)
        self.arch_combo.currentIndexChanged.connect(self._changed)
        self.out_edit.textChanged.connect(self._changed)

    def initializePage(self) -> None:
        """Corpora with sessions get one fold per session: k does not apply to them."""
        summary = self.wizard().corpus_page.summary or {}
        by_session = summary.get("protocol") == "leave-one-session-out"
        self.folds_spin.setEnabled(not by_session)
        self.folds_note.setText(
            f"this corpus has {len(summary.get('sessions', {}))} sessions: one fold per session"
            if by_session else "grouped k-fold by speaker; 0 = leave-one-speaker-out")

    def _recipe_widgets(self) -> list[QWidget]:
        """The fields a recipe sets (shown, not editable, while it is chosen)."""
        return [self.frontend_combo, self.encoder_edit, self.encoder_button,
                self.weighted_check, self.arch_combo, self.epochs_spin, self.batch_spin,
                self.lr_spin, self.hidden_spin, self.stats_check, self.ensemble_spin,
                self.augment_check, self.loudness_check, self.band_norm_check,
                self.channel_spin, self.adversarial_spin]

    def _recipe_changed(self) -> None:
        """A recipe fills the fields it sets from its file and locks them; custom unlocks."""
        recipe = self.recipe_combo.currentData()
        if recipe:
            self._show_recipe(read_recipe(recipe))
        for widget in self._recipe_widgets():
            widget.setEnabled(not recipe)
        if not recipe:
            self._frontend_changed()
            self._arch_changed()

    def _show_recipe(self, recipe: dict) -> None:
        frontend, model, train = recipe["frontend"], recipe["model"], recipe["train"]
        self.frontend_combo.setCurrentIndex(max(0, self.frontend_combo.findData(
            frontend.name)))
        self.arch_combo.setCurrentIndex(max(0, self.arch_combo.findData(model.arch)))
        self.epochs_spin.setValue(train.epochs)
        self.batch_spin.setValue(train.batch_size)
        self.lr_spin.setValue(train.lr)
        self.hidden_spin.setValue(model.hidden)
        self.stats_check.setChecked(model.stats_branch)
        self.ensemble_spin.setValue(model.ensemble)
        self.loudness_check.setChecked(frontend.loudness != "none")
        self.band_norm_check.setChecked(frontend.band_norm != "none")
        self.channel_spin.setValue(train.channel.variants)
        self.adversarial_spin.setValue(train.adversarial_weight)
        self.folds_spin.setValue(train.folds)

    def _frontend_changed(self) -> None:
        hubert = self.frontend_combo.currentData() == "hubert"
        for w in (self.encoder_edit, self.encoder_button, self.weighted_check):
            w.setEnabled(hubert)
        self.band_norm_check.setEnabled(self.frontend_combo.currentData() == "logmel")

    def _arch_changed(self) -> None:
        self.adversarial_spin.setEnabled(self.arch_combo.currentData() == "enhanced")

    def _choose_encoder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Encoder folder (save_pretrained)")
        if path:
            self.encoder_edit.setText(path)

    def _choose_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def problems(self) -> list[str]:
        """Why the settings cannot be used as they are (empty when they can)."""
        found = []
        if self.folds_spin.value() == 1:
            found.append("Folds must be 0 (leave-one-speaker-out) or at least 2.")
        if (self.arch_combo.currentData() == "enhanced"
                and self.hidden_spin.value() % self.attn_heads):
            found.append(f"The enhanced network needs a hidden size divisible by "
                         f"{self.attn_heads}.")
        if not self.out_edit.text().strip():
            found.append("Choose an output folder.")
        return found

    def _changed(self) -> None:
        self.hint_label.setText(" ".join(self.problems()))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.problems()

    def validatePage(self) -> bool:
        out = Path(self.out_edit.text().strip()).expanduser()
        if out.is_file():
            self.hint_label.setText(f"{out} is a file; choose a folder.")
            return False
        if out.is_dir() and any(out.iterdir()):
            return self.confirm(f"{out} is not empty; files of an earlier run there will be "
                                "overwritten. Continue?")
        return True

    def _confirm_dialog(self, text: str) -> bool:
        return QMessageBox.question(self, "Output folder", text) == QMessageBox.Yes

    def values(self) -> dict:
        """The page's fields as TrainSettings keyword arguments."""
        return {"recipe": self.recipe_combo.currentData() or "",
                "frontend": self.frontend_combo.currentData(),
                "encoder": self.encoder_edit.text().strip(),
                "weighted_layers": self.weighted_check.isChecked(),
                "arch": self.arch_combo.currentData(), "epochs": self.epochs_spin.value(),
                "batch_size": self.batch_spin.value(), "lr": self.lr_spin.value(),
                "hidden": self.hidden_spin.value(), "ensemble": self.ensemble_spin.value(),
                "stats_branch": self.stats_check.isChecked(),
                "folds": self.folds_spin.value(),
                "max_folds": self.max_folds_spin.value(),
                "augment": self.augment_check.isChecked(),
                "loudness": self.loudness_check.isChecked(),
                "band_norm": self.band_norm_check.isChecked(),
                "channel_variants": self.channel_spin.value(),
                "adversarial_weight": self.adversarial_spin.value(),
                "final_model": self.final_check.isChecked(),
                "out_dir": str(Path(self.out_edit.text().strip()).expanduser())}
