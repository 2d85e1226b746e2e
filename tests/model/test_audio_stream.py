"""Block decoding and window slicing: the samples of load_audio, a little at a time."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.audio.io import (AudioError, frame_windows, iter_audio, load_audio,
                                       stream_windows, window_spans)
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
def test_stream_windows_cuts_what_window_spans_lists(block):
    wav = np.arange(20011, dtype=np.float32)
    pieces = (wav[i:i + block] for i in range(0, wav.size, block))
    out = list(stream_windows(pieces, 3000, 1000))
    assert [(s, e) for s, e, _ in out] == window_spans(wav.size, 3000, 1000)
    for s, e, samples in out:
        np.testing.assert_array_equal(samples, wav[s:e])


def test_stream_windows_matches_window_spans_for_any_length_and_blocks():
    """Lengths around the window, hops longer than the window, uneven blocks, empty ones."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        n, window, hop = int(rng.integers(0, 300)), int(rng.integers(1, 50)), \
            int(rng.integers(1, 60))
        signal = rng.standard_normal(n).astype(np.float32)
        blocks = np.split(signal, np.sort(rng.integers(0, max(n, 1), rng.integers(0, 7))))
        out = list(stream_windows(iter(blocks), window, hop))
        assert [(s, e) for s, e, _ in out] == window_spans(n, window, hop), (n, window, hop)
        assert all(np.array_equal(x, signal[s:e]) for s, e, x in out)


def test_stream_windows_holds_about_one_window_and_one_block():
    """It yields each window before reading a block past its end, and keeps only what a later
    window (the end-aligned tail included) can still need."""
    window, hop, block = 3000, 1000, 700
    read = [0]

    def blocks():
        for i in range(0, 100_000, block):
            read[0] = min(i + block, 100_000)
            yield np.zeros(block, np.float32)

    for start, end, samples in stream_windows(blocks(), window, hop):
        assert read[0] - end < block + 1 and samples.size == end - start
