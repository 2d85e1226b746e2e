"""The live view: current emotion, probability bars, last-minute timeline, waveform with the
model's attention, the input level, and the last closed speech segment (what its history row
holds).

Slots only store the newest data; one display timer (DISPLAY_FPS) paints what changed, and
skips painting while the panel is hidden.
"""
from __future__ import annotations

import collections
import time

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget)

from ser_studio.app.live.level_meter import LevelMeter
from ser_studio.app.shell.theme import (ACCENT, MUTED, emotion_colour, percent_axis, style_bar_plot,
                                        style_plot)
from ser_studio.model.audio.loudness import level_warning
from ser_studio.model.constants import LIVE_BUFFER_SECONDS, SAMPLE_RATE

DISPLAY_FPS = 25
TIMELINE_S = 60.0
# The timeline's line breaks where results stop following each other: listening stopped, the
# stream restarted (its sample counter went back), or this much more wall time passed than
# stream time (a stall).
TIMELINE_GAP_S = 2.0
HEADLINE_MIN_PX = 60  # the headline's labels' minimum width, whatever their text
WAVE_POINTS = 1200  # min/max envelope bins drawn for the waveform
# Vertical layout of the waveform plot: the waveform on top, the attention band below it.
WAVE_CENTRE, WAVE_HALF = 0.35, 0.6
ATT_BASE, ATT_HEIGHT = -1.0, 0.7


def segment_text(seg) -> str:
    """The "Last segment" line of a FinishedSegment: its label and probability as the History
    table shows them (label, confidence as a whole percent)."""
    windows = f"{seg.windows} window{'s' if seg.windows != 1 else ''}"
    return (f"Last segment ({windows}, {seg.duration_s:.1f} s): {seg.label} "
            f"{seg.probs[seg.label]:.0%}")


def segment_tooltip(seg) -> str:
    probs = ", ".join(f"{name} {p:.0%}" for name, p in seg.probs.items())
    return (f"Mean of the segment's {seg.windows} speech window(s): {probs}.\n"
            "This is what its History row stores; the headline above shows the newest "
            "window(s) only.")


def envelope(wav: np.ndarray, bins: int = WAVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(N,) samples -> x (2*bins',) sample positions and y alternating min/max per bin, for
    drawing a long waveform with a few thousand points."""
    n = wav.shape[0]
    if n <= 2 * bins:
        return np.arange(n, dtype=np.float64), wav.astype(np.float64)
    k = n // bins
    body = wav[n - k * bins:].reshape(bins, k)
    y = np.empty(2 * bins)
    y[0::2], y[1::2] = body.min(axis=1), body.max(axis=1)
    x = np.repeat(np.arange(bins) * k + (n - k * bins) + k / 2, 2)
    return x, y


def attention_edges(r, duration: float) -> np.ndarray:
    """(T'+1,) step edges in seconds before the window's end (-duration .. 0) for a
    LiveResult's attention (T',): each step is centred on the middle of the audio its frame
    is computed from, not on the frame's start (a speech_embedding frame reads 0.785 s, so
    drawn at its start the strip would lead the speech by ~0.4 s and end ~0.8 s early)."""
    centres = (np.arange(r.attention.size) / r.attention_rate + r.attention_offset_s
               + r.attention_centre_s - duration)
    return np.append(centres, centres[-1] + 1.0 / r.attention_rate) - 0.5 / r.attention_rate


class EmotionHeadline(QFrame):
    """The current emotion in large type, its confidence, a status line and the input level."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("headline")
        self._colour = ""
        self.emotion = QLabel("—")
        self.emotion.setObjectName("emotionLabel")
        self.confidence = QLabel("")
        self.confidence.setObjectName("confidenceLabel")
        self.status = QLabel("Press Start to listen")
        self.status.setObjectName("statusLabel")
        self.segment = QLabel("Last segment: none yet (one history row per speech segment)")
        self.segment.setObjectName("hint")
        for label in (self.emotion, self.confidence, self.status, self.segment):
            # Their texts change while listening (a level warning makes the status line
            # ~900 px): a minimum set here, not the text's width, keeps the window from
            # widening itself; a narrow window clips them.
            label.setMinimumWidth(HEADLINE_MIN_PX)
        self.meter = LevelMeter()
        caption = QLabel("Input level")
        caption.setObjectName("caption")
        left = QVBoxLayout()
        top = QHBoxLayout()
        top.addWidget(self.emotion)
        top.addSpacing(16)
        top.addWidget(self.confidence, 0, Qt.AlignBottom)
        top.addStretch(1)
        left.addLayout(top)
        left.addWidget(self.status)
        left.addWidget(self.segment)
        right = QVBoxLayout()
        right.addStretch(1)
        right.addWidget(caption)
        right.addWidget(self.meter)
        right.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(18, 10, 18, 10)
        row.addLayout(left, 1)
        row.addSpacing(24)
        row.addLayout(right)
        self.meter.setFixedWidth(300)

    def show_state(self, text: str, colour: str, confidence: str, status: str) -> None:
        if colour != self._colour:  # restyling re-polishes the label: only on a change
            self._colour = colour
            self.emotion.setStyleSheet(f"color: {colour};")
        for label, value in ((self.emotion, text), (self.confidence, confidence),
                             (self.status, status)):
            if label.text() != value:
                label.setText(value)


class LivePanel(QWidget):
    """See the module docstring. Feed it with set_labels, set_result, set_level, set_listening."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.labels: list[str] = []
        self._result = None
        self._segment = None
        self._level: float | None = None
        self._listening = False
        self._dirty = True
        self._level_dirty = False
        self._idle = ("Loading model…", "Press Start to listen")
        # (wall-clock s, probs (C,)) of the last minute; a row of NaN breaks the line
        self._history: collections.deque = collections.deque()
        self._last_end: int | None = None  # stream sample of the newest point
        self._stopped = False  # listening stopped since the newest point
        self.clock = time.monotonic  # seconds; tests replace it
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / DISPLAY_FPS))
        self._timer.timeout.connect(self._paint)
        self._timer.start()
        self.paint_count = 0

    def stop(self) -> None:
        """Stop repainting (the window is closing; results that still arrive are kept unshown)."""
        self._timer.stop()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        self.headline = EmotionHeadline()
        self.meter = self.headline.meter
        self.bars_plot = pg.PlotWidget()
        style_bar_plot(self.bars_plot, "Probabilities")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.65)
        self.bars_plot.addItem(self.bars)
        self.bars_note = pg.TextItem("", color=MUTED, anchor=(0.5, 0.5))
        self.bars_plot.addItem(self.bars_note)
        self.timeline_plot = pg.PlotWidget()
        style_plot(self.timeline_plot, "Last minute")
        self.timeline_plot.setXRange(-TIMELINE_S, 0, padding=0)
        percent_axis(self.timeline_plot)
        self.timeline_plot.setLabel("bottom", "seconds")
        self.timeline_legend = self.timeline_plot.addLegend(offset=(8, 4), colCount=4)
        self.timeline_curves: dict[str, pg.PlotDataItem] = {}
        self.wave_plot = pg.PlotWidget()
        style_plot(self.wave_plot, "Window analysed (waveform) and where the model listened "
                                   "(attention)")
        self.wave_plot.setLabel("bottom", "seconds")
        self.attention_curve = pg.PlotDataItem(
            pen=pg.mkPen(QColor(ACCENT), width=1.5), fillLevel=ATT_BASE,
            brush=pg.mkBrush(QColor(45, 108, 223, 70)))
        self.wave_curve = pg.PlotDataItem(pen=pg.mkPen("#2f3a4d", width=1))
        self.wave_plot.addItem(self.attention_curve)
        self.wave_plot.addItem(self.wave_curve)
        self.wave_plot.setYRange(ATT_BASE, WAVE_CENTRE + WAVE_HALF, padding=0.03)
        self.wave_plot.getAxis("left").setTicks([[(WAVE_CENTRE, "audio"),
                                                  (ATT_BASE + ATT_HEIGHT / 2, "attention")]])
        self.bars_plot.getAxis("bottom").setTicks([[]])
        self.wave_plot.setXRange(-LIVE_BUFFER_SECONDS, 0, padding=0)
        self.timeline_hint = self._hint(self.timeline_plot, -TIMELINE_S / 2, 0.5,
                                        "The probabilities of the last minute appear here "
                                        "while you listen")
        self.wave_hint = self._hint(self.wave_plot, -LIVE_BUFFER_SECONDS / 2, 0.0,
                                    "The window analysed and the model's attention appear here")
        grid = QGridLayout(self)
        grid.addWidget(self.headline, 0, 0, 1, 3)
        grid.addWidget(self.bars_plot, 1, 0)
        grid.addWidget(self.timeline_plot, 1, 1, 1, 2)
        grid.addWidget(self.wave_plot, 2, 0, 1, 3)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 2)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 2)

    @staticmethod
    def _hint(plot: pg.PlotWidget, x: float, y: float, text: str) -> pg.TextItem:
        """A grey note in the middle of an empty plot (hidden once data arrives)."""
        item = pg.TextItem(text, color=MUTED, anchor=(0.5, 0.5))
        item.setPos(x, y)
        plot.addItem(item)
        return item

    # -- slots: store only ---------------------------------------------------------------
    def set_labels(self, labels: list[str]) -> None:
        """A model with these class names was loaded: rebuild bars and timeline curves."""
        self.labels = list(labels)
        self._result = None
        self._history.clear()
        self._last_end = None
        self.timeline_legend.clear()
        for curve in self.timeline_curves.values():
            self.timeline_plot.removeItem(curve)
        self.timeline_curves = {}
        for i, name in enumerate(self.labels):
            curve = self.timeline_plot.plot(
                [], [], name=name, pen=pg.mkPen(emotion_colour(name, i), width=2),
                connect="finite")
            self.timeline_curves[name] = curve
        ticks = [[(i, name) for i, name in enumerate(self.labels)]]
        self.bars_plot.getAxis("bottom").setTicks(ticks)
        self.bars_plot.setXRange(-0.6, max(0, len(self.labels) - 1) + 0.6, padding=0)
        self._dirty = True

    def set_result(self, result) -> None:
        """Store the newest LiveResult (and append it to the timeline).

        Timeline points are placed by the wall clock when they arrive, not by the stream's
        sample counter, which starts again at 0 with every Start, new device or calibration:
        the chart shows the last minute of real time, with a gap where listening stopped."""
        if list(result.labels) != self.labels:
            self.set_labels(result.labels)
        self._result = result
        now = self.clock()
        if self._history and not self._follows(result.end, now):
            self._history.append((now, np.full(len(self.labels), np.nan)))
        self._last_end, self._stopped = result.end, False
        probs = result.probs if result.label is not None else np.full(len(self.labels), np.nan)
        self._history.append((now, probs))
        while self._history and self._history[0][0] < now - TIMELINE_S:
            self._history.popleft()
        self._dirty = True

    def _follows(self, end: int, now: float) -> bool:
        """Whether a result ending at stream sample ``end``, arriving at ``now``, continues
        the newest point's line (same stream, no stop, no stall in between)."""
        if self._stopped or self._last_end is None or end <= self._last_end:
            return False
        stream_s = (end - self._last_end) / SAMPLE_RATE
        return now - self._history[-1][0] <= stream_s + TIMELINE_GAP_S

    def set_segment(self, segment) -> None:
        """Store the FinishedSegment that was just closed (and written to history)."""
        self._segment = segment
        self._dirty = True

    def set_idle_text(self, title: str, status: str) -> None:
        """What the headline says before the first result ("Ready", "No model", ...)."""
        self._idle = (title, status)
        self._dirty = True

    def set_level(self, db: float) -> None:
        self._level = db
        self._level_dirty = True

    def set_listening(self, listening: bool) -> None:
        self._listening = listening
        if not listening:
            self._stopped = True
            self._level = None
            self.meter.reset()
        self._dirty = True

    # -- painting ------------------------------------------------------------------------
    def _paint(self) -> None:
        """Display timer: repaint what changed since the last tick (the meter alone when
        only the level changed), nothing while hidden."""
        if not self.isVisible() or not (self._dirty or self._level_dirty):
            return
        self._level_dirty = False
        if self._level is not None:
            self.meter.set_level(self._level)
        self.meter.update()
        if not self._dirty:
            return
        self._dirty = False
        self.paint_count += 1
        self._paint_headline()
        self._paint_bars()
        self._paint_timeline()
        self._paint_wave()

    def _level_warning(self) -> str:
        """The newest window's level warning ("" when fine), also shown on the meter."""
        r = self._result
        level = getattr(r, "level", None) if r is not None and self._listening else None
        warning = level_warning(level) if level is not None else ""
        self.meter.set_warning(warning)
        return warning

    def _paint_headline(self) -> None:
        warning = self._level_warning()
        r = self._result
        if r is None:
            title, status = self._idle
            if self._listening:
                title, status = "Listening…", "The first window is being analysed"
            self.headline.show_state(title, MUTED, "", status)
        elif not self._listening:
            self.headline.show_state(self.headline.emotion.text(), MUTED, "",
                                     "Stopped · the plots show the last window analysed · "
                                     "press Start to listen again")
        elif not r.model_loaded:
            self.headline.show_state("No model", MUTED, "",
                                     "Open a model (File › Open model) to recognise emotions")
        elif r.label is None:
            self.headline.show_state("No speech", MUTED, "",
                                     f"speech in {r.speech_ratio:.0%} of the window · waiting "
                                     "for a voice")
        else:
            colour = emotion_colour(r.label, self.labels.index(r.label)).name()
            self.headline.show_state(r.label.capitalize(), colour, f"{r.confidence:.0%}",
                                     f"speech in {r.speech_ratio:.0%} of the window · "
                                     f"{r.latency_s * 1000:.0f} ms")
        if self._segment is not None:
            text = segment_text(self._segment)
            if self.headline.segment.text() != text:
                self.headline.segment.setText(text)
                self.headline.segment.setToolTip(segment_tooltip(self._segment))
        if warning:
            status = self.headline.status
            status.setText(f"⚠ {warning[0].upper()}{warning[1:]} · {status.text()}")

    def _paint_bars(self) -> None:
        n = len(self.labels)
        r = self._result
        probs = r.probs if r is not None else np.zeros(n)
        note = "" if r is not None and r.label is not None else \
            ("no speech" if r is not None and r.model_loaded else "")
        self.bars_note.setText(note)
        self.bars_note.setPos((n - 1) / 2 if n else 0, 0.5)
        if n == 0:  # no model yet: nothing to draw (pyqtgraph refuses empty pen lists)
            return
        brushes = [pg.mkBrush(emotion_colour(name, i)) for i, name in enumerate(self.labels)]
        self.bars.setOpts(x=np.arange(n), height=np.asarray(probs, dtype=float), brushes=brushes,
                          pens=[pg.mkPen(None)] * n)

    def _paint_timeline(self) -> None:
        self.timeline_hint.setVisible(not self._history)
        if not self._history:
            for curve in self.timeline_curves.values():
                curve.setData([], [])
            return
        times = np.array([t for t, _ in self._history])
        probs = np.stack([p for _, p in self._history])
        x = times - times[-1]
        for i, name in enumerate(self.labels):
            self.timeline_curves[name].setData(x, probs[:, i], connect="finite")

    def _paint_wave(self) -> None:
        r = self._result
        self.wave_hint.setVisible(r is None or r.wav.size == 0)
        if r is None or r.wav.size == 0:
            self.wave_curve.setData([], [])
            self.attention_curve.setData([], [])
            return
        x, y = envelope(r.wav)
        peak = max(float(np.abs(r.wav).max()), 0.02) * 1.05
        duration = r.wav.shape[0] / SAMPLE_RATE
        self.wave_curve.setData(x / SAMPLE_RATE - duration, WAVE_CENTRE + WAVE_HALF * y / peak)
        self.wave_plot.setXRange(-max(duration, 1.0), 0, padding=0)
        att = np.asarray(r.attention, dtype=float)
        if att.size and r.attention_rate > 0 and att.max() > 0:
            # Uniform attention fills half the band; a peak above twice uniform fills it all.
            scale = max(float(att.max()), 2.0 / att.size)
            self.attention_curve.setData(attention_edges(r, duration),
                                         ATT_BASE + ATT_HEIGHT * att / scale, stepMode="center")
        else:
            self.attention_curve.setData([], [])
