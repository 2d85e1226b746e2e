"""Streaming speech detection: silero run once per sample gives the verdicts that re-running it
over every whole 5 s window gave, on speech and on noise."""
from __future__ import annotations

import numpy as np
import pytest

from ser_studio.model.audio.speech_track import SpeechTrack
from ser_studio.model.audio.io import load_audio
from ser_studio.model.audio.vad import CHUNK_SAMPLES, is_speech, speech_ratio, speech_spans
from ser_studio.model.constants import LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES, SAMPLE_RATE

MIN_HOP_SPEECH = 0.2  # app.live.inference_worker's hop rule (not imported: that module needs Qt)


def _noise(kind: str, seconds: float, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * SAMPLE_RATE))
    if kind == "pink":
        white = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, white.size // 2 + 2)),
                             white.size)
    elif kind == "brown":
        white = np.cumsum(white) - np.cumsum(white).mean()
    return (level * white / np.abs(white).max()).astype(np.float32)


@pytest.fixture(scope="module")
def speech_stream(speech_path) -> np.ndarray:
    """Silence, espeak-ng speech, a pause, the speech again at -14 dB, silence; light noise."""
    speech = load_audio(speech_path)
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    stream = np.concatenate([gap[:SAMPLE_RATE], speech, gap, 0.2 * speech, gap, gap])
    return stream + _noise("white", stream.size / SAMPLE_RATE, 0.003, 7)


def _compare(stream: np.ndarray, hop: int = LIVE_HOP_SAMPLES, window: int = LIVE_BUFFER_SAMPLES):
    """Per hop: (streaming ratio, whole-window ratio, window length, hop flags new and old)."""
    vad, rows = SpeechTrack(), []
    for end in range(hop, stream.size + 1, hop):
        vad.feed(stream[end - hop:end], end)
        wav = stream[max(0, end - window):end]
        rows.append((vad.ratio(end - wav.size, end), speech_ratio(wav), wav.size,
                     vad.ratio(end - hop, end) >= MIN_HOP_SPEECH,
                     speech_ratio(stream[end - hop:end]) >= MIN_HOP_SPEECH))
    return rows


def test_speech_windows_match_the_whole_window_detector(speech_stream):
    rows = _compare(speech_stream)
    new, old, sizes, hop_new, hop_old = (np.array(c) for c in zip(*rows))
    assert np.abs(new - old).max() <= 0.1
    verdicts = [(is_speech(a, n), is_speech(b, n)) for a, b, n in zip(new, old, sizes)]
    assert all(a == b for a, b in verdicts)
    assert any(a for a, _ in verdicts) and not all(a for a, _ in verdicts)
    assert np.mean(hop_new == hop_old) >= 0.9 and hop_new.any()


@pytest.mark.parametrize("kind,level", [("white", 0.3), ("pink", 1.0), ("brown", 0.01)])
def test_noise_stays_no_speech(kind, level):
    rows = _compare(_noise(kind, 8.0, level, 1))
    assert all(r[0] < 0.05 and not is_speech(r[0], r[2]) and not r[3] for r in rows)
    assert all(not is_speech(r[1], r[2]) for r in rows)  # the old detector agrees


def test_a_gap_restarts_the_detector_at_the_new_samples(speech_stream):
    vad = SpeechTrack()
    vad.feed(speech_stream[:3 * SAMPLE_RATE], 3 * SAMPLE_RATE)
    end = speech_stream.size // 2 + 77  # windows were dropped: more than a window skipped
    wav = speech_stream[end - LIVE_BUFFER_SAMPLES:end]
    vad.feed(wav, end)
    assert vad.end == end
    assert vad.ratio(end - wav.size, end) == pytest.approx(speech_ratio(wav), abs=0.01)
    assert vad.ratio(0, 3 * SAMPLE_RATE) == 0.0  # forgotten with the old stream


def test_reset_and_degenerate_ranges(speech_stream):
    vad = SpeechTrack()
    assert vad.ratio(0, SAMPLE_RATE) == 0.0 and vad.end is None
    start, stop = max(speech_spans(speech_stream), key=lambda span: span[1] - span[0])
    assert stop - start > SAMPLE_RATE
    end = (start + SAMPLE_RATE) // CHUNK_SAMPLES * CHUNK_SAMPLES + 100  # inside a chunk
    vad.feed(speech_stream[:end], end)
    # the newest 100 samples, not a whole chunk yet, take the newest frame's verdict
    assert vad.ratio(end - LIVE_HOP_SAMPLES, end) == 1.0
    assert vad.ratio(5, 5) == 0.0 and vad.ratio(end, end + CHUNK_SAMPLES) == 0.0
    vad.reset()
    assert vad.end is None and vad.ratio(0, end) == 0.0
