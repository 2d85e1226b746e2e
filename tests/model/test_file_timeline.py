"""predict_file on the sliding-window engine: the live engine's windows, frames shared, the
per-window path's probabilities where frames are not shared, a file read once in bounded blocks
(never whole), speech segments, and unreadable files still named."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import (AudioError, frame_windows, iter_audio, load_audio,
                                       window_spans)
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference import timeline as file_timeline
from ser_studio.model.inference.prediction import file_result_to_dict
from ser_studio.model.inference.predictor import Predictor, default_model_path
from ser_studio.model.inference.window_stream import WindowStream
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


@pytest.fixture(scope="module")
def streaming(tmp_path_factory) -> Predictor:
    """A random network behind the shipped model's frontend (speech_embedding+ge2e, real wheel
    files, which has a streaming form), eval_max_seconds 10."""
    torch.manual_seed(1)
    cfg = ModelConfig(arch="baseline", input_dim=352, n_classes=4, hidden=16, attn_heads=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="speech_embedding+ge2e"), model=cfg,
                      train=TrainConfig(eval_max_seconds=10.0), labels=LABELS,
                      norm_mean=[0.0] * 352, norm_std=[1.0] * 352,
                      state_dict=build_network(cfg).state_dict())
    path = save_checkpoint(ckpt, tmp_path_factory.mktemp("se_ge2e") / "model.safetensors")
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


@pytest.fixture(scope="module")
def minute(tmp_path_factory):
    """40 s of speech-like audio at 16 kHz (silence and noise first)."""
    folder = tmp_path_factory.mktemp("minute")
    path = folder / "minute.wav"
    sf.write(path, speech_like(folder, 40.0, rate=SAMPLE_RATE, seed=2), SAMPLE_RATE,
             subtype="FLOAT")
    return path


def per_window_reference(predictor: Predictor, path, window_s=3.0, hop_s=1.0):
    """The file path before the sliding-window engine: the whole file loaded, its speech spans
    from silero over all of it, each window gated by its share of them and its features
    computed whole."""
    wav = load_audio(path)
    spans = vad_mod.speech_spans(wav)
    windows = [(s / SAMPLE_RATE, e / SAMPLE_RATE,
                file_timeline.window_prediction(predictor, wav, s, e, spans))
               for s, e in frame_windows(wav, int(window_s * SAMPLE_RATE),
                                         int(hop_s * SAMPLE_RATE))]
    overall = dataclasses.replace(file_timeline.average(predictor, windows, spans, wav.shape[0]),
                                  level=predictor.level(wav))
    return wav, spans, windows, overall


def engine_reference(predictor, path, window_s, hop_s):
    """The windows of ``path`` through a fresh sliding-window engine, one by one."""
    wav = load_audio(path)
    engine = WindowStream(predictor, held_seconds=window_s + 12, keep_audio=False)
    window, hop = int(window_s * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
    return [(s, e, engine.analyse(wav[s:e].copy(), e)) for s, e in
            window_spans(wav.size, window, hop)]


def test_a_files_windows_are_the_engines_and_share_their_frames(streaming, minute, monkeypatch):
    """File analysis is the live engine on the file's windows: the same probabilities bit for
    bit, the features of overlapping windows built from shared frames (never a window
    computed whole after the first)."""
    whole = []
    frontend = streaming.frontend
    monkeypatch.setattr(frontend, "with_level", lambda wav: whole.append(wav.size) or type(
        frontend).with_level(frontend, wav))
    result = streaming.predict_file(minute, window_s=5.0, hop_s=0.5)
    monkeypatch.undo()
    reference = engine_reference(streaming, minute, 5.0, 0.5)
    assert len(result.windows) == len(reference)
    for (s, e, p), (rs, re_, step) in zip(result.windows, reference):
        r = step.prediction
        assert (s, e) == (rs / SAMPLE_RATE, re_ / SAMPLE_RATE)
        assert (p.speech, p.speech_ratio, p.label) == (r.speech, r.speech_ratio, r.label)
        np.testing.assert_array_equal(p.probs, r.probs)
    assert whole == []
    speech = sum(p.speech for _, _, p in result.windows)
    assert 0.5 * len(result.windows) < speech < len(result.windows)


def test_a_model_without_a_streaming_form_keeps_todays_window_probabilities(tiny, recording):
    """Log-mel windows are computed whole, as before: where the gate agrees, the same
    probabilities; the gate (the stream's detector, read causally per window, against silero
    over the whole file) agrees on nearly every window, and the file's overall speech ratio is
    the whole file's."""
    wav, spans, windows, overall = per_window_reference(tiny, recording)
    result = tiny.predict_file(recording)
    assert result.duration_s == wav.shape[0] / SAMPLE_RATE
    assert [(s, e) for s, e, _ in result.windows] == [(s, e) for s, e, _ in windows]
    same_gate = 0
    for (_, _, p), (_, _, r) in zip(result.windows, windows):
        same_gate += p.speech == r.speech
        assert abs(p.speech_ratio - r.speech_ratio) < 0.35
        if p.speech and r.speech:
            assert p.level == r.level and p.attention_offset_s == r.attention_offset_s
            np.testing.assert_allclose(p.probs, r.probs, atol=1e-5)
            assert p.label == r.label
    assert same_gate >= 0.95 * len(windows)
    assert result.overall.speech_ratio == pytest.approx(overall.speech_ratio, abs=0.02)
    assert result.overall.level.peak_dbfs == overall.level.peak_dbfs
    assert result.overall.level.loudness_lufs == pytest.approx(overall.level.loudness_lufs,
                                                               abs=1e-9)
    assert result.overall.attention.size == 0


def test_the_shipped_model_keeps_todays_labels(recording):
    """The shipped model (speech_embedding+ge2e, a streaming form): each window of a file gets
    the frames the per-window path computes for it (two 80 ms grids, model.features.live), so
    nearly every window keeps its label; only the gate's reading and the gains of frames held
    from an earlier window differ, so a label changes only where two classes were nearly
    tied."""
    if not default_model_path().is_file():
        pytest.skip("the default model is not installed")
    predictor = Predictor.load()
    _, _, windows, _ = per_window_reference(predictor, recording)
    result = predictor.predict_file(recording)
    pairs = [(p, r) for (_, _, p), (_, _, r) in zip(result.windows, windows)]
    same = sum(p.label == r.label for p, r in pairs)
    assert same >= 0.95 * len(pairs)
    gaps = []
    for p, r in pairs:
        if p.speech and r.speech:
            gaps.append(float(np.max(np.abs(p.probs - r.probs))))
            top = np.sort(r.probs)
            assert p.label == r.label or top[-1] - top[-2] < 0.05
    assert np.median(gaps) < 0.01 and max(gaps) < 0.15


def test_a_long_file_is_read_once_in_bounded_blocks_never_whole(tiny, recording, monkeypatch):
    sizes: list[list[int]] = []

    def small_blocks(path):
        sizes.append([])
        for block in iter_audio(path, block_seconds=2.0):
            sizes[-1].append(block.size)
            yield block

    def refuse(*_args, **_kwargs):
        raise AssertionError("a long file must not be read whole")

    monkeypatch.setattr(file_timeline, "iter_audio", small_blocks)
    monkeypatch.setattr(file_timeline, "_overall_of_whole", refuse)
    result = tiny.predict_file(recording)
    assert len(sizes) == 1                                  # one read
    assert sum(sizes[0]) == round(result.duration_s * SAMPLE_RATE)
    assert len(sizes[0]) >= 180 // 2 and max(sizes[0]) <= 2 * SAMPLE_RATE + 512


def test_a_files_speech_segments_are_what_was_said(tiny, tmp_path):
    """Speech, 4 s of silence, speech: two segments, each starting where its speech does and
    labelled by the mean of its windows; they come out in the JSON form too."""
    rng = np.random.default_rng(5)
    speech = speech_like(tmp_path, 5.0, rate=SAMPLE_RATE, quiet=False)
    other = speech_like(tmp_path, 3.0, rate=SAMPLE_RATE, seed=4, quiet=False)
    wav = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), speech,
                          np.zeros(4 * SAMPLE_RATE, np.float32), other,
                          np.zeros(2 * SAMPLE_RATE, np.float32)])
    wav += (0.001 * rng.standard_normal(wav.size)).astype(np.float32)
    path = tmp_path / "two sentences.wav"
    sf.write(path, wav, SAMPLE_RATE, subtype="FLOAT")
    result = tiny.predict_file(path)
    assert len(result.segments) == 2
    first, second = result.segments
    assert 0.0 <= first.start_s <= 1.5 and 9.0 <= second.start_s <= 11.0
    assert 4.0 <= first.duration_s <= 7.0 and second.windows >= 2
    for seg in result.segments:
        assert seg.label == max(seg.probs, key=seg.probs.get) and seg.audio is None
    listed = file_result_to_dict(result, tiny.labels)["segments"]
    assert [s["start_s"] for s in listed] == [first.start_s, second.start_s]
    assert listed[1]["label"] == second.label


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
    if seconds == 180:       # reported window by window
        assert len(calls) > 100


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
