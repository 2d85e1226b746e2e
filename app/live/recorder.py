"""The recorder thread: an input stream feeding a ring buffer, and a window every hop.

Data path: the stream's callback (PortAudio's thread) only copies each block into a raw ring
buffer at the device's rate and counts overflows. This QThread's loop wakes every POLL_S,
moves the new samples through soxr (when the device does not run at 16 kHz) into the 16 kHz
window ring buffer, emits the input level, and every hop emits the newest window. The stream
comes from an injectable factory, so tests replay a real file through this same path.

A device that cannot be opened or stops (unplugged: PortAudio ends the stream) gives one
``error`` signal with a clear message and the thread ends; the application keeps running. A
stream that stays open but delivers nothing for STALL_S only reports ``stalled(True)`` (and
``stalled(False)`` when samples flow again): PulseAudio monitors of idle sinks and some
Bluetooth inputs pause like that and resume on their own.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import numpy as np
import soxr
from PyQt5.QtCore import QThread, pyqtSignal

from ser_studio.app.live.devices import DeviceError, open_input_stream
from ser_studio.model.audio.ringbuffer import RingBuffer
from ser_studio.model.constants import LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS, SAMPLE_RATE

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often the loop moves samples on (seconds)
LEVEL_S = 0.05  # level meter: RMS over the newest 50 ms
STALL_S = 2.0  # no samples for this long while the stream claims to run -> stalled(True)
RAW_SECONDS = 10.0  # raw ring capacity: the loop may stall this long before samples are lost
MAX_WINDOW_SECONDS = 10.0

StreamFactory = Callable[[Any, Callable[..., Any]], Any]


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of (N,) samples in dB relative to full scale, floored at -100 dB."""
    if samples.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(-100.0, 20.0 * np.log10(rms + 1e-10))


class Recorder(QThread):
    """Captures ``device`` (PortAudio index or None for the default) until ``request_stop``.

    Signals:
      window(np.ndarray (N,) float32 at 16 kHz, int end): the newest window (N <= window_s *
        16000; shorter only while the buffer fills); ``end`` is the absolute 16 kHz sample
        index just after its last sample, counted from the start of recording.
      level(float): input level in dBFS, about every 50 ms.
      stats(int overflows, int lost_blocks): device overflows and ring buffer overruns so far.
      opened(str description): the stream runs (device name and rate).
      stalled(bool): no samples for STALL_S (True) / samples flow again (False).
      error(str): the device failed; the thread has ended.
    """

    window = pyqtSignal(object, int)
    level = pyqtSignal(float)
    stats = pyqtSignal(int, int)
    opened = pyqtSignal(str)
    stalled = pyqtSignal(bool)
    error = pyqtSignal(str)

    def __init__(self, device: int | None = None, *, device_label: str | None = None,
                 window_s: float = LIVE_BUFFER_SECONDS, hop_s: float = LIVE_HOP_SECONDS,
                 stream_factory: StreamFactory | None = None, parent=None):
        super().__init__(parent)
        if not 0 < hop_s <= window_s <= MAX_WINDOW_SECONDS:
            raise ValueError(f"need 0 < hop ({hop_s} s) <= window ({window_s} s) "
                             f"<= {MAX_WINDOW_SECONDS} s")
        self.device = device
        self.device_label = device_label or ("default input" if device is None else str(device))
        self.window_samples = int(round(window_s * SAMPLE_RATE))
        self.hop_samples = int(round(hop_s * SAMPLE_RATE))
        self._factory = stream_factory or (lambda dev, cb: open_input_stream(dev, cb))
        self._stop = threading.Event()
        self._raw: RingBuffer | None = None
        self.ring = RingBuffer(int(MAX_WINDOW_SECONDS * SAMPLE_RATE))
        self.device_overflows = 0
        self.windows_emitted = 0

    def request_stop(self) -> None:
        """Ask the loop to end (returns at once; ``finished`` follows within ~POLL_S)."""
        self._stop.set()

    # -- PortAudio's thread ------------------------------------------------------------
    def _callback(self, indata, frames, time_info, status) -> None:
        """Copy one (frames, 1) block into the raw ring; count overflows. Nothing else."""
        if status and status.input_overflow:
            self.device_overflows += 1
        self._raw.write(indata[:, 0])

    # -- this thread -------------------------------------------------------------------
    def run(self) -> None:
        try:
            stream = self._factory(self.device, self._callback)
        except DeviceError as exc:
            self._fail(f"{exc}. Pick another input device and press Start.")
            return
        except Exception as exc:  # PortAudio and host APIs raise many kinds
            self._fail(f"cannot open input device {self.device_label!r}: {exc}. "
                       "Pick another input device and press Start.")
            return
        try:
            self._record(stream)
        finally:
            self._close(stream)

    def _record(self, stream) -> None:
        rate = int(stream.samplerate)
        self._raw = RingBuffer(int(RAW_SECONDS * rate))
        resampler = None
        if rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
        try:
            stream.start()
        except Exception as exc:
            self._fail(f"cannot start input device {self.device_label!r}: {exc}. "
                       "Pick another input device and press Start.")
            return
        log.info("recording from %s at %d Hz", self.device_label, rate)
        self.opened.emit(f"{self.device_label} · {rate / 1000:g} kHz")
        self._loop(stream, resampler)

    def _loop(self, stream, resampler) -> None:
        """Move samples on, emit level, windows and stats until stopped or failed."""
        last_data = last_level = time.monotonic()
        last_emit = 0
        last_stats = (0, 0)
        stalled = False
        while not self._stop.wait(POLL_S):
            new = self._raw.read_new()
            now = time.monotonic()
            if new.size:
                last_data = now
                self.ring.write(resampler.resample_chunk(new) if resampler else new)
            if stalled != (now - last_data > STALL_S):
                stalled = not stalled
                log.info("input %s %s", self.device_label, "stalled" if stalled else "resumed")
                self.stalled.emit(stalled)
            if now - last_level >= LEVEL_S and self.ring.available:
                last_level = now
                self.level.emit(level_dbfs(self.ring.newest(int(LEVEL_S * SAMPLE_RATE))))
            if self.ring.total_written - last_emit >= self.hop_samples:
                last_emit = self.ring.total_written
                self.windows_emitted += 1
                self.window.emit(self.ring.newest(self.window_samples), last_emit)
            stats = (self.device_overflows, self._raw.overflows)
            if stats != last_stats:
                last_stats = stats
                self.stats.emit(*stats)
            if self._stop.is_set():
                break
            if not getattr(stream, "active", True):
                self._fail(f"input device {self.device_label!r} stopped delivering audio "
                           "(unplugged or taken by another program?). Pick another device.")
                return

    def _close(self, stream) -> None:
        for method in ("abort", "close"):
            try:
                getattr(stream, method)()
            except Exception as exc:  # a vanished device may refuse even this
                log.debug("closing %s: %s failed: %s", self.device_label, method, exc)

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        self.error.emit(message)
