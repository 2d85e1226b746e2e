"""Help › About: the program, and the model card of the loaded model.

The card is assets/MODEL_CARD.md rendered as markdown when it exists; otherwise the loaded
model's own facts (its checkpoint's JSON sidecar) are shown.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QBrush, QColor, QTextFrameFormat, QTextTable
from PyQt5.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout

from ser_studio.app.shell.model_info import languages_text
from ser_studio.app.shell.theme import icon
from ser_studio.model.package_files import assets_dir

log = logging.getLogger(__name__)

ASSETS = assets_dir()
MODEL_CARD = ASSETS / "MODEL_CARD.md"
# Sidecar keys shown in their own sections, or not worth showing (long vectors, bookkeeping).
FACT_KEYS = ("labels", "metrics", "frontend", "model", "train", "speakers", "norm_mean",
             "norm_std", "weights_sha1", "format", "version", "state_dict")


def model_card_markdown(info=None, card: Path = MODEL_CARD) -> str:
    """The markdown shown: the languages ``info`` (a ModelInfo) was trained on, then the model
    card file, else facts from ``info``."""
    if info is None:
        return _card(info, card)
    return f"**Languages:** {languages_text(info.languages)}.\n\n" + _card(info, card)


def _card(info, card: Path) -> str:
    if card.exists():
        try:
            text = card.read_text(encoding="utf-8")
        except OSError as exc:
            log.warning("cannot read %s: %s", card, exc)
        else:
            if info is not None and info.facts.get("shipped") is not True:
                text = _facts(info) + "\n\n---\n\n" + text
            return text
    if info is None:
        return "## No model loaded\n\nOpen a checkpoint with File › Open model (Ctrl+M)."
    return _facts(info)


def _facts(info) -> str:
    """A markdown summary of the loaded model from its JSON facts."""
    lines = [f"## Loaded model: {info.name}", "", f"`{info.path}`", "",
             f"**Classes:** {', '.join(info.labels)}", ""]
    facts = info.facts or {}
    metrics = facts.get("metrics") or {}
    summary = [f"| {k} | {_fmt(v)} |" for k, v in metrics.items() if not isinstance(v, (list,))]
    if summary:
        lines += ["### Metrics", "", "| metric | value |", "|---|---|", *summary, ""]
    for key in ("frontend", "model", "train"):
        value = facts.get(key)
        if key == "frontend" and isinstance(value, dict) and value.get("name") == "logmel":
            value = {k: v for k, v in value.items() if k in ("name", "n_mels")}
        if isinstance(value, dict):
            lines += [f"### {key.capitalize()}", "", "| setting | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in value.items()] + [""]
    speakers = facts.get("speakers") or []
    if speakers:
        lines += [f"**Trained on {len(speakers)} speakers.**", ""]
    others = {k: v for k, v in facts.items() if k not in FACT_KEYS}
    if others:
        lines += ["### Other facts", "", "```", json.dumps(others, indent=2)[:4000], "```"]
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        if set(value) >= {"mean", "std"}:
            return f"{value['mean']:.3f} ± {value['std']:.3f}"
        return json.dumps(value)[:200]
    return str(value)


def _style_tables(document) -> None:
    """Thin light single borders and padding for the tables markdown produced."""
    for frame in document.rootFrame().childFrames():
        if isinstance(frame, QTextTable):
            fmt = frame.format()
            fmt.setBorderCollapse(True)
            fmt.setBorder(1)
            fmt.setBorderBrush(QBrush(QColor("#d4dae4")))
            fmt.setBorderStyle(QTextFrameFormat.BorderStyle_Solid)
            fmt.setCellSpacing(0)
            fmt.setCellPadding(4)
            fmt.setBottomMargin(8)
            frame.setFormat(fmt)


class AboutDialog(QDialog):
    """The About box; ``info`` is the loaded model's ModelInfo (or None)."""

    def __init__(self, info=None, parent=None, card: Path = MODEL_CARD):
        super().__init__(parent)
        self.setWindowTitle("About SER Studio")
        self.setWindowIcon(icon("app"))
        self.resize(720, 620)
        title = QLabel("<h2 style='margin:0'>SER Studio</h2>"
                       "<p>Speech emotion recognition from your microphone or audio files. "
                       "It recognises how something is said, not what is said; treat its "
                       "output as an estimate, not a judgement about a person.</p>")
        title.setWordWrap(True)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(model_card_markdown(info, card))
        _style_tables(self.browser.document())
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons, 0, Qt.AlignRight)
