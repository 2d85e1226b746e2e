"""The inference worker: a QObject living in its own QThread; the GUI thread never runs a model.

Live windows arrive through ``submit`` (thread-safe, called from the recorder's thread): only
the newest waiting window is kept and the replaced ones are counted as stale. Files are not
analysed here but in app/files/file_worker.py's own thread, so a long file never holds live windows
back. Every result goes out as a signal; every failure becomes an error signal, never an
exception on another thread. History rows (one per live speech segment) are written here, off
the GUI thread.

What is shown and what is stored: a LiveResult's ``probs`` (the headline and bars) are the mean
of the last ``smoothing`` speech windows of the current segment (smoothing 1 = the newest
window alone); the history row of a segment (app/live/segments.py) is the mean of *all* its speech
windows' raw probabilities. When a segment closes, ``segmentClosed`` carries exactly what was
stored, and the live view shows it under "Last segment".

Live speech detection runs once per sample (app/live/live_vad.py): each window's new samples go
through silero-vad in streaming form, and the window's speech verdict and the hop's speech
share are read from the stored frame probabilities; the Predictor then runs without its own VAD
(``window_features`` then ``prediction_of``) and only on windows that hold speech.

Live features are shared between hops the same way (model.features.live): the worker holds one
feature cache per stream (``Predictor.live_stream``), which computes each frame once and hands
a window its frames with the work of earlier hops reused. It starts afresh when listening stops
or restarts (``end_segment``: a new device or new settings), when another model is loaded, and
by itself when a window does not follow the previous one. A model whose frontend has no
streaming form (log-mel, HuBERT) computes each window whole.

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

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal, pyqtSlot

from ser_studio.app.calibration.profiles import Adapting, apply_saved, calibrate, forget
from ser_studio.app.history.history_store import MICROPHONE
from ser_studio.app.live.live_vad import LiveVad
from ser_studio.app.live.segments import SegmentTracker
from ser_studio.app.shell.model_info import model_info
from ser_studio.app.shell.torch_threads import inference_threads, load_predictor, use_threads
from ser_studio.model.audio.vad import is_speech
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

MIN_HOP_SPEECH = 0.2  # a hop "has speech" when VAD marks at least this fraction of it


@dataclass(frozen=True)
class LiveResult:
    """One analysed live window.

    wav: (N,) float32 16 kHz, the window itself; end: its end sample index in the stream.
    probs: (n_classes,) smoothed over recent speech windows; raw_probs: this window's only.
    attention: (T',) frame weights at attention_rate frames/s, starting attention_offset_s
        into the window; frame j is computed from audio centred attention_centre_s + j /
        attention_rate after that (model.inference.predictor.attention_centre_s).
    latency_s: model time for this window (VAD included); age_s: capture to result.
    """

    labels: list[str]
    label: str | None
    probs: np.ndarray
    raw_probs: np.ndarray
    speech: bool
    speech_ratio: float
    attention: np.ndarray
    attention_rate: float
    wav: np.ndarray
    end: int
    latency_s: float
    age_s: float
    stale_dropped: int
    model_loaded: bool = True
    attention_offset_s: float = 0.0
    level: object = None  # model.audio.loudness.Level of the window (None without a model)
    attention_centre_s: float = 0.0

    @property
    def confidence(self) -> float:
        """Probability of the shown label (0 when no speech)."""
        if self.label is None:
            return 0.0
        return float(self.probs[self.labels.index(self.label)])


def _default_loader(path: str | None):
    return load_predictor(path)


def _no_speech(predictor, wav: np.ndarray, ratio: float, started: float):
    """The Prediction of a live window without speech (as Predictor.predict gives it)."""
    from ser_studio.model.inference.prediction import Prediction

    return Prediction(label=None, probs=np.zeros(len(predictor.labels), dtype=np.float32),
                      attention=np.zeros(0, dtype=np.float32),
                      attention_rate=predictor.attention_rate, speech=False,
                      speech_ratio=ratio, latency_s=time.perf_counter() - started,
                      level=predictor.level(wav) if wav.size else None)


class InferenceWorker(QObject):
    """Runs the Predictor on live windows (lives in its own thread)."""

    result = pyqtSignal(object)  # LiveResult
    segmentClosed = pyqtSignal(object)  # app.live.segments.FinishedSegment, as stored in history
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
        self._vad = LiveVad()
        self._features = None  # the live stream's feature cache (model.features.live)
        self._adapt_to: tuple[str, str] | None = None  # (profiles folder, device) when adapting
        self._adapting: Adapting | None = None
        self._lock = threading.Lock()
        self._pending: tuple[np.ndarray, int, float] | None = None
        self._stopping = threading.Event()
        self.stale_dropped = 0
        self.windows_done = 0
        self.predictor = None
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, smoothing))
        self._segments: SegmentTracker | None = None
        self._last_end: int | None = None
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
        self._features = predictor.live_stream()
        self._recent.clear()
        self._segments = SegmentTracker(list(predictor.labels))  # keep_audio applies at writing
        self._adapting = None  # until the saved profile of this model is applied
        self.modelLoaded.emit(model_info(predictor))

    @pyqtSlot(int)
    def set_smoothing(self, windows: int) -> None:
        """Average the shown probabilities over the last ``windows`` speech windows."""
        self._recent = collections.deque(self._recent, maxlen=max(1, int(windows)))

    @pyqtSlot()
    def end_segment(self) -> None:
        """Listening stopped: close and store the open speech segment."""
        self._close_segment()
        self._last_end = None
        self._vad.reset()
        if self._features is not None:
            self._features.reset()

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
            fresh = self._fresh(wav, end)
            self._vad.feed(fresh, end)
            pred, feats = self._predict_live(wav, end, started)
            hop_speech = bool(pred.speech) and fresh.size > 0 and \
                self._vad.ratio(end - fresh.size, end) >= MIN_HOP_SPEECH
        except Exception as exc:
            log.exception("live inference failed")
            self.modelError.emit(f"live inference failed: {exc}")
            return
        latency = time.perf_counter() - started
        if hop_speech and self._adapting is not None:
            self._adapt(feats, fresh.size)
        self.windows_done += 1
        finished = self._segments.add(fresh, hop_speech, pred.probs if pred.speech else None)
        if finished is not None:  # smoothing starts afresh with each segment
            self._recent.clear()
            self._store_segment(finished)
        if pred.speech:
            self._recent.append(np.asarray(pred.probs, dtype=np.float64))
        self._emit_live(wav, end, queued_at, pred, latency=latency)

    def _predict_live(self, wav: np.ndarray, end: int, started: float):
        """(Prediction, its features (T, D) or None) of a live window, gated by the
        streaming VAD's ratio of it."""
        ratio = self._vad.ratio(end - wav.shape[0], end)
        if not is_speech(ratio, wav.shape[0]):
            if not np.isfinite(wav).all():
                raise ValueError("waveform contains NaN or infinite samples")
            return _no_speech(self.predictor, wav, ratio, started), None
        feats, level, offset = self.predictor.window_features(wav, live=self._features, end=end)
        return self.predictor.prediction_of(feats, level, offset, ratio, started), feats

    def _fresh(self, wav: np.ndarray, end: int) -> np.ndarray:
        """The samples of this window that no earlier analysed window held."""
        new = wav.shape[0] if self._last_end is None or end <= self._last_end \
            else min(end - self._last_end, wav.shape[0])
        self._last_end = end
        return wav[wav.shape[0] - new:]

    def _emit_live(self, wav, end, queued_at, pred, *, latency: float) -> None:
        labels = list(self.predictor.labels) if self.predictor is not None else []
        zeros = np.zeros(len(labels))
        if pred is not None and pred.speech and self._recent:
            probs = np.mean(np.stack(list(self._recent)), axis=0)
            label = labels[int(np.argmax(probs))]
        else:
            probs, label = zeros, None
        self.result.emit(LiveResult(
            labels=labels, label=label, probs=probs,
            raw_probs=np.asarray(pred.probs) if pred is not None else zeros,
            speech=bool(pred.speech) if pred is not None else False,
            speech_ratio=float(pred.speech_ratio) if pred is not None else 0.0,
            attention=np.asarray(pred.attention) if pred is not None else np.zeros(0),
            attention_rate=float(pred.attention_rate) if pred is not None else 0.0,
            wav=wav, end=end, latency_s=latency, age_s=time.monotonic() - queued_at,
            stale_dropped=self.stale_dropped, model_loaded=pred is not None,
            attention_offset_s=float(getattr(pred, "attention_offset_s", 0.0) or 0.0),
            level=getattr(pred, "level", None),
            attention_centre_s=float(getattr(self.predictor, "attention_centre_s", 0.0))))

    def _close_segment(self) -> None:
        if self._segments is not None:
            finished = self._segments.flush()
            if finished is not None:
                self._store_segment(finished)
        self._recent.clear()

    def _store_segment(self, seg) -> None:
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
