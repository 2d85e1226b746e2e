"""A preallocated single-producer single-consumer ring buffer of audio samples (plain numpy).

No Qt here. The audio callback writes blocks; one reader takes the samples it has not seen yet
(``read_new``) and anyone may copy the newest ``n`` samples (``newest``) or an absolute range
of them (``between``). It holds any per-sample or per-frame series: the live path keeps silero's
32 ms speech probabilities in one (model.audio.speech_track). When the writer laps
the reader, the unread samples that were overwritten are counted (``lost_samples``,
``overflows``), never hidden. A short lock makes the copies atomic; it is held only for a
``memcpy`` of one block.
"""
from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """``capacity`` samples of one channel, float32 by default, allocated once."""

    def __init__(self, capacity: int, dtype: type = np.float32):
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=dtype)
        self._lock = threading.Lock()
        self.total_written = 0  # samples ever written
        self._read_pos = 0  # absolute index of the next sample read_new returns
        self.overflows = 0  # writes that overwrote samples the reader had not read
        self.lost_samples = 0  # how many unread samples were overwritten in all

    @property
    def available(self) -> int:
        """Samples currently held (at most ``capacity``)."""
        return min(self.total_written, self.capacity)

    @property
    def unread(self) -> int:
        """Samples written since the last ``read_new`` that are still held."""
        return min(self.total_written - self._read_pos, self.capacity)

    def write(self, block: np.ndarray) -> int:
        """Append a (N,) block; returns how many unread samples it overwrote (0 normally).

        A block longer than the buffer keeps only its newest ``capacity`` samples.
        """
        block = np.asarray(block).reshape(-1)
        n = block.shape[0]
        if n == 0:
            return 0
        with self._lock:
            if n > self.capacity:
                block = block[-self.capacity:]
            m = block.shape[0]
            start = (self.total_written + n - m) % self.capacity
            first = min(m, self.capacity - start)
            self._data[start:start + first] = block[:first]
            if first < m:
                self._data[:m - first] = block[first:]
            self.total_written += n
            lost = self.total_written - self.capacity - self._read_pos
            if lost > 0:
                self.overflows += 1
                self.lost_samples += lost
                self._read_pos += lost
                return lost
            return 0

    def newest(self, n: int) -> np.ndarray:
        """A copy of the newest ``min(n, available)`` samples, oldest first: (n',)."""
        with self._lock:
            n = min(int(n), self.available)
            return self._copy_range(self.total_written - n, self.total_written)

    def between(self, start: int, end: int) -> tuple[int, np.ndarray]:
        """The held part of absolute sample range [start, end) (indices count every sample
        ever written): (index of its first sample, a copy (n,) oldest first); n is 0 when
        nothing of the range is held."""
        with self._lock:
            first = max(int(start), self.total_written - self.available)
            last = min(int(end), self.total_written)
            return first, self._copy_range(first, max(first, last))

    def read_new(self) -> np.ndarray:
        """A copy of every sample written since the previous call (oldest first), marking
        them read: (unread,). Samples overwritten before this call are already counted lost."""
        with self._lock:
            start = max(self._read_pos, self.total_written - self.capacity)
            out = self._copy_range(start, self.total_written)
            self._read_pos = self.total_written
            return out

    def clear(self) -> None:
        """Forget the contents and counters (the memory stays allocated)."""
        with self._lock:
            self._data[:] = 0
            self.total_written = self._read_pos = 0
            self.overflows = self.lost_samples = 0

    def _copy_range(self, start: int, end: int) -> np.ndarray:
        """Copy absolute sample range [start, end) (must lie within the held samples)."""
        n = end - start
        out = np.empty(n, dtype=self._data.dtype)
        if n == 0:
            return out
        i = start % self.capacity
        first = min(n, self.capacity - i)
        out[:first] = self._data[i:i + first]
        if first < n:
            out[first:] = self._data[:n - first]
        return out
