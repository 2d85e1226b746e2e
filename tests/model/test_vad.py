"""silero-vad gating: silence and noise are not speech, espeak-ng speech is."""
from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest

from ser_studio.model.audio import vad
from ser_studio.model.audio.io import load_audio
from ser_studio.model.audio.vad import (has_speech, is_speech, spans_ratio, speech_ratio,
                                        speech_spans)
from ser_studio.model.constants import SAMPLE_RATE

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed")



@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> np.ndarray:
    """About 4 s of espeak-ng speech at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path),
                    "The quick brown fox jumps over the lazy dog. I am very happy today."],
                   check=True, capture_output=True)
    return load_audio(path)


def _noise(kind: str, seconds: float, level: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    white = rng.standard_normal(n)
    if kind == "white":
        out = white
    elif kind == "pink":     # 1/f power: scale the spectrum by 1/sqrt(f)
        spectrum = np.fft.rfft(white) / np.sqrt(np.arange(1, n // 2 + 2))
        out = np.fft.irfft(spectrum, n)
    else:                    # brown: integrated white noise
        out = np.cumsum(white)
        out -= out.mean()
    return (level * out / np.abs(out).max()).astype(np.float32)


def test_silence_is_not_speech():
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    assert speech_ratio(silence) == 0.0 and not has_speech(silence)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("level", [0.01, 0.3, 1.0])
def test_noise_is_not_speech(kind, level):
    wav = _noise(kind, 3.0, level, np.random.default_rng(1))
    assert speech_ratio(wav) < 0.05
    assert not has_speech(wav)


def test_tone_and_synthetic_vowel_are_not_speech():
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 0.5 * t)) / SAMPLE_RATE
    vowel = sum(np.sin(k * phase) / k for k in range(1, 30)) * (0.5 + 0.5 * np.sin(8 * np.pi * t))
    for wav in (tone, 0.3 * vowel / np.abs(vowel).max()):
        assert not has_speech(wav.astype(np.float32))


@needs_espeak
def test_espeak_speech_is_speech(spoken):
    assert speech_ratio(spoken) > 0.6
    assert has_speech(spoken)


@needs_espeak
def test_speech_with_silence_around_it(spoken):
    pad = np.zeros(len(spoken), dtype=np.float32)
    padded = np.concatenate([pad, spoken, pad])
    spans = speech_spans(padded)
    assert spans and all(len(spoken) - 2000 <= s < e <= 2 * len(spoken) + 2000 for s, e in spans)
    whole = speech_ratio(spoken)
    assert speech_ratio(padded) == pytest.approx(whole / 3, abs=0.05)
    # a long recording with one short utterance still has speech (0.5 s rule)
    long = np.concatenate([np.zeros(30 * SAMPLE_RATE, np.float32), spoken[:SAMPLE_RATE * 2]])
    assert speech_ratio(long) < 0.1 and has_speech(long)


@needs_espeak
def test_threads_share_the_detector_safely(spoken):
    noise = _noise("white", 3.0, 0.3, np.random.default_rng(2))
    expected = {0: speech_ratio(spoken), 1: speech_ratio(noise)}
    results: list[tuple[int, float]] = []

    def work(which: int) -> None:
        for _ in range(3):
            results.append((which, speech_ratio(spoken if which == 0 else noise)))

    threads = [threading.Thread(target=work, args=(i % 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12
    assert all(ratio == pytest.approx(expected[which]) for which, ratio in results)


def test_helpers_and_degenerate_input():
    assert spans_ratio([(0, 50), (75, 200)], 0, 100) == pytest.approx(0.75)
    assert spans_ratio([(0, 50)], 10, 10) == 0.0
    assert speech_ratio(np.zeros(0, np.float32)) == 0.0
    assert speech_ratio(np.full(100, np.nan, np.float32)) == 0.0
    assert is_speech(0.1, 3 * SAMPLE_RATE) and not is_speech(0.09, 3 * SAMPLE_RATE)
    assert is_speech(0.01, 60 * SAMPLE_RATE)            # 0.6 s of speech in a minute
    assert not is_speech(0.0, SAMPLE_RATE)


def test_the_measured_gate_keeps_noise_and_hum_out():
    """bench/speech_gate.py chose threshold 0.25 / 100 ms: every noise it makes, quiet to
    loud (white, pink and brown noise up to -6 dBFS peak, a tone, mains hum at -3 dBFS peak, a
    DC offset) stays out; at 0.15 the loud hum gets in, so the setting keeps a margin."""
    from bench.speech_gate import noises
    from ser_studio.model.audio.vad_stream import SpeechProbStream

    assert (vad.THRESHOLD, vad.MIN_SPEECH_MS) == (0.25, 100)
    for name, wav in noises().items():
        probs = SpeechProbStream().run(wav)
        spans = vad.spans_from_probs(probs, wav.size)
        assert not vad.is_speech(vad.spans_ratio(spans, 0, wav.size), wav.size), name
    hum = noises()["loud mains hum (peak -3 dBFS)"]
    too_low = vad.spans_from_probs(SpeechProbStream().run(hum), hum.size, threshold=0.15)
    assert vad.is_speech(vad.spans_ratio(too_low, 0, hum.size), hum.size)  # the edge is real


@needs_espeak
def test_loud_clipped_quiet_and_offset_speech_are_all_speech(spoken):
    """The same sentence at peak 0.95, clipped after +20 dB, at -50 dBFS peak and on a +0.3
    offset is speech, and its speech ratio moves little with the level."""
    peak = spoken / np.abs(spoken).max()
    versions = {"peak 0.95": 0.95 * peak, "clipped": np.clip(10 * peak, -1, 1),
                "-50 dBFS": 0.00316 * peak, "offset +0.3": 0.6 * peak + 0.3}
    ratios = {name: speech_ratio(w.astype(np.float32)) for name, w in versions.items()}
    assert all(r > 0.6 for r in ratios.values()), ratios
    assert max(ratios.values()) - min(ratios.values()) < 0.15, ratios


class _LevelDeafDetector:
    """A stand-in for silero with its fault made plain: a chunk is speech (0.9) only when its
    peak is below 0.1, so loud speech scores 0.05."""

    def reset(self) -> None:
        pass

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        return np.where(np.abs(chunks).max(axis=1) < 0.1, 0.9, 0.05).astype(np.float32)


def test_the_gate_hears_loud_speech_that_the_detector_misses_at_full_level(monkeypatch):
    """Shouting that a level-sensitive detector misses is found at one of the gate's lower
    levels; quiet audio is heard at its own level only (never made louder)."""
    from ser_studio.model.audio import vad_stream

    monkeypatch.setattr(vad_stream.SpeechProbStream, "_load",
                        lambda self: [_LevelDeafDetector() for _ in vad.GateInput.gains])
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    loud = (0.9 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    assert np.all(vad_stream.SpeechProbStream().run(loud) == np.float32(0.9))
    assert all(g <= 1.0 for g in vad.GateInput.gains)  # never louder than recorded
    monkeypatch.setattr(vad.GateInput, "gains", (1.0,))  # one level: the fault shows
    assert np.all(vad_stream.SpeechProbStream().run(loud)[2:] == np.float32(0.05))
