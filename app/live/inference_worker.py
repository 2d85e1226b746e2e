"""The inference worker: a QObject living in its own QThread; the GUI thread never runs a model.

Live windows arrive through ``submit`` (thread-safe, called from the recorder's thread): only
the newest waiting window is kept and the replaced ones are counted as stale. Files are not
analysed here but in app/files/file_worker.py's own thread, so a long file never holds live windows
back. Every result goes out as a signal; every failure becomes an error signal, never an
exception on another thread. History rows (one per live speech segment) are written here, off
the GUI thread.

The windows go through the library's sliding-window engine (model.inference.window_stream),
the same one file analysis uses: the streamed speech detector, the speech gate, frames shared
between overlapping windows, smoothing and speech segments all live there; this worker moves
windows in and results out. The engine starts afresh when listening stops or restarts
(``end_segment``: a new device or new settings) and when another model is loaded.

What is shown and what is stored: a LiveResult's ``probs`` (the headline and bars) are the mean
of the last ``smoothing`` speech windows of the current segment (smoothing 1 = the newest
window alone); the history row of a segment (model.inference.segments) is the mean of *all* its
speech windows' raw probabilities. When a segment closes, ``segmentClosed`` carries exactly
what was stored, and the live view shows it under "Last segment".

Threads: torch runs this worker's model on the intra-op threads app/shell/torch_threads.py chooses
(``SER_INFERENCE_THREADS``, default 1), set in the worker's own thread before each piece of
work (the file worker does the same in its thread).

Speaker profiles (app/calibration/profiles.py) are loaded, built, saved and applied here too,
since this thread owns the live Predictor; the GUI hears ``profileChanged``/``profileError``. With
``set_adapting`` on, each speech hop's newest frames also grow the device's profile
(app.calibration.profiles.Adapting), which is saved and applied every few seconds of speech.

``InferenceThread`` (app/live/inference_thread.py) owns the QThread and is the GUI's handle: its
methods only emit queued signals or set flags, so none of them blocks.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal, pyqtSlot

from ser_studio.app.calibration.profiles import Adapting, apply_saved, calibrate, forget
from ser_studio.app.history.history_store import MICROPHONE
from ser_studio.app.shell.model_info import model_info
from ser_studio.app.shell.torch_threads import inference_threads, load_predictor, use_threads
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference.prediction import Prediction
from ser_studio.model.inference.segments import FinishedSegment
from ser_studio.model.inference.window_stream import WindowStep, WindowStream

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class LiveResult:
    """One analysed live window, as the GUI shows it.

    prediction: the window's own (model.inference.prediction.Prediction: its probabilities
        unsmoothed, speech verdict and ratio, attention, level); None without a model.
    probs: (n_classes,) the mean of the current segment's recent speech windows (the worker's
        smoothing); label: their argmax (None without speech).
    wav: (N,) float32 16 kHz, the window itself; end: its end sample index in the stream.
    latency_s: model time for this window (speech detection included); age_s: capture to
        result. attention_centre_s: where the audio of attention frame 0 is centred after
        the prediction's attention_offset_s (model.inference.describe.attention_centre_s).
    """

    labels: list[str]
    prediction: Prediction | None
    probs: np.ndarray
    label: str | None
    wav: np.ndarray
    end: int
    latency_s: float
    age_s: float
    stale_dropped: int
    attention_centre_s: float = 0.0

    @property
    def model_loaded(self) -> bool:
        return self.prediction is not None

    @property
    def raw_probs(self) -> np.ndarray:
        """(n_classes,) this window's own probabilities (zeros without a model)."""
        return self.prediction.probs if self.prediction is not None \
            else np.zeros(len(self.labels))

    @property
    def speech(self) -> bool:
        return self.prediction is not None and bool(self.prediction.speech)

    @property
    def speech_ratio(self) -> float:
        return float(self.prediction.speech_ratio) if self.prediction is not None else 0.0

    @property
    def attention(self) -> np.ndarray:
        """(T',) frame weights at attention_rate frames/s, starting attention_offset_s into
        the window (empty without speech)."""
        return self.prediction.attention if self.prediction is not None else np.zeros(0)

    @property
    def attention_rate(self) -> float:
        return float(self.prediction.attention_rate) if self.prediction is not None else 0.0

    @property
    def attention_offset_s(self) -> float:
        return float(self.prediction.attention_offset_s) if self.prediction is not None else 0.0

    @property
    def level(self):
        """model.audio.loudness.Level of the window (None without a model or audio)."""
        return self.prediction.level if self.prediction is not None else None

    @property
    def confidence(self) -> float:
        """Probability of the shown label (0 when no speech)."""
        if self.label is None:
            return 0.0
        return float(self.probs[self.labels.index(self.label)])


def _default_loader(path: str | None):
    return load_predictor(path)


class InferenceWorker(QObject):
    """Runs the Predictor on live windows (lives in its own thread)."""

    result = pyqtSignal(object)  # LiveResult
    segmentClosed = pyqtSignal(object)  # model.inference.segments.FinishedSegment, as stored in history
    modelLoaded = pyqtSignal(object)  # ModelInfo
    modelError = pyqtSignal(str)
    historyAdded = pyqtSignal(int)  # row id
    historyError = pyqtSignal(str)
    # app.calibration.profiles.ActiveProfile; None: the training statistics
    profileChanged = pyqtSignal(object)
    profileError = pyqtSignal(str)
    _wake = pyqtSignal()

    def __init__(self, *, history=None, smoothing: int = 1, keep_audio: bool = True,
                 loader: Callable[[str | None], Any] = _default_loader,
                 live_source: str = MICROPHONE, threads: int | None = None):
        super().__init__()
        self.history = history
        self.live_source = live_source  # what live history rows name as their source
        self.keep_audio = keep_audio
        self.threads = int(threads) if threads else inference_threads()
        self._loader = loader
        self._engine: WindowStream | None = None  # the live stream's, once a model is loaded
        self._adapt_to: tuple[str, str] | None = None  # (profiles folder, device) when adapting
        self._adapting: Adapting | None = None
        self._lock = threading.Lock()
        self._pending: tuple[np.ndarray, int, float] | None = None
        self._stopping = threading.Event()
        self.stale_dropped = 0
        self.windows_done = 0
        self.predictor = None
        self._smoothing = max(1, int(smoothing))
        self._wake.connect(self._pump)

    # -- any thread ----------------------------------------------------------------------
    def submit(self, wav: np.ndarray, end: int) -> None:
        """Offer the newest live window (N,) ending at stream sample ``end``; thread-safe."""
        with self._lock:
            if self._pending is not None:
                self.stale_dropped += 1
            self._pending = (wav, int(end), time.monotonic())
        self._wake.emit()

    def stop(self) -> None:
        """Make every further event a no-op (pending work is dropped); thread-safe."""
        self._stopping.set()

    # -- worker thread -------------------------------------------------------------------
    @pyqtSlot(str)
    def load_model(self, path: str) -> None:
        """Load a checkpoint ("" = the default model); emits modelLoaded or modelError."""
        use_threads(self.threads)
        try:
            predictor = self._loader(path or None)
        except Exception as exc:  # CheckpointError, FrontendUnavailable, OSError, ...
            log.warning("loading model %s failed: %s", path or "(default)", exc)
            log.debug("model loading traceback", exc_info=True)
            if not path and type(exc).__name__ == "ModelNotFoundError":
                self.modelError.emit("No default model is installed yet.")
            else:
                self.modelError.emit(f"Cannot load model {path}: {exc}")
            return
        self._close_segment()
        self.predictor = predictor
        # keep_audio applies when a segment is written to history
        self._engine = WindowStream(predictor, smoothing=self._smoothing)
        self._adapting = None  # until the saved profile of this model is applied
        self.modelLoaded.emit(model_info(predictor))

    @pyqtSlot(int)
    def set_smoothing(self, windows: int) -> None:
        """Average the shown probabilities over the last ``windows`` speech windows."""
        self._smoothing = max(1, int(windows))
        if self._engine is not None:
            self._engine.set_smoothing(self._smoothing)

    @pyqtSlot()
    def end_segment(self) -> None:
        """Listening stopped: close and store the open speech segment; the next window starts
        a new stream."""
        if self._engine is not None:
            self._store_closed(self._engine.end_stream())

    @pyqtSlot()
    def finish(self) -> None:
        """Last event of the thread: store the open segment, then end the thread's loop."""
        self._stopping.set()
        self._close_segment()
        self.thread().quit()

    # speaker profiles (app/calibration/profiles.py): folder of saved profiles, input device name
    @pyqtSlot(str, str)
    def apply_profile(self, folder: str, device: str) -> None:
        """Use the saved profile of ``device`` for this model, if any; profileChanged."""
        self._profile_op(apply_saved, folder, device, reset_on_error=True)

    @pyqtSlot(object, str, str)
    def make_profile(self, chunks, folder: str, device: str) -> None:
        """Build, save and use the profile of a recording ((N,) float32 chunks at 16 kHz);
        on failure the profile used before stays in use."""
        self._profile_op(calibrate, chunks, folder, device, reset_on_error=False)

    @pyqtSlot(str, str)
    def reset_profile(self, folder: str, device: str) -> None:
        """Delete the saved profile of ``device`` and use the training statistics again."""
        self._profile_op(forget, folder, device, reset_on_error=True)

    @pyqtSlot(bool, str, str)
    def set_adapting(self, on: bool, folder: str, device: str) -> None:
        """Keep (or stop) adapting the live profile of ``device`` to the voice heard."""
        self._adapt_to = (folder, device) if on else None
        self._restart_adaptation()

    def _restart_adaptation(self) -> None:
        """Adapt from the profile now saved for the adaptation's device (or none)."""
        self._adapting = None
        if self._adapt_to is not None and self.predictor is not None:
            self._adapting = Adapting(self.predictor, *self._adapt_to)

    def _adapt(self, feats, hop_samples: int) -> None:
        try:
            active = self._adapting.add_hop(self.predictor, feats, hop_samples / SAMPLE_RATE)
        except Exception as exc:  # OSError writing the profile, ...
            log.warning("adapting the speaker profile failed: %s", exc)
            self.profileError.emit(f"Adapting the speaker profile failed: {exc}")
            self._adapting = None
            return
        if active is not None:
            self.profileChanged.emit(active)

    def _profile_op(self, op, *args, reset_on_error: bool) -> None:
        if self._stopping.is_set():
            return
        if self.predictor is None:
            self.profileError.emit("No model is loaded, so there is nothing to calibrate.")
            return
        use_threads(self.threads)
        try:
            active = op(self.predictor, *args)
        except Exception as exc:  # ProfileError, OSError, a recording without speech, ...
            log.warning("speaker profile: %s", exc)
            self.profileError.emit(f"Speaker profile: {exc}")
            if reset_on_error:
                self.predictor.use_profile(None)
                self.profileChanged.emit(None)
            self._restart_adaptation()
            return
        self._restart_adaptation()
        self.profileChanged.emit(active)

    @pyqtSlot()
    def _pump(self) -> None:
        """Analyse the newest live window, if one is waiting."""
        if self._stopping.is_set():
            return
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            use_threads(self.threads)
            self._live(*pending)

    def _live(self, wav: np.ndarray, end: int, queued_at: float) -> None:
        if self.predictor is None:
            self._emit_live(wav, end, queued_at, None, latency=0.0)
            return
        started = time.perf_counter()
        try:
            step = self._engine.analyse(wav, end)
        except Exception as exc:
            log.exception("live inference failed")
            self.modelError.emit(f"live inference failed: {exc}")
            return
        latency = time.perf_counter() - started
        if step.hop_speech and self._adapting is not None:
            self._adapt(step.features, step.fresh.size)
        self.windows_done += 1
        self._store_closed(step.segment)
        self._emit_live(wav, end, queued_at, step, latency=latency)

    def _emit_live(self, wav, end, queued_at, step: WindowStep | None, *,
                   latency: float) -> None:
        labels = list(self.predictor.labels) if self.predictor is not None else []
        self.result.emit(LiveResult(
            labels=labels, prediction=step.prediction if step is not None else None,
            probs=step.probs if step is not None else np.zeros(len(labels)),
            label=step.label if step is not None else None, wav=wav, end=end,
            latency_s=latency, age_s=time.monotonic() - queued_at,
            stale_dropped=self.stale_dropped,
            attention_centre_s=float(getattr(self.predictor, "attention_centre_s", 0.0))))

    def _close_segment(self) -> None:
        if self._engine is not None:
            self._store_closed(self._engine.close_segment())

    def _store_closed(self, seg: FinishedSegment | None) -> None:
        """Write a segment the engine closed to history and announce it (None: nothing)."""
        if seg is None:
            return
        self._store(source=self.live_source, label=seg.label,
                    probs=np.array([seg.probs[k] for k in self.predictor.labels]),
                    duration_s=seg.duration_s, audio=seg.audio)
        self.segmentClosed.emit(seg)

    def _store(self, *, source, label, probs, duration_s, audio) -> None:
        if self.history is None:
            return
        try:
            row = self.history.add(
                source=source, label=label, duration_s=duration_s, model=str(self.predictor.name),
                probs={k: float(p) for k, p in zip(self.predictor.labels, probs)},
                audio=audio if self.keep_audio else None)
        except Exception as exc:
            log.exception("writing history failed")
            self.historyError.emit(f"cannot write history to {self.history.path}: {exc}")
            return
        self.historyAdded.emit(row)
