"""silero-vad over a stream: the same probabilities and spans as the whole-signal detector, the
state carried between calls, and the batched form checked against silero's own call."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from model import vad_stream
from model.audio import load_audio
from model.constants import SAMPLE_RATE
from model.vad import CHUNK_SAMPLES, load_model, spans_from_probs, speech_spans
from model.vad_stream import ChunkModel, SpeechProbStream


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


@pytest.fixture(scope="module")
def signal(spoken) -> np.ndarray:
    """Silence, speech, silence, pink noise, the start of the speech again."""
    rng = np.random.default_rng(3)
    white = rng.standard_normal(2 * SAMPLE_RATE)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, white.size // 2 + 2)),
                        white.size)
    pad = np.zeros(SAMPLE_RATE, np.float32)
    return np.concatenate([pad, spoken, pad, 0.3 * pink / np.abs(pink).max(),
                           spoken[:8000]]).astype(np.float32)


def _feed_in_hops(stream: SpeechProbStream, wav: np.ndarray, hop: int = 8000) -> np.ndarray:
    return np.concatenate([stream.feed(wav[i:i + hop]) for i in range(0, wav.size, hop)])


def test_streamed_probabilities_segment_exactly_as_speech_spans(signal):
    """Fed in hops that do not divide the 512-sample chunk, the stream sees what
    get_speech_timestamps sees: the same spans, on speech with silence and noise around it."""
    stream = SpeechProbStream()
    probs = _feed_in_hops(stream, signal)
    assert probs.shape == (signal.size // CHUNK_SAMPLES,) and probs.dtype == np.float32
    assert stream.pending == signal.size % CHUNK_SAMPLES
    assert spans_from_probs(probs, signal.size) == speech_spans(signal)


def test_batched_form_matches_silero_chunk_by_chunk(signal):
    model = load_model()
    chunks = torch.from_numpy(signal[:signal.size // CHUNK_SAMPLES * CHUNK_SAMPLES].copy())
    with torch.inference_mode():
        plain = np.array([float(model(c, SAMPLE_RATE)) for c in chunks.view(-1, CHUNK_SAMPLES)])
    stream = SpeechProbStream()
    probs = _feed_in_hops(stream, signal)
    assert stream._model.batched
    assert np.abs(probs - plain).max() <= vad_stream.CHECK_TOLERANCE


def test_an_unknown_silero_falls_back_to_its_own_call(signal, monkeypatch):
    class Opaque:  # silero's interface without the parts the batched form uses
        def __init__(self):
            self._inner = load_model()

        def __call__(self, x, sr):
            return self._inner(x, sr)

        def reset_states(self):
            self._inner.reset_states()

    monkeypatch.setattr(vad_stream, "load_model", Opaque)
    stream = SpeechProbStream()
    probs = _feed_in_hops(stream, signal)
    assert isinstance(stream._model, ChunkModel) and not stream._model.batched
    assert spans_from_probs(probs, signal.size) == speech_spans(signal)


def test_stream_carries_state_and_reset_forgets_it(spoken):
    stream = SpeechProbStream()
    whole = stream.feed(spoken)
    stream.reset()
    assert stream.pending == 0
    np.testing.assert_allclose(stream.feed(spoken), whole, atol=1e-6)  # a fresh start again
    stream.reset()
    cut = 100 * CHUNK_SAMPLES
    halves = np.concatenate([stream.feed(spoken[:cut]), stream.feed(spoken[cut:])])
    np.testing.assert_allclose(halves, whole, atol=1e-6)  # the second half heard the first
    stream.reset()
    stream.feed(np.flip(spoken[:cut]).copy())  # other audio first: the state differs after it
    assert np.abs(stream.feed(spoken[cut:2 * cut]) - whole[100:200]).max() > 1e-3


def test_non_finite_samples_do_not_poison_the_stream():
    stream = SpeechProbStream()
    assert stream.feed(np.full(300, np.nan, np.float32)).size == 0
    probs = stream.feed(np.full(4 * CHUNK_SAMPLES, np.inf, np.float32))
    assert probs.shape == (4,) and np.isfinite(probs).all()
    probs = stream.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert np.isfinite(probs).all() and probs.max() < 0.5
    assert spans_from_probs(np.zeros(0)) == [] and spans_from_probs(np.ones(40)) == [
        (0, 40 * CHUNK_SAMPLES)]
