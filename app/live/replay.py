"""An audio file played as if it were a microphone (``main.py --replay FILE``, tests, bench).

``ReplayStream`` has the parts of sounddevice.InputStream the recorder uses (``samplerate``,
``active``, ``start``, ``abort``, ``close``) and calls the recorder's callback from its own
thread with (frames, 1) float32 blocks at the file's rate, in real time (or ``speed`` times
faster), exactly as PortAudio would. The file is read when the stream is made, which happens
in the recorder's thread.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf

from ser_studio.app.live.devices import DeviceError


class ReplayStream:
    """Replays ``path`` through ``callback(indata, frames, time_info, status)``.

    block: frames per callback; speed: 1.0 = real time; loop: start again at the end
    (otherwise the stream stays open and silent, as a quiet microphone).
    """

    def __init__(self, path, callback: Callable[..., Any], *, block: int = 800,
                 speed: float = 1.0, loop: bool = False):
        try:
            data, self.samplerate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise DeviceError(f"cannot replay {path}: {exc}") from exc
        if data.shape[0] == 0:
            raise DeviceError(f"cannot replay {path}: no audio samples")
        self.path = Path(path)
        self.data = np.ascontiguousarray(data.mean(axis=1, keepdims=True, dtype=np.float32))
        self.callback, self.block, self.speed, self.loop = callback, block, speed, loop
        self.active = False
        self.blocks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def _run(self) -> None:
        pos, period = 0, self.block / self.samplerate / self.speed
        next_time = time.monotonic()
        while not self._stop.is_set():
            if pos >= len(self.data):
                if not self.loop:
                    self._stop.wait(0.05)
                    continue
                pos = 0
            chunk = self.data[pos:pos + self.block]
            pos += len(chunk)
            self.blocks += 1
            self.callback(chunk, len(chunk), None, self.status())
            if not self.after_block():
                return
            next_time += period
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def status(self):
        """The status flags passed with the next block (None: no overflow)."""
        return None

    def after_block(self) -> bool:
        """Called after each block; False ends the stream (subclasses simulate failures)."""
        return True

    def abort(self) -> None:
        self._stop.set()
        self.active = False
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1.0)

    def close(self) -> None:
        self.abort()


def replay_factory(path, **options) -> Callable[[Any, Callable[..., Any]], ReplayStream]:
    """A Recorder stream_factory that replays ``path`` (options as ReplayStream's); the
    device argument is ignored."""

    def factory(device, callback):
        return ReplayStream(path, callback, **options)

    factory.path = Path(path)
    return factory
