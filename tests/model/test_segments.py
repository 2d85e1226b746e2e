"""Live speech segments: a run of speech hops becomes one history entry."""
from __future__ import annotations

import numpy as np
import pytest

from ser_studio.model.inference.segments import SegmentTracker
from ser_studio.model.constants import SAMPLE_RATE

LABELS = ["angry", "happy", "neutral", "sad"]
HOP = SAMPLE_RATE // 2


def _hop(value: float) -> np.ndarray:
    return np.full(HOP, value, dtype=np.float32)


def test_consecutive_speech_hops_make_one_segment():
    tracker = SegmentTracker(LABELS, end_silence_hops=2)
    probs = [np.array([0.1, 0.6, 0.2, 0.1]), np.array([0.5, 0.3, 0.1, 0.1]),
             np.array([0.1, 0.5, 0.3, 0.1])]
    for k, p in enumerate(probs):
        assert tracker.add(_hop(k + 1), True, p) is None
    assert tracker.active
    assert tracker.add(_hop(0), False, None) is None  # one silent hop: still open
    seg = tracker.add(_hop(0), False, None)
    assert seg is not None and not tracker.active
    assert seg.label == "happy"  # argmax of the mean, not of the last window
    assert seg.probs["happy"] == pytest.approx((0.6 + 0.3 + 0.5) / 3)
    assert seg.windows == 3
    assert seg.duration_s == pytest.approx(3 * HOP / SAMPLE_RATE)
    # The clip is the speech hops in order; trailing silence is cut.
    np.testing.assert_array_equal(seg.audio, np.concatenate([_hop(1), _hop(2), _hop(3)]))


def test_a_short_pause_does_not_split_a_segment():
    tracker = SegmentTracker(LABELS, end_silence_hops=2)
    p = np.array([0.7, 0.1, 0.1, 0.1])
    tracker.add(_hop(1), True, p)
    assert tracker.add(_hop(0), False, None) is None
    tracker.add(_hop(2), True, p)
    seg = tracker.flush()
    assert seg.windows == 2 and seg.duration_s == pytest.approx(3 * HOP / SAMPLE_RATE)
    assert seg.audio.size == 3 * HOP  # the pause inside is kept


def test_silence_alone_makes_nothing_and_flush_is_idempotent():
    tracker = SegmentTracker(LABELS)
    for _ in range(5):
        assert tracker.add(_hop(0), False, None) is None
    assert tracker.flush() is None
    tracker.add(_hop(1), True, np.array([0.1, 0.1, 0.1, 0.7]))
    assert tracker.flush().label == "sad"
    assert tracker.flush() is None


def test_audio_is_capped_and_can_be_off():
    capped = SegmentTracker(LABELS, max_audio_s=1.0)
    off = SegmentTracker(LABELS, keep_audio=False)
    p = np.array([0.25, 0.25, 0.4, 0.1])
    for _ in range(6):
        capped.add(_hop(0.5), True, p)
        off.add(_hop(0.5), True, p)
    seg = capped.flush()
    assert seg.audio.size == SAMPLE_RATE and seg.duration_s == pytest.approx(3.0)
    assert off.flush().audio is None
