"""The "Calibrate to my voice" dialog: records about TARGET_SPEECH_S of speech from the input.

Recording goes through the app's own path (app/live/recorder.py's Recorder with the window's
stream factory). ``Capture`` takes each window's new samples in the recorder's thread (a
direct connection: no audio crosses to the GUI thread until the end) and runs the streaming
speech detector (model.audio.speech_track) over them, so the dialog only receives progress numbers. Finish stops
the recorder and, once its thread has ended, hands the recording over as ``recorded``; the
profile itself is built in the inference worker's thread.
"""
from __future__ import annotations

import logging
import threading

import numpy as np
from PyQt5.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt5.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QProgressBar, QPushButton,
                             QVBoxLayout)

from ser_studio.app.live.level_meter import LevelMeter
from ser_studio.model.audio.speech_track import SpeechTrack
from ser_studio.app.live.recorder import MAX_WINDOW_SECONDS, Recorder
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

TARGET_SPEECH_S = 20.0  # the dialog finishes on its own at this much speech
MIN_SPEECH_S = 2.0      # Finish is offered from this much speech on
HOP_S = 0.5             # the recorder hands over new samples this often


class Capture(QObject):
    """The recording of one calibration: new samples of each window, and speech seconds.

    ``add`` runs in the recorder's thread; ``progress(speech_s, total_s)`` goes to the GUI.
    """

    progress = pyqtSignal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._vad = SpeechTrack()
        self._end: int | None = None
        self.speech_s = 0.0
        self.total_s = 0.0

    def add(self, wav: np.ndarray, end: int) -> None:
        """A recorder window (N,) ending at stream sample ``end``: keep its new samples."""
        new = wav.shape[0] if self._end is None else min(max(end - self._end, 0), wav.shape[0])
        self._end = int(end)
        if new == 0:
            return
        fresh = np.array(wav[wav.shape[0] - new:], dtype=np.float32)
        self._vad.feed(fresh, end)
        speech = self._vad.ratio(end - new, end) * new / SAMPLE_RATE
        with self._lock:
            self._chunks.append(fresh)
            self.speech_s += speech
            self.total_s += new / SAMPLE_RATE
        self.progress.emit(self.speech_s, self.total_s)

    def chunks(self) -> list[np.ndarray]:
        """The recorded pieces, in order ((N,) float32 at 16 kHz each)."""
        with self._lock:
            return list(self._chunks)


class CalibrationDialog(QDialog):
    """Records from ``device`` (PortAudio index or None) through ``stream_factory`` (None: the
    sound card). Signals: recorded(list of chunks) after Finish; failed(str) when the input
    cannot be opened. The recorder is stopped on Finish, Cancel and close; ``recording`` says
    whether its thread still runs."""

    recorded = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, *, device, device_label: str, stream_factory=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Calibrate to my voice")
        self.device_label = device_label
        self.capture = Capture(self)
        self.recorder = Recorder(device, device_label=device_label, window_s=MAX_WINDOW_SECONDS,
                                 hop_s=HOP_S, stream_factory=stream_factory)
        self._finishing = False
        self._stopped = False
        self._build()
        self.recorder.window.connect(self.capture.add, Qt.DirectConnection)
        self.recorder.level.connect(self.meter.set_level)
        self.recorder.error.connect(self._on_error)
        self.recorder.finished.connect(self._on_recorder_finished)
        self.capture.progress.connect(self._on_progress)
        self._paint = QTimer(self, interval=50, timeout=self.meter.update)

    def _build(self) -> None:
        intro = QLabel(f"Speak normally for about {TARGET_SPEECH_S:.0f} s — read something "
                       "aloud or talk about your day — in the voice you usually use.\n"
                       f"Input: {self.device_label}")
        intro.setWordWrap(True)
        self.speech = QLabel("Speech so far: 0.0 s")
        self.bar = QProgressBar()
        self.bar.setRange(0, int(TARGET_SPEECH_S * 10))
        self.bar.setTextVisible(False)
        self.meter = LevelMeter()
        self.buttons = QDialogButtonBox()
        self.finish_button = QPushButton("Finish")
        self.finish_button.setEnabled(False)
        self.finish_button.clicked.connect(self.finish)
        self.buttons.addButton(self.finish_button, QDialogButtonBox.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.Cancel)
        self.buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        for w in (intro, self.speech, self.bar, QLabel("Input level"), self.meter, self.buttons):
            box.addWidget(w)
        self.setMinimumWidth(420)

    def start(self) -> None:
        """Open the input and start recording (returns at once; nothing once stopped)."""
        if self._stopped or self.recorder.isRunning():
            return
        self.recorder.start()
        self._paint.start()

    @property
    def recording(self) -> bool:
        return self.recorder.isRunning()

    def _on_progress(self, speech_s: float, total_s: float) -> None:
        self.speech.setText(f"Speech so far: {speech_s:.1f} s of {TARGET_SPEECH_S:.0f} s "
                            f"(recorded {total_s:.0f} s)")
        self.bar.setValue(int(min(speech_s, TARGET_SPEECH_S) * 10))
        self.finish_button.setEnabled(speech_s >= MIN_SPEECH_S and not self._finishing)
        if speech_s >= TARGET_SPEECH_S:
            self.finish()

    def finish(self) -> None:
        """Stop recording; ``recorded`` follows once the recorder's thread has ended."""
        if self._finishing:
            return
        self._finishing = True
        self.finish_button.setEnabled(False)
        self.speech.setText(self.speech.text() + " — finishing…")
        self._stop()

    def reject(self) -> None:
        self._finishing = False
        self._stop()
        super().reject()

    def _stop(self) -> None:
        self._stopped = True
        self._paint.stop()
        self.recorder.request_stop()
        if not self.recorder.isRunning():  # never started, or already ended
            self._on_recorder_finished()

    def _on_recorder_finished(self) -> None:
        if self._finishing:
            self._finishing = False
            self.recorded.emit(self.capture.chunks())
            self.accept()

    def _on_error(self, text: str) -> None:
        self._finishing = False
        self.failed.emit(text)
        super().reject()
