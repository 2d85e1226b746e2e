"""The GUI's handle on the inference worker's thread, and the registry of threads left running.

``InferenceThread`` owns the QThread an InferenceWorker (app/live/inference_worker.py) lives in: its
methods only emit queued signals or set flags, so none of them blocks. A thread whose bounded
shutdown wait timed out (this one's or the file worker's, both ended by ``end_thread``) is kept
referenced here so it is never destroyed running; ``threads_still_running`` lists them.
"""
from __future__ import annotations

import logging

from PyQt5.QtCore import QObject, QThread, pyqtSignal

from ser_studio.app.live.inference_worker import InferenceWorker

log = logging.getLogger(__name__)


class InferenceThread(QObject):
    """The GUI's non-blocking handle on an InferenceWorker running in its own QThread."""

    _load = pyqtSignal(str)
    _smoothing = pyqtSignal(int)
    _end_segment = pyqtSignal()
    _finish = pyqtSignal()
    _apply_profile = pyqtSignal(str, str)
    _make_profile = pyqtSignal(object, str, str)
    _reset_profile = pyqtSignal(str, str)
    _set_adapting = pyqtSignal(bool, str, str)

    def __init__(self, worker: InferenceWorker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("inference")
        worker.moveToThread(self.thread)
        self._load.connect(worker.load_model)
        self._smoothing.connect(worker.set_smoothing)
        self._end_segment.connect(worker.end_segment)
        self._finish.connect(worker.finish)
        self._apply_profile.connect(worker.apply_profile)
        self._make_profile.connect(worker.make_profile)
        self._reset_profile.connect(worker.reset_profile)
        self._set_adapting.connect(worker.set_adapting)
        self.thread.finished.connect(worker.deleteLater)
        self.thread.start()

    def load_model(self, path: str | None) -> None:
        self._load.emit(str(path or ""))

    def set_smoothing(self, windows: int) -> None:
        self._smoothing.emit(int(windows))

    def end_segment(self) -> None:
        self._end_segment.emit()

    def apply_profile(self, folder, device: str) -> None:
        self._apply_profile.emit(str(folder), device)

    def make_profile(self, chunks, folder, device: str) -> None:
        self._make_profile.emit(chunks, str(folder), device)

    def reset_profile(self, folder, device: str) -> None:
        self._reset_profile.emit(str(folder), device)

    def set_adapting(self, on: bool, folder, device: str) -> None:
        self._set_adapting.emit(bool(on), str(folder), device)

    def shutdown(self, timeout_ms: int = 1500) -> bool:
        """Stop the worker and its thread; waits at most ``timeout_ms`` (for a window in
        progress to finish). The open speech segment is still stored. Returns whether the
        thread ended; one that did not is kept referenced so it is never destroyed running."""
        return end_thread(self.worker, self._finish, self.thread, timeout_ms, "inference")


_STILL_RUNNING: list[QThread] = []


def end_thread(worker, finish, thread: QThread, timeout_ms: int, name: str) -> bool:
    """Stop ``worker`` (its ``stop`` flag, then the queued ``finish`` signal) and wait at most
    ``timeout_ms`` for ``thread`` to end. Returns whether it ended; one that did not is kept
    referenced until it does, so it is never destroyed running."""
    worker.stop()
    finish.emit()
    if thread.wait(timeout_ms):
        return True
    log.warning("%s thread still busy after %d ms; leaving it to finish", name, timeout_ms)
    _STILL_RUNNING.append(thread)
    return False


def threads_still_running() -> list[QThread]:
    """Threads whose shutdown timed out and that have not finished yet."""
    return [t for t in _STILL_RUNNING if t.isRunning()]
