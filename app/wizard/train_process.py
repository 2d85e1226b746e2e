"""Running ``main.py train --progress-json`` as a QProcess and reading its JSON-line events.

``JsonLineParser`` (no Qt) turns stdout bytes, arriving in arbitrary chunks, into
model.training.progress.ProgressEvent records (the class that wrote them);
``TrainProcess`` owns the QProcess, forwards events, stderr text and the outcome as signals,
and cancels with SIGTERM (the trainer keeps finished folds and still reports "done"),
escalating to kill() when the process has not ended after a timeout.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PyQt5.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, pyqtSignal

from ser_studio.model.training.progress import ProgressEvent

log = logging.getLogger(__name__)

KILL_AFTER_MS = 15000  # SIGTERM stops within one batch; a hung process is killed after this


class JsonLineParser:
    """Incremental parser: ``feed(chunk)`` returns the events completed by this chunk.

    A line that is not a progress event (not JSON, no known "event", unknown keys) is kept in
    ``garbage`` (and logged) rather than raising; a partial line waits for the rest.
    ``flush()`` parses what is left when the stream ends without a final newline.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self.garbage: list[str] = []

    def feed(self, chunk: bytes | str) -> list[ProgressEvent]:
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [e for e in map(self._parse, lines) if e is not None]

    def flush(self) -> list[ProgressEvent]:
        rest, self._buffer = self._buffer, b""
        event = self._parse(rest)
        return [event] if event is not None else []

    def _parse(self, raw: bytes) -> ProgressEvent | None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        try:
            return ProgressEvent.from_json(text)
        except (ValueError, TypeError) as exc:
            log.debug("non-event line on the trainer's stdout (%s): %r", exc, text[:200])
        self.garbage.append(text)
        return None


class TrainProcess(QObject):
    """One training process. Signals:

    progressEvent(ProgressEvent): a progress event, in order; output(str): stderr text and
    non-event stdout lines, for the log; failed(str): the process could not start (no
    ``finished`` follows); finished(int, bool): exit code and whether it crashed (killed by a
    signal included), after every event was delivered.
    """

    progressEvent = pyqtSignal(object)
    output = pyqtSignal(str)
    failed = pyqtSignal(str)
    finished = pyqtSignal(int, bool)

    def __init__(self, parent=None, kill_after_ms: int = KILL_AFTER_MS):
        super().__init__(parent)
        self.parser = JsonLineParser()
        self.process = QProcess(self)
        self.cancelled = False
        self._kill_timer = QTimer(self, singleShot=True, interval=kill_after_ms)
        self._kill_timer.timeout.connect(self._kill_now)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.errorOccurred.connect(self._error)
        self.process.finished.connect(self._finished)

    def start(self, program: str, args: list[str], workdir: str | Path) -> None:
        """Start ``program args`` in ``workdir`` with unbuffered Python output."""
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.setWorkingDirectory(str(workdir))
        log.info("starting %s %s", program, " ".join(args))
        self.process.start(program, list(args))

    def is_running(self) -> bool:
        return self.process.state() != QProcess.NotRunning

    def cancel(self) -> None:
        """Ask the trainer to stop (SIGTERM); kill it if it has not ended after the timeout."""
        if not self.is_running():
            return
        self.cancelled = True
        self.process.terminate()
        self._kill_timer.start()

    def _kill_now(self) -> None:
        if self.is_running():
            log.warning("trainer did not stop after SIGTERM; killing it")
            self.output.emit("The trainer did not stop in time and was killed.\n")
            self.process.kill()

    def _read_stdout(self) -> None:
        for event in self.parser.feed(bytes(self.process.readAllStandardOutput())):
            self.progressEvent.emit(event)
        self._flush_garbage()

    def _read_stderr(self) -> None:
        data = bytes(self.process.readAllStandardError())
        self.output.emit(data.decode("utf-8", errors="replace"))

    def _flush_garbage(self) -> None:
        if self.parser.garbage:
            self.output.emit("".join(line + "\n" for line in self.parser.garbage))
            self.parser.garbage.clear()

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.FailedToStart:
            self.failed.emit(f"Could not start {self.process.program()}: "
                             f"{self.process.errorString()}")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._read_stdout()
        self._read_stderr()
        for event in self.parser.flush():
            self.progressEvent.emit(event)
        self._flush_garbage()
        self.finished.emit(code, status == QProcess.CrashExit)
