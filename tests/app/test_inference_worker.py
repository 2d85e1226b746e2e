"""The inference worker in its own thread: newest-window policy, VAD gating, segments to
history (and what the live view is told about each stored segment), model loading off the GUI
thread. Files: tests/app/test_file_worker.py."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ser_studio.app.live.inference_thread import InferenceThread
from ser_studio.app.live.inference_worker import InferenceWorker
from ser_studio.app.shell.torch_threads import THREADS_ENV, inference_threads
from ser_studio.model.audio import vad as vad_mod
from ser_studio.model.audio.io import load_audio
from ser_studio.model.config.inference import InferenceConfig
from ser_studio.model.constants import SAMPLE_RATE


@pytest.fixture
def service(qtbot, checkpoint_path, history):
    worker = InferenceWorker(history=history)
    handle = InferenceThread(worker)
    with qtbot.waitSignal(worker.modelLoaded, timeout=20_000) as loaded:
        handle.load_model(str(checkpoint_path))
    handle.info = loaded.args[0]
    yield handle
    assert handle.shutdown(3000)


def _results(worker):
    out = []
    worker.result.connect(out.append)
    return out


def test_model_loads_in_the_worker_thread(qtbot, checkpoint_path):
    worker = InferenceWorker()
    handle = InferenceThread(worker)
    seen = {}
    worker.modelLoaded.connect(lambda info: seen.update(
        info=info, thread=threading.get_ident()), type=0)
    original = worker._loader

    def spy(path):
        seen["load_thread"] = threading.get_ident()
        return original(path)

    worker._loader = spy
    with qtbot.waitSignal(worker.modelLoaded, timeout=20_000):
        handle.load_model(str(checkpoint_path))
    assert seen["load_thread"] != threading.get_ident()
    assert seen["info"].labels == ["angry", "happy", "neutral", "sad"]
    assert seen["info"].facts["metrics"]["note"] == "random weights"
    assert handle.shutdown(3000)


def test_bad_model_gives_an_error_naming_it(qtbot, tmp_path):
    worker = InferenceWorker()
    handle = InferenceThread(worker)
    bogus = tmp_path / "nothing.safetensors"
    with qtbot.waitSignal(worker.modelError, timeout=10_000) as err:
        handle.load_model(str(bogus))
    assert str(bogus) in err.args[0]
    assert handle.shutdown(3000)


def test_stale_windows_are_dropped_and_the_newest_is_analysed(qtbot, service, speech_path):
    worker = service.worker
    results = _results(worker)
    wav = load_audio(speech_path)
    ends = []
    for k in range(20):  # twenty windows at once: far faster than the model runs
        end = 5 * SAMPLE_RATE + k * 800
        ends.append(end)
        worker.submit(np.roll(wav, k * 800)[:5 * SAMPLE_RATE].copy(), end)
    qtbot.waitUntil(lambda: bool(results) and results[-1].end == ends[-1], timeout=20_000)
    qtbot.wait(300)
    assert worker.stale_dropped >= 10
    assert len(results) + worker.stale_dropped == 20
    assert results[-1].stale_dropped == worker.stale_dropped
    r = results[-1]
    assert r.speech and r.label in r.labels
    assert r.probs.shape == (4,) and r.probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert r.attention.size > 0 and r.attention_rate == pytest.approx(100 / 3)
    assert r.latency_s > 0 and r.age_s >= r.latency_s


def test_silence_is_no_speech(qtbot, service):
    results = _results(service.worker)
    service.worker.submit(np.zeros(5 * SAMPLE_RATE, dtype=np.float32), 5 * SAMPLE_RATE)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert results[0].label is None and not results[0].speech
    assert np.all(results[0].probs == 0) and results[0].confidence == 0.0


def _feed_stream(qtbot, worker, stream, results, hop=8000, window=5 * SAMPLE_RATE):
    """Submit the windows a recorder would emit over ``stream``, waiting for each result."""
    for end in range(hop, stream.size + 1, hop):
        n = len(results)
        worker.submit(stream[max(0, end - window):end].copy(), end)
        qtbot.waitUntil(lambda: len(results) > n, timeout=10_000)


def test_speech_segment_becomes_one_history_row(qtbot, service, speech_path, history):
    worker = service.worker
    results = _results(worker)
    speech = load_audio(speech_path)
    silence = np.zeros(6 * SAMPLE_RATE, dtype=np.float32)
    stream = np.concatenate([silence[:SAMPLE_RATE], speech, silence])
    with qtbot.waitSignal(worker.historyAdded, timeout=60_000) as added:
        _feed_stream(qtbot, worker, stream, results)
    rows = history.query()
    assert len(rows) == 1 and rows[0].id == added.args[0]
    row = rows[0]
    assert row.source == "microphone" and row.label in ["angry", "happy", "neutral", "sad"]
    assert row.model == service.info.name
    assert sum(row.probs.values()) == pytest.approx(1.0, abs=1e-3)
    spoken = speech.size / SAMPLE_RATE
    assert spoken - 1.0 <= row.duration_s <= spoken + 1.0
    clip = history.audio(row.id)
    assert clip is not None and abs(clip.size / SAMPLE_RATE - row.duration_s) < 0.01
    assert any(r.speech for r in results) and not results[-1].speech


@pytest.mark.parametrize("keep_audio", [True, False])
def test_stopping_stores_the_open_segment(qtbot, service, speech_path, history, keep_audio):
    worker = service.worker
    worker.keep_audio = keep_audio
    results = _results(worker)
    speech = load_audio(speech_path)
    _feed_stream(qtbot, worker, speech[:3 * SAMPLE_RATE], results)
    assert history.count() == 0
    with qtbot.waitSignal(worker.historyAdded, timeout=10_000):
        service.end_segment()
    row = history.query()[0]
    assert row.source == "microphone" and row.has_audio == keep_audio


def test_smoothing_averages_recent_speech_windows(qtbot, service, speech_path):
    worker = service.worker
    results = _results(worker)
    speech = load_audio(speech_path)
    service.set_smoothing(3)
    _feed_stream(qtbot, worker, speech, results)
    speechy = [r for r in results if r.speech]
    assert len(speechy) >= 4
    expected = np.mean([r.raw_probs for r in speechy[-3:]], axis=0)
    np.testing.assert_allclose(speechy[-1].probs, expected, atol=1e-6)


def test_without_a_model_windows_still_come_back(qtbot):
    worker = InferenceWorker()
    handle = InferenceThread(worker)
    results = _results(worker)
    worker.submit(np.ones(800, dtype=np.float32) * 0.1, 800)
    qtbot.waitUntil(lambda: bool(results), timeout=5_000)
    assert not results[0].model_loaded and results[0].wav.size == 800
    assert handle.shutdown(3000)


def test_live_speech_detection_runs_once_per_sample(qtbot, service, speech_path, monkeypatch):
    worker = service.worker
    fed, whole_window_calls, network_calls = [], [], []
    detector = worker._engine._track._stream
    stream_feed = detector.feed
    monkeypatch.setattr(detector, "feed", lambda x: (fed.append(x.size), stream_feed(x))[1])
    monkeypatch.setattr(vad_mod.VoiceActivityDetector, "speech_spans",
                        lambda self, wav: whole_window_calls.append(wav.size) or [])
    prediction_of = worker.predictor.prediction_of  # the network, no VAD inside
    monkeypatch.setattr(worker.predictor, "prediction_of", lambda *a, **kw: (
        network_calls.append(1), prediction_of(*a, **kw))[1])
    results = _results(worker)
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    stream = np.concatenate([silence, load_audio(speech_path), silence])
    stream = stream[:stream.size // 8000 * 8000]
    _feed_stream(qtbot, worker, stream, results)
    assert sum(fed) == stream.size and not whole_window_calls
    assert network_calls  # the network only, on speech windows only
    assert len(network_calls) == sum(r.speech for r in results)
    monkeypatch.undo()
    for r in results:  # the verdicts of silero re-run over each whole window, as before
        assert abs(r.speech_ratio - vad_mod.speech_ratio(r.wav)) <= 0.1
        assert r.speech == vad_mod.has_speech(r.wav)


def test_torch_threads_are_set_in_the_worker_thread(qtbot, checkpoint_path, speech_path):
    seen = []

    def loader(path):
        from ser_studio.model.inference.predictor import Predictor

        predictor = Predictor.load(path)
        for name in ("prediction_of",):
            method = getattr(predictor, name)
            setattr(predictor, name, lambda *a, _m=method, _n=name, **kw: (
                seen.append((_n, torch.get_num_threads())), _m(*a, **kw))[1])
        return predictor

    worker = InferenceWorker(loader=loader, threads=2)
    handle = InferenceThread(worker)
    try:
        with qtbot.waitSignal(worker.modelLoaded, timeout=20_000):
            handle.load_model(str(checkpoint_path))
        results = _results(worker)
        wav = load_audio(speech_path)[:3 * SAMPLE_RATE]
        worker.submit(wav, wav.size)
        qtbot.waitUntil(lambda: bool(results), timeout=10_000)
        assert seen == [("prediction_of", 2)]  # files: tests/app/test_file_worker.py
    finally:
        assert handle.shutdown(3000)
        # torch hands the last count set anywhere to threads that have not run it yet
        torch.set_num_threads(1)


@pytest.mark.parametrize("text,expected", [(None, 1), ("", 1), ("3", 3), (" 2 ", 2),
                                           ("0", 1), ("-2", 1), ("two", 1)])
def test_thread_count_comes_from_the_environment(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, text)
    assert inference_threads() == expected
    assert InferenceWorker().threads == expected


class _ScriptedVad:
    """SpeechTrack stand-in: the windows listed in ``speech`` (by end sample) are all speech."""

    def __init__(self, speech_ends):
        self.speech_ends = set(speech_ends)

    def feed(self, samples, end):
        self.end = end
        return np.zeros(0, np.float32)

    def ratio(self, start, end):
        return 1.0 if self.end in self.speech_ends else 0.0

    def reset(self):
        pass


class _ScriptedPredictor:
    """Predictor stand-in whose speech windows give the listed probabilities in turn."""

    name = "scripted"
    labels = ["angry", "happy", "neutral", "sad"]
    attention_rate = 10.0
    checkpoint = SimpleNamespace(inference=InferenceConfig())

    def __init__(self, tmp_path, probs):
        self.checkpoint_path = tmp_path / "scripted.safetensors"
        self.probs = [np.asarray(p, dtype=np.float32) for p in probs]

    def level(self, wav):
        return None

    def live_stream(self, hop=None):
        return None  # no feature cache: windows are computed whole

    def window_features(self, wav, *, live=None, end=None):
        return wav, None, 0

    def windows_features(self, wavs, *, live=None, ends=None):
        return [self.window_features(wav) for wav in wavs]

    def no_speech(self, ratio, started, wav):
        from ser_studio.model.inference.prediction import Prediction

        return Prediction(label=None, probs=np.zeros(len(self.labels), np.float32),
                          attention=np.zeros(0), attention_rate=self.attention_rate,
                          speech=False, speech_ratio=ratio, latency_s=0.0)

    def prediction_of(self, feats, level, offset, ratio, started):
        return self.predict(feats, vad=False)

    def predict(self, wav, *, vad=True):
        from ser_studio.model.inference.prediction import Prediction

        probs = self.probs.pop(0)
        return Prediction(label=self.labels[int(np.argmax(probs))], probs=probs,
                          attention=np.zeros(0), attention_rate=self.attention_rate,
                          speech=True, speech_ratio=1.0, latency_s=0.0)


def test_the_live_view_shows_the_closed_segment_exactly_as_stored(qtbot, tmp_path, history):
    from ser_studio.app.history.history_widgets import HistoryTableModel
    from ser_studio.app.live.live_panel import LivePanel

    window_probs = [[0.1, 0.7, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.2, 0.6]]
    hop, n = SAMPLE_RATE // 2, SAMPLE_RATE
    ends = [hop * (k + 1) for k in range(5)]  # three speech windows, then two silent ones
    worker = InferenceWorker(history=history, loader=lambda _p: _ScriptedPredictor(
        tmp_path, window_probs))
    handle = InferenceThread(worker)
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    worker.result.connect(panel.set_result)
    worker.segmentClosed.connect(panel.set_segment)
    panel.set_listening(True)
    try:
        with qtbot.waitSignal(worker.modelLoaded, timeout=5_000):
            handle.load_model("scripted")
        worker._engine._track = _ScriptedVad(ends[:3])
        results = _results(worker)
        with qtbot.waitSignal(worker.segmentClosed, timeout=5_000) as closed:
            _feed_stream(qtbot, worker, np.full(ends[-1], 0.1, dtype=np.float32), results,
                         hop=hop, window=n)
    finally:
        assert handle.shutdown(3000)
    mean = np.mean(window_probs, axis=0)  # happy 47 % (the last window alone: sad 60 %)
    assert results[2].label == "sad" and results[2].confidence == pytest.approx(0.6)
    seg = closed.args[0]
    assert seg.label == "happy" and seg.windows == 3
    row = history.query()[0]
    assert row.label == seg.label == "happy"
    np.testing.assert_allclose([row.probs[k] for k in worker.predictor.labels], mean, atol=1e-6)
    table = HistoryTableModel()
    shown = f"{table._text(row, 2)} {table._text(row, 3)}"
    assert shown == "happy 47%"
    expected = f"Last segment (3 windows, {row.duration_s:.1f} s): {shown}"
    qtbot.waitUntil(lambda: panel.headline.segment.text() == expected, timeout=2_000)


@pytest.fixture(scope="module")
def streaming_predictor(tmp_path_factory):
    """A random-weights network on the speech_embedding+ge2e frontend (real wheel files)."""
    from ser_studio.model.config.schema import FrontendConfig, ModelConfig
    from ser_studio.model.inference.predictor import Predictor
    from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
    from ser_studio.model.networks.registry import build_network

    torch.manual_seed(0)
    cfg = ModelConfig(arch="baseline", input_dim=352, n_classes=4, hidden=32, attn_heads=4)
    ckpt = Checkpoint(frontend=FrontendConfig(name="speech_embedding+ge2e"), model=cfg,
                      train=None, labels=["angry", "happy", "neutral", "sad"],
                      norm_mean=[0.0] * 352, norm_std=[1.0] * 352, metrics={},
                      state_dict=build_network(cfg).state_dict())
    path = save_checkpoint(ckpt, tmp_path_factory.mktemp("se_ge2e") / "model.safetensors")
    return Predictor.load(path)


def _voiced(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t))) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.clip(np.sin(8 * np.pi * t), 0, 1)
    return (0.1 * wav + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def test_live_windows_use_the_stream_feature_cache(streaming_predictor, monkeypatch):
    predictor = streaming_predictor
    worker = InferenceWorker(loader=lambda _p: predictor, threads=1)
    worker.load_model("")  # driven in this thread: the calls a QThread would get
    worker._engine._track = _ScriptedVad(range(0, 10 ** 7, 8000))  # every window is speech
    whole = []  # windows whose frontend ran over the whole window (the full path)
    monkeypatch.setattr(predictor.frontend, "with_level",
                        lambda wav: whole.append(wav.size) or type(predictor.frontend)
                        .with_level(predictor.frontend, wav))
    results = _results(worker)
    stream, hop = _voiced(8.0), 8000
    for end in range(2 * hop, stream.size + 1, hop):
        worker._live(stream[max(0, end - 5 * SAMPLE_RATE):end].copy(), end, 0.0)
    cache = worker._engine._features
    assert whole == [] and all(r.speech for r in results)
    assert (cache.refills, cache.updates) == (1, len(results) - 1)
    last = results[-1]  # the window's level is measured as the full path measures it, on
    full = predictor.window_features(last.wav)[1]  # the window high-passed with the stream
    assert last.level.peak_dbfs == full.peak_dbfs
    assert abs(last.level.loudness_lufs - full.loudness_lufs) < 1e-4
    assert abs(last.level.gain_db - full.gain_db) < 1e-4
    assert 0 <= last.attention_offset_s * SAMPLE_RATE < 1280  # the first frame on the grid
    worker.end_segment()  # listening stopped or restarted (another device, other settings)
    worker._live(stream[-5 * SAMPLE_RATE:].copy(), stream.size, 0.0)
    assert cache.refills == 2 and cache.last["fresh"] == 1
    worker.load_model("")  # another model: another cache
    assert worker._engine._features is not cache and worker._engine._features.refills == 0


def test_keep_adapting_grows_saves_and_applies_the_live_profile(qtbot, service, speech_path,
                                                                tmp_path, monkeypatch):
    from ser_studio.app.calibration import profiles
    from ser_studio.model.adaptation.live import SlowAdaptation

    monkeypatch.setattr(SlowAdaptation.__init__, "__defaults__", (None, 1.0))  # 1 s updates
    worker = service.worker
    training_mean = worker.predictor._mean.clone()
    changed, results = [], _results(worker)
    worker.profileChanged.connect(changed.append)
    service.set_adapting(True, tmp_path, "USB mic")
    speech = load_audio(speech_path)
    _feed_stream(qtbot, worker, np.concatenate([speech, speech])[:8 * SAMPLE_RATE], results)
    qtbot.waitUntil(lambda: len(changed) >= 2, timeout=10_000)
    seconds = [c.speech_seconds for c in changed]
    assert seconds == sorted(seconds) and seconds[0] >= 1.0  # grows, update by update
    path = profiles.profile_path(tmp_path, "USB mic", worker.predictor.model_sha1())
    assert changed[-1].path == str(path) and path.is_file()
    assert not torch.allclose(worker.predictor._mean, training_mean)
    service.set_adapting(False, tmp_path, "USB mic")
    qtbot.wait(200)
    n = len(changed)
    _feed_stream(qtbot, worker, speech[:3 * SAMPLE_RATE], results)
    assert len(changed) == n  # off: no more updates


def test_live_and_file_analysis_give_the_same_window_probabilities(streaming_predictor, tmp_path,
                                                                   speech_path):
    """The same audio as a file (5 s windows every 0.5 s) and as live windows through the
    worker: one engine, so the same speech verdicts and ratios and, bit for bit, the same
    probabilities, window by window."""
    import soundfile as sf

    from ser_studio.model.audio.io import window_spans

    speech = load_audio(speech_path)
    wav = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), speech,
                          np.zeros(7 * SAMPLE_RATE, np.float32), 0.3 * speech])
    wav += (0.002 * np.random.default_rng(2).standard_normal(wav.size)).astype(np.float32)
    path = tmp_path / "both ways.wav"
    sf.write(path, wav, SAMPLE_RATE, subtype="FLOAT")
    result = streaming_predictor.predict_file(path, window_s=5.0, hop_s=0.5)
    worker = InferenceWorker(loader=lambda _p: streaming_predictor, threads=1)
    worker.load_model("")
    results = _results(worker)
    spans = window_spans(wav.size, 5 * SAMPLE_RATE, SAMPLE_RATE // 2)
    for start, end in spans:
        worker._live(wav[start:end].copy(), end, 0.0)
    assert len(results) == len(result.windows) == len(spans)
    for live, (_, _, filed) in zip(results, result.windows):
        assert (live.speech, live.speech_ratio) == (filed.speech, filed.speech_ratio)
        np.testing.assert_array_equal(live.raw_probs, filed.probs)
        np.testing.assert_array_equal(live.attention, filed.attention)
    assert 0 < sum(r.speech for r in results) < len(results)
