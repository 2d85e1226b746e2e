"""Block decoding and window slicing: the samples of load_audio, a little at a time."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.audio.io import (AudioError, frame_windows, iter_audio, load_audio,
                                       slice_windows, window_spans)
from ser_studio.model.constants import SAMPLE_RATE


def _signal(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


@pytest.mark.parametrize("rate, channels, subtype, name", [
    (16000, 1, "PCM_16", "a.wav"), (44100, 2, "FLOAT", "b.wav"), (22050, 1, "PCM_16", "c.flac"),
    (48000, 2, "VORBIS", "d.ogg")])
def test_blocks_concatenate_to_load_audio(tmp_path, rate, channels, subtype, name):
    path = tmp_path / name
    sf.write(path, _signal(rate, 23.3, channels), rate, subtype=subtype)
    blocks = list(iter_audio(path, block_seconds=2.0))
    assert len(blocks) >= 11 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert max(b.size for b in blocks) <= 2 * SAMPLE_RATE + 512
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))


def test_bad_block_size_and_zero_length(tmp_path):
    path = tmp_path / "header only.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="zero length") as info:
        list(iter_audio(path))
    assert "header only.wav" in str(info.value)
    with pytest.raises(ValueError):
        list(iter_audio(path, block_seconds=0))


def test_window_spans_cover_a_length_as_frame_windows_does():
    assert window_spans(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(11, 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]  # end-aligned tail
    assert window_spans(3, 4, 3) == [(0, 3)]
    spans = window_spans(50001, 48000, 16000)
    assert spans == [(0, 48000), (2001, 50001)]
    assert window_spans(50001, 48000, 16000) == frame_windows(np.zeros(50001), 48000, 16000)
    with pytest.raises(ValueError):
        window_spans(10, 4, 0)


@pytest.mark.parametrize("block", [1, 7, 1000, 100000])
def test_slice_windows_cuts_what_frame_windows_spans(block):
    wav = np.arange(20011, dtype=np.float32)
    spans = frame_windows(wav, 3000, 1000)
    pieces = (wav[i:i + block] for i in range(0, wav.size, block))
    out = list(slice_windows(pieces, spans))
    assert [(s, e) for s, e, _ in out] == spans
    for s, e, samples in out:
        np.testing.assert_array_equal(samples, wav[s:e])


def test_slice_windows_with_gaps_and_a_short_stream():
    wav = np.arange(100, dtype=np.float32)
    spans = [(0, 10), (40, 50), (90, 100)]                  # hop longer than the window
    out = list(slice_windows((wav[i:i + 13] for i in range(0, 100, 13)), spans))
    assert [list(w[[0, -1]]) for _, _, w in out] == [[0, 9], [40, 49], [90, 99]]
    with pytest.raises(ValueError, match="ends at sample 95"):
        list(slice_windows(iter([wav[:95]]), spans))
