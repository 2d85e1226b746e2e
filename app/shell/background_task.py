"""A function run on a QThreadPool thread whose result or exception comes back as a signal.

The GUI thread submits and returns at once; ``done(result)`` or ``failed(message)`` arrive in
the receiver's thread through queued connections.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PyQt5.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

log = logging.getLogger(__name__)


class TaskSignals(QObject):
    done = pyqtSignal(object)
    failed = pyqtSignal(str)


class BackgroundTask(QRunnable):
    """Run ``fn()`` on a pool thread; ``signals.done`` / ``signals.failed`` report back."""

    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self.fn = fn
        self.signals = TaskSignals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported to the GUI as a message, never lost
            if isinstance(exc, (ValueError, OSError)):  # bad input: the message says it all
                log.warning("background task: %s", exc)
            else:
                log.exception("background task failed")
            self.signals.failed.emit(str(exc) or type(exc).__name__)
        else:
            self.signals.done.emit(result)


class TaskRunner(QObject):
    """Submits functions to a pool. The pool owns and deletes each runnable after ``run``; the
    runner keeps the task's signal object alive until its queued result has been delivered."""

    def __init__(self, pool: QThreadPool, parent=None):
        super().__init__(parent)
        self.pool = pool
        self._pending: set[TaskSignals] = set()

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_failed: Callable[[str], None]) -> None:
        task = BackgroundTask(fn)
        signals = task.signals
        self._pending.add(signals)

        def done(result):
            self._pending.discard(signals)
            on_done(result)

        def failed(text):
            self._pending.discard(signals)
            on_failed(text)

        signals.done.connect(done)
        signals.failed.connect(failed)
        self.pool.start(task)

    def busy(self) -> bool:
        """Whether a submitted task has not reported yet."""
        return bool(self._pending)
