"""predict_file streamed and batched: the timeline of the per-window path, a file read in
bounded blocks (never whole), and unreadable files still named."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import AudioError, frame_windows, iter_audio, load_audio
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference import file_reads as file_stream
from ser_studio.model.inference import timeline as file_timeline
from ser_studio.model.inference.predictor import Predictor, default_model_path
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network

LABELS = ["angry", "happy", "neutral", "sad"]
SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "I am very happy today, this is wonderful news!",
             "Why would you do that to me? I cannot believe it.",
             "Please leave me alone, I am tired and sad."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Predictor:
    """A random enhanced network behind the shipped model's frontend (log-mel, loudness
    normaliser, band CMVN), eval_max_seconds 4."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="enhanced", input_dim=80, n_classes=4, hidden=16, gru_layers=1,
                      attn_heads=2, frame_pool=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel", band_norm="cmvn"), model=cfg,
                      train=TrainConfig(eval_max_seconds=4.0), labels=LABELS,
                      norm_mean=[0.0] * 80, norm_std=[1.0] * 80,
                      state_dict=build_network(cfg).state_dict())
    path = save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "model.safetensors")
    return Predictor.load(path)


def speech_like(folder, seconds: float, rate: int = 22050, seed: int = 0,
                quiet: bool = True) -> np.ndarray:
    """(N,) float32 at ``rate``: (``quiet``: 6 s of digital silence, 8 s of noise alone, then)
    espeak-ng sentences at random gains with pauses, over a low noise floor."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    clips = []
    for i, text in enumerate(SENTENCES):
        path = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-s", str(140 + 15 * i), "-w", str(path), text],
                       check=True, capture_output=True)
        clips.append(load_audio(path))   # 16 kHz
    rng = np.random.default_rng(seed)
    parts = [np.zeros(6 * SAMPLE_RATE, np.float32),
             (0.02 * rng.standard_normal(8 * SAMPLE_RATE)).astype(np.float32)] if quiet else []
    while sum(p.size for p in parts) < seconds * SAMPLE_RATE:
        parts.append(clips[rng.integers(len(clips))] * np.float32(rng.uniform(0.2, 0.9)))
        parts.append(np.zeros(int(rng.uniform(0.2, 3.0) * SAMPLE_RATE), np.float32))
    wav = np.concatenate(parts)[:int(seconds * SAMPLE_RATE)]
    floor = 6 * SAMPLE_RATE if quiet else 0
    wav[floor:] += (0.003 * rng.standard_normal(wav.size - floor)).astype(np.float32)
    if rate != SAMPLE_RATE:
        import soxr

        wav = soxr.resample(wav, SAMPLE_RATE, rate).astype(np.float32)
    return wav


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Three minutes of speech-like audio as a 22.05 kHz stereo FLAC (decoding, mixdown and
    resampling all on the path)."""
    folder = tmp_path_factory.mktemp("recording")
    left = speech_like(folder, 180.0)
    path = folder / "three minutes.flac"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 22050, subtype="PCM_16")
    return path


def per_window_reference(predictor: Predictor, path, window_s=3.0, hop_s=1.0):
    """Today's (HEAD's) predict_file of a file longer than eval_max_seconds: the whole file
    loaded, silero's own loop over it, one network call per window."""
    wav = load_audio(path)
    spans = vad_mod.speech_spans(wav)
    windows = [(s / SAMPLE_RATE, e / SAMPLE_RATE, file_timeline.window_prediction(predictor, wav, s, e, spans))
               for s, e in frame_windows(wav, int(window_s * SAMPLE_RATE),
                                         int(hop_s * SAMPLE_RATE))]
    overall = dataclasses.replace(file_timeline.average(predictor, windows, spans, wav.shape[0]),
                                  level=predictor.level(wav))
    return wav, spans, windows, overall


def assert_same_timeline(new, reference) -> None:
    wav, spans, windows, overall = reference
    assert new.duration_s == wav.shape[0] / SAMPLE_RATE
    assert len(new.windows) == len(windows)
    for (s, e, p), (rs, re_, r) in zip(new.windows, windows):
        assert (s, e, p.speech, p.speech_ratio) == (rs, re_, r.speech, r.speech_ratio)
        assert p.level == r.level and p.attention_offset_s == r.attention_offset_s
        np.testing.assert_allclose(p.probs, r.probs, atol=1e-5)
        assert p.attention.shape == r.attention.shape
        np.testing.assert_allclose(p.attention, r.attention, atol=1e-5)
        assert p.label == (LABELS[int(np.argmax(p.probs))] if p.speech else None)
    np.testing.assert_allclose(new.overall.probs, overall.probs, atol=1e-5)
    assert new.overall.speech_ratio == overall.speech_ratio
    # the stream's high-pass runs block by block: the same filter, FFTs of other sizes
    assert new.overall.level.peak_dbfs == overall.level.peak_dbfs
    assert new.overall.level.loudness_lufs == pytest.approx(overall.level.loudness_lufs, abs=1e-9)
    assert new.overall.level.gain_db == pytest.approx(overall.level.gain_db, abs=1e-9)
    assert new.overall.attention.size == 0


def test_streamed_batched_timeline_equals_the_per_window_path(tiny, recording):
    reference = per_window_reference(tiny, recording)
    _, spans, windows, _ = reference
    assert file_stream.scan(recording)[1] == spans          # the same speech spans
    speech = sum(p.speech for _, _, p in windows)
    assert 0.5 * len(windows) < speech < len(windows)       # speech and silence both in it
    assert_same_timeline(tiny.predict_file(recording), reference)


def test_shipped_model_gives_the_per_window_probabilities(recording):
    if not default_model_path().is_file():
        pytest.skip("the default model is not installed")
    predictor = Predictor.load()
    assert_same_timeline(predictor.predict_file(recording),
                         per_window_reference(predictor, recording))


def test_long_file_is_read_in_bounded_blocks_never_whole(tiny, recording, monkeypatch):
    sizes: list[list[int]] = []

    def small_blocks(path):
        sizes.append([])
        for block in iter_audio(path, block_seconds=2.0):
            sizes[-1].append(block.size)
            yield block

    def refuse(*_args, **_kwargs):
        raise AssertionError("a long file must not be read whole")

    monkeypatch.setattr(file_stream, "iter_audio", small_blocks)
    monkeypatch.setattr(file_stream, "read_whole", refuse)
    monkeypatch.setattr(file_timeline, "slice_windows", _lazy_check(file_timeline.slice_windows))
    result = tiny.predict_file(recording)
    assert len(sizes) == 2                                  # scan, then the windows
    n = round(result.duration_s * SAMPLE_RATE)
    for blocks in sizes:
        assert sum(blocks) == n and len(blocks) >= 180 // 2
        assert max(blocks) <= 2 * SAMPLE_RATE + 512         # 2 s + soxr's delay


def _lazy_check(slice_windows):
    """slice_windows wrapped to assert it yields each window before reading one block past
    its end (it holds about one window and one block, whatever the file's length)."""
    def wrapped(blocks, spans):
        pulled = [0, 0]   # blocks, samples

        def counting():
            for block in blocks:
                pulled[0] += 1
                pulled[1] += block.size
                yield block

        for start, end, wav in slice_windows(counting(), spans):
            assert pulled[1] - end < 2 * SAMPLE_RATE + 512 + 1
            yield start, end, wav
    return wrapped


def test_short_file_for_a_model_without_a_limit_is_held_once(tiny, tmp_path, monkeypatch):
    """eval_max_seconds unset: the overall result is the network on the whole file."""
    path = tmp_path / "short.wav"
    sf.write(path, speech_like(tmp_path, 12.0, rate=SAMPLE_RATE, quiet=False), SAMPLE_RATE)
    monkeypatch.setattr(tiny, "max_seconds", None)
    result = tiny.predict_file(path)
    wav = load_audio(path)
    whole = file_timeline.window_prediction(tiny, wav, 0, wav.shape[0],
                                           vad_mod.speech_spans(wav))
    np.testing.assert_allclose(result.overall.probs, whole.probs, atol=1e-5)
    assert result.overall.attention.shape == whole.attention.shape
    assert result.overall.level == whole.level


def _corrupt(tmp_path, kind: str):
    path = tmp_path / f"bad {kind}.wav"
    t = np.arange(30 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    if kind == "not audio":
        path.write_bytes(b"this is not audio at all" * 200)
    elif kind == "truncated header":
        sf.write(path, tone, SAMPLE_RATE, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:20])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "NaN":  # 25 s in: past the first blocks
        tone[25 * SAMPLE_RATE] = np.nan
        sf.write(path, tone, SAMPLE_RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize("kind, words", [("not audio", "not audio"),
                                         ("truncated header", "truncated"),
                                         ("empty", "empty"), ("missing", "not found"),
                                         ("NaN", "NaN")])
def test_unreadable_file_raises_audio_error_naming_it(tiny, tmp_path, kind, words):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(AudioError) as info:
        tiny.predict_file(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_file_that_changes_between_the_reads_is_refused(tiny, recording, monkeypatch):
    reads = []

    def shrinking(path):
        reads.append(path)
        for i, block in enumerate(iter_audio(path)):
            if len(reads) == 1 or i < 3:
                yield block

    monkeypatch.setattr(file_stream, "iter_audio", shrinking)
    with pytest.raises(AudioError, match="changed while being read") as info:
        tiny.predict_file(recording)
    assert str(recording) in str(info.value)


@pytest.mark.parametrize("seconds", [180.0, 3.5])   # streamed, then held whole
def test_progress_increases_to_the_total(tiny, recording, tmp_path, seconds):
    path = recording
    if seconds < 180:
        path = tmp_path / "short.wav"
        sf.write(path, np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)
    calls: list[tuple[float, float]] = []
    result = tiny.predict_file(path, progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _ in calls]
    totals = {t for _, t in calls}
    assert len(totals) == 1 and totals.pop() == pytest.approx(result.duration_s, abs=0.01)
    assert all(b > a for a, b in zip(done, done[1:])) and done[-1] == calls[-1][1]
    if seconds == 180:       # reported through the first read and window by window
        assert len(calls) > 100
        assert any(d < file_timeline.VAD_SHARE * result.duration_s for d in done)


def test_progress_can_stop_the_work(tiny, recording):
    def stop(done, total):
        if done > total / 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny.predict_file(recording, progress=stop)


def test_a_long_files_overall_is_the_speech_ratio_weighted_mean_of_its_speech_windows():
    """Speech windows with ratios 0.25 and 0.75 and one window without speech (left out): the
    overall probabilities weigh the windows 0.25 and 0.75, so the label is the heavier
    window's; without a VAD (spans None) the windows weigh the same and the other class wins."""
    from types import SimpleNamespace

    from ser_studio.model.inference.prediction import Prediction

    def window(probs, ratio, speech=True):
        return Prediction(label=None, probs=np.asarray(probs, np.float32),
                          attention=np.zeros(0, np.float32), attention_rate=1.0,
                          speech=speech, speech_ratio=ratio, latency_s=0.0)

    predictor = SimpleNamespace(labels=["calm", "tense"], attention_rate=1.0)
    windows = [(0.0, 3.0, window([0.9, 0.1], 0.25)), (1.0, 4.0, window([0.2, 0.8], 0.75)),
               (2.0, 5.0, window([1.0, 0.0], 0.1, speech=False))]
    n = 5 * SAMPLE_RATE
    overall = file_timeline.average(predictor, windows, [(0, SAMPLE_RATE)], n)
    np.testing.assert_allclose(overall.probs, [0.25 * 0.9 + 0.75 * 0.2, 0.25 * 0.1 + 0.75 * 0.8],
                               rtol=1e-6)
    assert overall.label == "tense" and overall.speech_ratio == pytest.approx(0.2)
    plain = file_timeline.average(predictor, windows, None, n)
    np.testing.assert_allclose(plain.probs, [0.55, 0.45], rtol=1e-6)
    assert plain.label == "calm"
