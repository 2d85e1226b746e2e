"""silero over a stream with its front batched: silero's segments, a fraction of the cost."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from model import vad as vad_mod
from model import vad_batch
from model.audio import load_audio
from model.constants import SAMPLE_RATE


@pytest.fixture(scope="module")
def signal(tmp_path_factory) -> np.ndarray:
    """~25 s: espeak-ng speech, silence, pink-ish noise and speech again."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "The quick brown fox jumps over the lazy "
                    "dog. I am very happy today. Why would you do that to me?"],
                   check=True, capture_output=True)
    speech = load_audio(path)
    rng = np.random.default_rng(0)
    noise = np.cumsum(rng.standard_normal(3 * SAMPLE_RATE))
    noise = (0.2 * noise / np.abs(noise).max()).astype(np.float32)
    silence = np.zeros(2 * SAMPLE_RATE + 123, np.float32)
    return np.concatenate([silence, speech, noise, speech[:40000], silence, speech])


def _silero_loop_probs(wav: np.ndarray) -> np.ndarray:
    """silero's own get_speech_timestamps loop: the stateful model, one chunk per call."""
    model = vad_mod.load_model()
    chunks = np.pad(wav, (0, -wav.size % 512)).reshape(-1, 512)
    with torch.inference_mode():
        return np.array([model(torch.from_numpy(c).unsqueeze(0), SAMPLE_RATE).item()
                         for c in chunks], dtype=np.float32)


def test_exact_path_is_silero_loop_bit_for_bit(signal):
    probs = vad_batch.SpeechProbs(exact=True).run(signal)
    np.testing.assert_array_equal(probs, _silero_loop_probs(signal))
    assert vad_batch.speech_spans(signal, exact=True) == vad_mod.speech_spans(signal)


def test_batched_path_is_close_and_segments_the_same(signal):
    stream = vad_batch.SpeechProbs()
    assert not stream.exact                                   # the probe check passed
    probs = stream.run(signal)
    assert probs.shape == (-(-signal.size // 512),)
    assert np.max(np.abs(probs - _silero_loop_probs(signal))) < 5e-4   # measured 6e-5
    assert vad_batch.speech_spans(signal) == vad_mod.speech_spans(signal)


@pytest.mark.parametrize("block", [100, 512, 7777, 10 ** 6])
def test_block_sizes_do_not_matter(signal, block, monkeypatch):
    monkeypatch.setattr(vad_batch, "BATCH_CHUNKS", 64)       # several batches per block too
    stream = vad_batch.SpeechProbs()
    for i in range(0, signal.size, block):
        stream.feed(signal[i:i + block])
    assert stream.n_samples == signal.size
    np.testing.assert_allclose(stream.finish(), vad_batch.SpeechProbs().run(signal), atol=5e-4)


def test_a_probe_mismatch_falls_back_to_the_per_chunk_path(monkeypatch):
    parts = vad_batch._silero_parts()
    monkeypatch.setattr(vad_batch, "PROBE_TOLERANCE", -1.0)
    assert not vad_batch._probe_agrees(parts)
    fallback = vad_batch.SpeechProbs(parts=vad_batch.dataclasses.replace(parts, batched=False))
    assert fallback.exact


def test_empty_and_tiny_streams():
    assert vad_batch.SpeechProbs().finish().shape == (0,)
    assert vad_batch.speech_spans(np.zeros(100, np.float32)) == []
