"""The live ring buffer: wraparound, newest window, partial fill, overflow counting."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from ser_studio.model.audio.ringbuffer import RingBuffer


def test_partial_fill_returns_only_what_was_written():
    ring = RingBuffer(10)
    ring.write(np.arange(4, dtype=np.float32))
    assert ring.available == 4
    np.testing.assert_array_equal(ring.newest(8), [0, 1, 2, 3])
    np.testing.assert_array_equal(ring.newest(2), [2, 3])
    assert ring.newest(0).shape == (0,)


def test_wraparound_keeps_the_newest_samples_in_order():
    ring = RingBuffer(10)
    stream = np.arange(37, dtype=np.float32)
    for start in range(0, 37, 3):  # blocks of 3 do not divide the capacity
        ring.write(stream[start:start + 3])
        ring.read_new()
    assert ring.total_written == 37 and ring.available == 10
    np.testing.assert_array_equal(ring.newest(10), stream[-10:])
    np.testing.assert_array_equal(ring.newest(4), stream[-4:])


def test_block_longer_than_capacity_keeps_its_tail_and_counts_the_loss():
    ring = RingBuffer(8)
    lost = ring.write(np.arange(20, dtype=np.float32))
    assert lost == 12 and ring.lost_samples == 12 and ring.overflows == 1
    np.testing.assert_array_equal(ring.newest(8), np.arange(12, 20))
    np.testing.assert_array_equal(ring.read_new(), np.arange(12, 20))


def test_read_new_returns_each_sample_once():
    ring = RingBuffer(16)
    ring.write(np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(ring.read_new(), np.arange(5))
    assert ring.read_new().size == 0
    ring.write(np.arange(5, 9, dtype=np.float32))
    np.testing.assert_array_equal(ring.read_new(), np.arange(5, 9))
    assert ring.overflows == 0 and ring.lost_samples == 0


def test_overflow_counts_unread_samples_that_were_overwritten():
    ring = RingBuffer(10)
    ring.write(np.arange(6, dtype=np.float32))
    assert ring.write(np.arange(6, 12, dtype=np.float32)) == 2  # 0 and 1 were never read
    assert ring.overflows == 1 and ring.lost_samples == 2
    np.testing.assert_array_equal(ring.read_new(), np.arange(2, 12))
    ring.write(np.arange(12, 20, dtype=np.float32))  # reader caught up: nothing lost
    assert ring.overflows == 1 and ring.unread == 8


def test_clear_and_invalid_capacity():
    ring = RingBuffer(4)
    ring.write(np.ones(6, dtype=np.float32))
    ring.clear()
    assert ring.available == 0 and ring.overflows == 0 and ring.newest(4).size == 0
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)


def test_concurrent_writer_and_reader_see_a_continuous_stream():
    total = 200_000
    got = []

    def writer():
        for start in range(0, total, 512):
            ring.write(np.arange(start, min(start + 512, total), dtype=np.float64))

    ring = RingBuffer(1 << 20, dtype=np.float64)
    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive() or ring.unread:
        got.append(ring.read_new())
    thread.join()
    got = np.concatenate(got)
    np.testing.assert_array_equal(got, np.arange(total))
    assert ring.overflows == 0


def test_between_copies_an_absolute_range_clipped_to_what_is_held():
    ring = RingBuffer(10)
    for start in range(0, 25, 4):  # 0..27 written, 18..27 held, across the wrap
        ring.write(np.arange(start, start + 4, dtype=np.float32))
    first, values = ring.between(15, 23)
    assert first == 18
    np.testing.assert_array_equal(values, [18, 19, 20, 21, 22])
    first, values = ring.between(20, 40)
    assert first == 20
    np.testing.assert_array_equal(values, np.arange(20, 28))
    assert ring.between(0, 10)[1].size == 0 and ring.between(30, 40)[1].size == 0
    assert ring.unread == 10  # between does not read
