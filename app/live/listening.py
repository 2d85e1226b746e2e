"""The listening session: starts, stops and restarts the recorder thread without ever waiting
on it from the GUI thread, and wires its windows straight into the inference worker."""
from __future__ import annotations

import logging

from PyQt5.QtCore import QObject, Qt, pyqtSignal

from ser_studio.app.live.recorder import Recorder

log = logging.getLogger(__name__)

_STILL_RUNNING: list[Recorder] = []  # recorders whose bounded wait at shutdown timed out


class Listening(QObject):
    """Owns at most one running Recorder.

    Signals: state(bool listening), level(float dBFS), stats(int overflows, int lost blocks),
    opened(str description), stalled(bool), error(str message) — as Recorder's — and
    fallback(object device, str label): a newly chosen device failed to open, so listening
    went back to the last device that worked (friture's "restore the old one on failure").
    """

    fallback = pyqtSignal(object, str)
    state = pyqtSignal(bool)
    level = pyqtSignal(float)
    stats = pyqtSignal(int, int)
    opened = pyqtSignal(str)
    stalled = pyqtSignal(bool)
    error = pyqtSignal(str)

    def __init__(self, inference, stream_factory=None, parent=None):
        super().__init__(parent)
        self.inference = inference
        self.stream_factory = stream_factory
        self.recorder: Recorder | None = None
        self._next: dict | None = None  # parameters of a start waiting for the old recorder
        self._params: dict | None = None  # parameters of the running recorder
        self._opened = False  # whether the running recorder's stream opened
        self._last_good: dict | None = None  # parameters of the last stream that opened

    @property
    def listening(self) -> bool:
        return self.recorder is not None or self._next is not None

    def start(self, *, device, device_label: str, window_s: float, hop_s: float) -> None:
        """Start listening; a running recorder is stopped first and replaced when it ends."""
        params = dict(device=device, device_label=device_label, window_s=window_s, hop_s=hop_s)
        if self.recorder is not None:
            self._next = params
            self.recorder.request_stop()
            return
        self._launch(params)

    def _launch(self, params: dict) -> None:
        rec = Recorder(stream_factory=self.stream_factory, **params)
        rec.window.connect(self.inference.worker.submit, Qt.DirectConnection)
        rec.level.connect(self.level)
        rec.stats.connect(self.stats)
        rec.opened.connect(self._on_opened)
        rec.stalled.connect(self.stalled)
        rec.error.connect(self._on_error)
        rec.finished.connect(self._on_finished)
        self.recorder, self._params, self._opened = rec, params, False
        rec.start()
        self.state.emit(True)

    def _on_opened(self, text: str) -> None:
        if self.sender() is self.recorder:
            self._opened, self._last_good = True, self._params
        self.opened.emit(text)

    def _on_error(self, text: str) -> None:
        self.error.emit(text)
        good, params = self._last_good, self._params
        if (self.sender() is self.recorder and not self._opened and good is not None
                and self._next is None and good["device"] != params["device"]):
            self._next = dict(params, device=good["device"], device_label=good["device_label"])
            log.info("falling back to input %s", good["device_label"])
            self.fallback.emit(good["device"], good["device_label"])

    def restart(self, **params) -> None:
        """Apply new parameters: restart when listening, nothing otherwise."""
        if self.listening:
            self.start(**params)

    def stop(self) -> None:
        """Stop listening (returns at once); the open speech segment is stored."""
        self._next = None
        if self.recorder is not None:
            self.recorder.request_stop()
        self.inference.end_segment()
        self.state.emit(False)

    def _on_finished(self) -> None:
        rec = self.sender()
        if rec is not self.recorder:
            return
        self.recorder = None
        rec.deleteLater()
        if self._next is not None:
            params, self._next = self._next, None
            self.inference.end_segment()
            self._launch(params)
        else:
            self.inference.end_segment()
            self.state.emit(False)

    def shutdown(self, timeout_ms: int = 600) -> bool:
        """Stop for good at close; waits at most ``timeout_ms``. Returns whether it ended."""
        self._next = None
        rec, self.recorder = self.recorder, None
        if rec is None:
            return True
        rec.finished.disconnect(self._on_finished)
        rec.request_stop()
        if rec.wait(timeout_ms):
            return True
        log.warning("recorder still busy after %d ms; leaving it to finish", timeout_ms)
        _STILL_RUNNING.append(rec)
        return False


def recorders_still_running() -> list[Recorder]:
    return [r for r in _STILL_RUNNING if r.isRunning()]
