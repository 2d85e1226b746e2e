"""The file worker: analyses audio files in its own QThread, next to the live worker.

A long file takes minutes; in the live worker's thread it held back every live window behind
it. Here it has its own thread and its own Predictor (the main window loads the same checkpoint
here and in the live worker, in parallel), so live windows keep flowing while a file is
analysed; files queued after a model change wait (in this thread's event order) for its load.

Each file is a job with an id given by ``FileThread.analyse``. The worker reports ``started``,
``progress`` (seconds of the file done and in all, when Predictor.predict_file accepts a
``progress`` callback), then one of ``fileResult``, ``fileError`` or ``cancelled``. Cancelling
is a thread-safe flag: a queued job is dropped when its turn comes; the running one stops at its
next progress call (between windows), or, with a predict_file without progress, its result is
discarded. History rows (one per analysed file) are written here, off the GUI thread.

Adapting to a file's speaker (``adapt_speaker``, the Files tab's checkbox, read when a job
starts): the file is decoded, its speaker profile (model/adaptation/profile.py) is built from it in
PROFILE_PIECE_S pieces, the file is scored with it, and the training statistics are used again
afterwards. A file without enough speech for a profile is scored without one.

Threads: torch runs on app/shell/torch_threads.py's count, set in this thread before each job.
"""
from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any, Callable

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from ser_studio.app.live.inference_thread import end_thread
from ser_studio.app.shell.model_info import model_info
from ser_studio.app.shell.torch_threads import inference_threads, load_predictor, use_threads
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2  # at most this often a progress signal per job
PROFILE_PIECE_S = 30.0  # the frontend sees a file this many seconds at a time for a profile


class FileCancelled(Exception):
    """Raised from the progress callback to stop predict_file between windows."""


def _default_loader(path: str | None):
    return load_predictor(path)


def accepts_progress(predict_file: Callable) -> bool:
    """Whether ``predict_file`` takes a ``progress`` keyword (newer model.inference.predictor
    does)."""
    try:
        params = inspect.signature(predict_file).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class FileWorker(QObject):
    """Runs Predictor.predict_file on queued files (lives in its own thread)."""

    started = pyqtSignal(int)  # job
    progress = pyqtSignal(int, float, float)  # job, seconds done, seconds in all
    fileResult = pyqtSignal(int, object, object)  # job, FileResult, labels (list[str])
    fileError = pyqtSignal(int, str, str)  # job, path, message naming the file
    cancelled = pyqtSignal(int)  # job
    modelLoaded = pyqtSignal(object)  # ModelInfo
    modelError = pyqtSignal(str)
    historyAdded = pyqtSignal(int)
    historyError = pyqtSignal(str)

    def __init__(self, *, history=None, loader: Callable[[str | None], Any] | None = None,
                 threads: int | None = None):
        super().__init__()
        self.history = history
        self.threads = int(threads) if threads else inference_threads()
        self._loader = loader or _default_loader
        self.predictor = None
        self.adapt_speaker = False  # set from the GUI; read when a job starts
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._stopping = threading.Event()

    # -- any thread ----------------------------------------------------------------------
    def cancel(self, job: int) -> None:
        """Cancel a queued or running job; thread-safe."""
        with self._lock:
            self._cancelled.add(int(job))

    def stop(self) -> None:
        """Cancel everything: the running job stops at its next window, queued ones drop."""
        self._stopping.set()

    def _is_cancelled(self, job: int) -> bool:
        with self._lock:
            return self._stopping.is_set() or job in self._cancelled

    # -- worker thread -------------------------------------------------------------------
    @pyqtSlot(str)
    def load_model(self, path: str) -> None:
        """Load the checkpoint at ``path`` ("" = the default model); emits modelLoaded, or
        modelError and keeps the model it had (as the live worker does)."""
        if self._stopping.is_set():
            return
        use_threads(self.threads)
        try:
            predictor = self._loader(path or None)
        except Exception as exc:
            log.warning("file worker: loading model %s failed: %s", path or "(default)", exc)
            self.modelError.emit(f"Cannot load model {path} for files: {exc}")
            return
        self.predictor = predictor
        self.modelLoaded.emit(model_info(predictor))

    @pyqtSlot(int, str)
    def analyse(self, job: int, path: str) -> None:
        """Analyse one file (queued jobs wait as events in this thread's loop)."""
        if self._is_cancelled(job):
            self._forget(job)
            self.cancelled.emit(job)
            return
        if self.predictor is None:
            self.fileError.emit(job, path, f"{path}: no model is loaded; open a model first")
            return
        self.started.emit(job)
        use_threads(self.threads)
        try:
            res = self._predict_adapted(job, path) if self.adapt_speaker \
                else self._predict(job, path)
        except FileCancelled:
            log.info("analysis of %s cancelled", path)
            res = None
        except Exception as exc:  # AudioError names the file; others get its name here
            text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            log.warning("analysing %s failed: %s", path, text)
            self.fileError.emit(job, path, text)
            return
        if res is None or self._is_cancelled(job):
            self._forget(job)
            self.cancelled.emit(job)
            return
        self._store(res)
        self.fileResult.emit(job, res, list(self.predictor.labels))

    @pyqtSlot()
    def finish(self) -> None:
        """Last event of the thread: end its loop."""
        self._stopping.set()
        self.thread().quit()

    def _predict(self, job: int, path: str):
        predict_file = self.predictor.predict_file
        if not accepts_progress(predict_file):
            return predict_file(path, vad=True)
        last = [0.0]

        def progress(done_s: float, total_s: float) -> None:
            if self._is_cancelled(job):
                raise FileCancelled(path)
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or done_s >= total_s:
                last[0] = now
                self.progress.emit(job, float(done_s), float(total_s))

        return predict_file(path, vad=True, progress=progress)

    def _predict_adapted(self, job: int, path: str):
        """Score ``path`` standardised with its own speaker's profile, then reset."""
        from ser_studio.model.adaptation.profile import ProfileError, make_profile
        from ser_studio.model.audio.io import load_audio

        wav = load_audio(path)
        step = int(PROFILE_PIECE_S * SAMPLE_RATE)
        try:
            profile = make_profile(self.predictor, [wav[i:i + step]
                                                    for i in range(0, wav.shape[0], step)])
        except ProfileError as exc:
            log.info("%s: scored without a speaker profile: %s", path, exc)
            return self._predict(job, path)
        del wav
        log.info("%s: adapted to its speaker (%.1f s of speech)", path, profile.speech_seconds)
        self.predictor.use_profile(profile, source=path)
        try:
            return self._predict(job, path)
        finally:
            self.predictor.use_profile(None)

    def _forget(self, job: int) -> None:
        with self._lock:
            self._cancelled.discard(job)

    def _store(self, res) -> None:
        if self.history is None:
            return
        overall, labels = res.overall, list(self.predictor.labels)
        try:
            row = self.history.add(
                source=str(res.path), label=overall.label, duration_s=float(res.duration_s),
                model=str(self.predictor.name),
                probs={k: float(p) for k, p in zip(labels, overall.probs)}, audio=None)
        except Exception as exc:
            log.exception("writing history failed")
            self.historyError.emit(f"cannot write history to {self.history.path}: {exc}")
            return
        self.historyAdded.emit(row)


class FileThread(QObject):
    """The GUI's non-blocking handle on a FileWorker running in its own QThread."""

    _load = pyqtSignal(str)
    _analyse = pyqtSignal(int, str)
    _finish = pyqtSignal()

    def __init__(self, worker: FileWorker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self._next_job = 0
        self.thread = QThread()
        self.thread.setObjectName("files")
        worker.moveToThread(self.thread)
        self._load.connect(worker.load_model)
        self._analyse.connect(worker.analyse)
        self._finish.connect(worker.finish)
        self.thread.finished.connect(worker.deleteLater)
        self.thread.start()

    def load_model(self, path: str) -> None:
        """Use the checkpoint at ``path`` for the files queued after this call."""
        self._load.emit(str(path or ""))

    def analyse(self, paths) -> list[int]:
        """Queue files; returns their job ids (in order)."""
        jobs = []
        for path in paths:
            self._next_job += 1
            jobs.append(self._next_job)
            self._analyse.emit(self._next_job, str(path))
        return jobs

    def cancel(self, job: int) -> None:
        self.worker.cancel(job)

    def shutdown(self, timeout_ms: int = 500) -> bool:
        """Cancel every job and end the thread, waiting at most ``timeout_ms``. Returns whether
        it ended; one still running is kept referenced until it does."""
        return end_thread(self.worker, self._finish, self.thread, timeout_ms, "file")


__all__ = ["FileCancelled", "FileThread", "FileWorker", "accepts_progress"]
