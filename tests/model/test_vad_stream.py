"""silero-vad over a stream (model.audio.vad_stream): silero's own probabilities and spans through
its sequence graph, whatever the block sizes, the state carried between calls, and silero's own call
used when the graph is missing or cannot be loaded."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio import vad_stream
from ser_studio.model.audio.io import load_audio
from ser_studio.model.audio.vad import CHUNK_SAMPLES, load_model, spans_from_probs, speech_spans
from ser_studio.model.audio.vad_stream import SpeechProbStream
from ser_studio.model.constants import SAMPLE_RATE

from tests.fresh_python import fresh_python


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> np.ndarray:
    """About 6 s of espeak-ng speech at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy "
                    "dog. I am very happy today. Why would you do that to me?"],
                   check=True, capture_output=True)
    return load_audio(path)


@pytest.fixture(scope="module")
def signal(spoken) -> np.ndarray:
    """~20 s: silence, speech, pink noise, part of the speech, brown noise, the speech again;
    its length is not a whole number of chunks."""
    rng = np.random.default_rng(3)
    white = rng.standard_normal(2 * SAMPLE_RATE)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, white.size // 2 + 2)),
                        white.size)
    brown = np.cumsum(rng.standard_normal(3 * SAMPLE_RATE))
    pad = np.zeros(SAMPLE_RATE + 123, np.float32)
    return np.concatenate([pad, spoken, pad, 0.3 * pink / np.abs(pink).max(), spoken[:40000],
                           0.2 * brown / np.abs(brown).max(), spoken]).astype(np.float32)


def _silero_loop_probs(wav: np.ndarray) -> np.ndarray:
    """silero's own get_speech_timestamps loop over what the gate hears of ``wav``
    (vad.GateInput: high-passed, at each level, the highest probability kept): the stateful
    model, one padded chunk a call."""
    model = load_model()
    filtered = vad_mod.GateInput().filter(wav)
    chunks = np.pad(filtered, (0, -filtered.size % CHUNK_SAMPLES)).reshape(-1, CHUNK_SAMPLES)

    def run(_level, scaled):
        model.reset_states()
        with torch.inference_mode():
            return np.array([model(torch.from_numpy(c).unsqueeze(0), SAMPLE_RATE).item()
                             for c in scaled], dtype=np.float32)

    return vad_mod.GateInput.loudest(run, chunks)


def _feed_in_hops(stream: SpeechProbStream, wav: np.ndarray, hop: int = 8000) -> np.ndarray:
    return np.concatenate([stream.feed(wav[i:i + hop]) for i in range(0, wav.size, hop)])


def test_exact_path_is_silero_loop_bit_for_bit(signal):
    probs = SpeechProbStream(exact=True).run(signal)
    np.testing.assert_array_equal(probs, _silero_loop_probs(signal))
    assert vad_stream.speech_spans(signal, exact=True) == speech_spans(signal)


def test_batched_path_is_close_and_segments_the_same(signal):
    stream = SpeechProbStream()
    assert stream.batched                                     # silero's sequence graph
    probs = stream.run(signal)
    assert probs.shape == (-(-signal.size // CHUNK_SAMPLES),) and probs.dtype == np.float32
    assert np.max(np.abs(probs - _silero_loop_probs(signal))) < 5e-4   # measured 8e-5
    assert vad_stream.speech_spans(signal) == speech_spans(signal)


def test_live_hops_segment_exactly_as_speech_spans(signal):
    """Fed in hops that do not divide the chunk, the stream sees what get_speech_timestamps
    sees, less the unfinished last chunk, which stays pending."""
    stream = SpeechProbStream()
    probs = _feed_in_hops(stream, signal)
    assert probs.shape == (signal.size // CHUNK_SAMPLES,)
    assert stream.pending == signal.size % CHUNK_SAMPLES and stream.n_samples == signal.size
    assert spans_from_probs(probs, signal.size) == speech_spans(signal)


@pytest.mark.parametrize("block", [100, 512, 7777, 10 ** 6])
def test_block_sizes_do_not_matter(signal, block, monkeypatch):
    monkeypatch.setattr(vad_stream, "BATCH_CHUNKS", 64)     # several batches per block too
    stream = SpeechProbStream()
    probs = [stream.feed(signal[i:i + block]) for i in range(0, signal.size, block)]
    probs = np.concatenate(probs + [stream.flush()])
    np.testing.assert_allclose(probs, SpeechProbStream().run(signal), atol=5e-4)


def test_stream_carries_state_and_reset_forgets_it(spoken):
    stream = SpeechProbStream()
    whole = stream.feed(spoken)
    stream.reset()
    assert stream.pending == 0 and stream.n_samples == 0
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


def test_empty_and_tiny_streams():
    stream = SpeechProbStream()
    assert stream.flush().shape == (0,)
    assert stream.run(np.zeros(0, np.float32)).shape == (0,)
    assert stream.run(np.zeros(100, np.float32)).shape == (1,)
    assert vad_stream.speech_spans(np.zeros(100, np.float32)) == []


def test_a_silero_without_the_sequence_graph_falls_back_to_its_own_call(signal, monkeypatch,
                                                                       caplog):
    def missing():
        raise OSError("silero_vad_16k_sequence.onnx is missing")

    monkeypatch.setattr(vad_stream, "_session", vad_stream._UNSET)
    monkeypatch.setattr(vad_stream, "sequence_graph_path", missing)
    stream = SpeechProbStream()
    probs = _feed_in_hops(stream, signal)
    assert not stream.batched
    assert "sequence graph unavailable" in caplog.text
    np.testing.assert_array_equal(probs, _silero_loop_probs(signal)[:probs.size])
    assert spans_from_probs(probs, signal.size) == vad_mod.speech_spans(signal)


def test_a_graph_onnxruntime_cannot_load_falls_back_to_its_own_call(signal, monkeypatch,
                                                                    tmp_path, caplog):
    broken = tmp_path / "silero_vad_16k_sequence.onnx"
    broken.write_bytes(b"not a graph")
    monkeypatch.setattr(vad_stream, "_session", vad_stream._UNSET)
    monkeypatch.setattr(vad_stream, "sequence_graph_path", lambda: broken)
    stream = SpeechProbStream()
    assert not stream.batched
    assert str(broken) in caplog.text
    np.testing.assert_array_equal(stream.run(signal), _silero_loop_probs(signal))


def test_the_sequence_graph_is_found_without_importing_silero_or_changing_threads():
    code = ("import sys, torch; torch.set_num_threads(2); "
            "from ser_studio.model.audio.vad_stream import sequence_graph_path as p; "
            "print(p().name, 'silero_vad' in sys.modules, torch.get_num_threads())")
    assert fresh_python(code).split() == ["silero_vad_16k_sequence.onnx", "False", "2"]
