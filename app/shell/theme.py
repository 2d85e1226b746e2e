"""Look and feel: the stylesheet, icons, pyqtgraph defaults and one colour per emotion."""
from __future__ import annotations

import logging

import pyqtgraph as pg
from PyQt5.QtGui import QColor, QIcon

from ser_studio.model.package_files import resources_dir

log = logging.getLogger(__name__)

RESOURCES = resources_dir()

# Colours chosen so that neighbouring emotions differ in hue and lightness.
EMOTION_COLOURS = {
    "angry": "#d64541", "happy": "#f2a516", "neutral": "#6f7c91", "sad": "#3f7cc4",
    "excited": "#e0569b", "frustrated": "#9b5b34", "surprised": "#19a7a8",
    "fearful": "#7d5bbe", "disgust": "#5b9a3c", "calm": "#4bb38a", "other": "#6b6b6b",
}
_FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
ACCENT = "#2d6cdf"
TEXT = "#27303f"
MUTED = "#7a8394"


def emotion_colour(label: str, index: int = 0) -> QColor:
    """The colour of an emotion label (a stable fallback for names not in the palette)."""
    return QColor(EMOTION_COLOURS.get(label.lower(), _FALLBACK[index % len(_FALLBACK)]))


def icon(name: str) -> QIcon:
    """resources/icons/<name>.svg as a QIcon (an empty icon when missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    if not path.exists():
        log.warning("icon %s not found", path)
        return QIcon()
    return QIcon(str(path))


def apply_theme(app) -> None:
    """Install the stylesheet on the QApplication and set pyqtgraph's colours."""
    configure_plots()
    qss = RESOURCES / "style.qss"
    try:
        icons = (RESOURCES / "icons").as_posix()
        app.setStyleSheet(qss.read_text(encoding="utf-8").replace("@ICONS@", icons))
    except OSError as exc:
        log.warning("stylesheet %s not loaded: %s", qss, exc)
    app.setWindowIcon(icon("app"))


def configure_plots() -> None:
    """Light plots with anti-aliasing, matching the stylesheet."""
    pg.setConfigOptions(background="w", foreground=TEXT, antialias=True)


def style_bar_plot(plot: pg.PlotWidget, title: str) -> None:
    """style_plot for a bar chart: class names under the bars, probabilities 0..1."""
    style_plot(plot, title)
    plot.getAxis("bottom").setHeight(30)
    percent_axis(plot)


def percent_axis(plot: pg.PlotWidget) -> None:
    """A 0..1 probability axis labelled in percent."""
    plot.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
    plot.setYRange(0, 1, padding=0.03)


def style_plot(plot: pg.PlotWidget, title: str) -> None:
    """A titled plot with a subtle grid and no mouse interaction (these are live displays)."""
    plot.setBackground("w")
    plot.setTitle(f"<span style='color:{TEXT};font-size:10pt;font-weight:600'>{title}</span>")
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen("#c3c9d4"))
        axis.setTextPen(pg.mkPen(MUTED))

