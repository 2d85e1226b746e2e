"""The file worker in its own thread: live windows keep flowing while a (slow) file is analysed,
progress per job, cancelling the running and queued jobs, files good and bad, torch threads,
and the Files tab's queue rows."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ser_studio.app.files.file_panel import FilePanel
from ser_studio.app.files.file_worker import FileThread, FileWorker, accepts_progress
from ser_studio.app.live.inference_thread import InferenceThread
from ser_studio.app.live.inference_worker import InferenceWorker
from ser_studio.model.audio.io import load_audio
from ser_studio.model.config.inference import InferenceConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference.prediction import FileResult, Prediction

LABELS = ["angry", "happy", "neutral", "sad"]


class SlowPredictor:
    """Stands in for a Predictor on a long file: ``steps`` windows of ``step_s`` each, reporting
    progress (when ``with_progress``) after every window."""

    name = "slow-fake"
    labels = LABELS
    checkpoint = SimpleNamespace(inference=InferenceConfig())

    def __init__(self, tmp: Path, *, steps: int = 40, step_s: float = 0.05,
                 with_progress: bool = True):
        self.checkpoint_path = tmp / "fake.safetensors"
        self.steps, self.step_s = steps, step_s
        self.steps_for: dict[str, int] = {}  # file name -> steps, where not ``steps``
        self.windows_done = 0
        if not with_progress:
            self.predict_file = self._predict_file_without_progress

    def predict_file(self, path, *, vad: bool = True, progress=None):
        total, steps = 3600.0, self.steps_for.get(Path(path).name, self.steps)
        for k in range(steps):
            time.sleep(self.step_s)
            self.windows_done += 1
            if progress is not None:
                progress((k + 1) * total / steps, total)
        probs = np.array([0.1, 0.6, 0.2, 0.1], dtype=np.float32)
        overall = Prediction(label="happy", probs=probs, attention=np.zeros(0),
                             attention_rate=0.0, speech=True, speech_ratio=1.0, latency_s=0.0)
        return FileResult(path=Path(path), duration_s=total, overall=overall,
                          windows=[(0.0, 3.0, overall)])

    def _predict_file_without_progress(self, path, *, vad: bool = True):
        return SlowPredictor.predict_file(self, path, vad=vad)


@pytest.fixture
def make_files(qtbot, tmp_path):
    """make_files(**SlowPredictor options, history=None) -> a started FileThread, model loaded."""
    made = []

    def make(history=None, **options):
        slow = SlowPredictor(tmp_path, **options)
        handle = FileThread(FileWorker(history=history, loader=lambda _path: slow))
        with qtbot.waitSignal(handle.worker.modelLoaded, timeout=5_000):
            handle.load_model("fake")
        handle.slow = slow
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.shutdown(5_000)


def _record(worker):
    events = []
    worker.started.connect(lambda job: events.append(("started", job)))
    worker.progress.connect(lambda job, done, total: events.append(("progress", job, done)))
    worker.fileResult.connect(lambda job, res, labels: events.append(("result", job)))
    worker.fileError.connect(lambda job, path, msg: events.append(("error", job, msg)))
    worker.cancelled.connect(lambda job: events.append(("cancelled", job)))
    return events


def test_live_windows_keep_flowing_while_a_file_is_analysed(qtbot, checkpoint_path, make_files,
                                                            speech_path):
    live = InferenceWorker()
    live_handle = InferenceThread(live)
    try:
        with qtbot.waitSignal(live.modelLoaded, timeout=20_000):
            live_handle.load_model(str(checkpoint_path))
        files = make_files(steps=60)  # a "one-hour" file taking 3 s
        events = _record(files.worker)
        results = []
        live.result.connect(results.append)
        files.analyse(["long.wav"])
        qtbot.waitUntil(lambda: ("started", 1) in events, timeout=5_000)
        wav = load_audio(speech_path)[:3 * SAMPLE_RATE]
        for k in range(4):  # one window at a time, each answered while the file runs
            n = len(results)
            live.submit(wav.copy(), wav.size + k * 8000)
            qtbot.waitUntil(lambda: len(results) > n, timeout=2_000)
        assert not any(e[0] == "result" for e in events), "the file finished before the windows"
        assert live.stale_dropped == 0
        qtbot.waitUntil(lambda: ("result", 1) in events, timeout=10_000)
    finally:
        assert live_handle.shutdown(3000)


def test_progress_then_cancel_running_and_queued(qtbot, make_files):
    files = make_files(steps=200)
    files.slow.steps_for["b.wav"] = 3
    events = _record(files.worker)
    jobs = files.analyse(["a.wav", "b.wav", "c.wav"])
    assert jobs == [1, 2, 3]
    qtbot.waitUntil(lambda: sum(e[0] == "progress" and e[1] == 1 for e in events) >= 2,
                    timeout=5_000)
    files.cancel(1)
    files.cancel(3)
    qtbot.waitUntil(lambda: ("cancelled", 1) in events, timeout=2_000)
    assert files.slow.windows_done < 200  # stopped between windows, not at the end
    qtbot.waitUntil(lambda: ("cancelled", 3) in events, timeout=5_000)
    assert ("result", 2) in events and ("started", 3) not in events
    assert ("result", 1) not in events
    done = [e[2] for e in events if e[0] == "progress" and e[1] == 1]
    assert done == sorted(done) and 0 < done[-1] < 3600


def test_a_predict_file_without_progress_still_works(qtbot, make_files, history):
    files = make_files(steps=3, with_progress=False, history=history)
    assert not accepts_progress(files.slow.predict_file)
    events = _record(files.worker)
    files.analyse(["old.wav"])
    qtbot.waitUntil(lambda: ("result", 1) in events, timeout=5_000)
    assert not any(e[0] == "progress" for e in events)
    qtbot.waitUntil(lambda: history.count() == 1, timeout=2_000)
    assert history.query()[0].label == "happy"


def test_files_good_and_bad(qtbot, checkpoint_path, speech_path, tmp_path, history):
    worker = FileWorker(history=history)
    handle = FileThread(worker)
    try:
        with qtbot.waitSignal(worker.modelLoaded, timeout=20_000):
            handle.load_model(str(checkpoint_path))
        bad = tmp_path / "broken.wav"
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
        files, errors = [], []
        worker.fileResult.connect(lambda job, res, labels: files.append((res, labels)))
        worker.fileError.connect(lambda job, path, msg: errors.append((path, msg)))
        handle.analyse([str(bad), str(speech_path)])
        qtbot.waitUntil(lambda: bool(files and errors), timeout=30_000)
        assert errors[0][0] == str(bad) and str(bad) in errors[0][1]
        res, labels = files[0]
        assert str(res.path) == str(speech_path) and res.overall.label in labels
        assert len(res.windows) >= 2
        rows = history.query(source=str(speech_path))
        assert len(rows) == 1 and rows[0].label == res.overall.label
    finally:
        assert handle.shutdown(3000)


def test_torch_threads_are_set_in_the_file_thread(qtbot, tmp_path):
    seen = []
    slow = SlowPredictor(tmp_path, steps=1, step_s=0.0)
    original = slow.predict_file
    slow.predict_file = lambda path, *, vad=True, progress=None: (
        seen.append((threading.get_ident(), torch.get_num_threads())),
        original(path, vad=vad, progress=progress))[1]
    worker = FileWorker(loader=lambda _p: slow, threads=2)
    handle = FileThread(worker)
    try:
        with qtbot.waitSignal(worker.modelLoaded, timeout=5_000):
            handle.load_model("fake")
        with qtbot.waitSignal(worker.fileResult, timeout=5_000):
            handle.analyse(["x.wav"])
        assert seen[0][0] != threading.get_ident() and seen[0][1] == 2
    finally:
        assert handle.shutdown(3000)
        torch.set_num_threads(1)  # torch hands the last count set to threads not yet run


def test_files_tab_shows_queue_rows_with_progress_and_cancel(qtbot, make_files):
    files = make_files(steps=100)
    files.slow.steps_for["next.wav"] = 2
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.set_labels(LABELS)
    panel.attach(files)
    panel.show()
    panel.analyse(["/music/long.wav", "/music/next.wav"])
    queue = panel.queue
    assert queue.isVisible() and queue.jobs() == [1, 2]
    assert queue.status(2) == "queued"
    qtbot.waitUntil(lambda: queue.status(1) == "analysing" and (queue.percent(1) or 0) > 0,
                    timeout=5_000)
    first = queue.percent(1)
    qtbot.waitUntil(lambda: queue.percent(1) > first, timeout=5_000)
    assert "of 1:00:00" in queue.table.cellWidget(0, 2).text()
    queue.table.cellWidget(0, 3).click()  # Cancel on the running file
    qtbot.waitUntil(lambda: queue.jobs() == [2], timeout=3_000)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=10_000)
    assert not queue.isVisible() and queue.table.rowCount() == 0
    assert panel.table.item(0, 0).text() == "next.wav"
    assert panel.table.item(0, 2).text() == "Happy"


def test_cancel_all_drops_every_job(qtbot, make_files):
    files = make_files(steps=400)
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.attach(files)
    cancelled = []
    panel.fileCancelled.connect(cancelled.append)
    panel.analyse(["a.wav", "b.wav", "c.wav"])
    qtbot.waitUntil(lambda: panel.queue.status(1) == "analysing", timeout=5_000)
    panel.queue.cancel_all.click()
    qtbot.waitUntil(lambda: not panel.queue.jobs(), timeout=3_000)
    assert sorted(cancelled) == ["a.wav", "b.wav", "c.wav"] and panel.table.rowCount() == 0


def test_the_window_keeps_listening_while_a_long_file_is_analysed(
        qtbot, monkeypatch, tmp_path, checkpoint_path, history, settings, speech_path,
        file_stream_factory):
    import ser_studio.app.files.file_worker as file_worker
    from ser_studio.app.shell.main_window import MainWindow

    slow = SlowPredictor(tmp_path, steps=100)
    monkeypatch.setattr(file_worker, "_default_loader", lambda _path: slow)
    window = MainWindow(model_path=str(checkpoint_path), history=history, settings=settings,
                        stream_factory=file_stream_factory(speech_path, loop=True))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=20_000)
    window.start_listening()
    qtbot.waitUntil(lambda: window.live_panel._result is not None, timeout=10_000)
    window.analyse_files(["/recordings/one_hour.wav", "/recordings/later.wav"])
    queue = window.file_panel.queue
    assert queue.isVisible() and queue.status(2) == "queued"
    qtbot.waitUntil(lambda: (queue.percent(1) or 0) > 10, timeout=5_000)
    end = window.live_panel._result.end
    qtbot.waitUntil(lambda: window.live_panel._result.end > end + SAMPLE_RATE, timeout=3_000)
    assert 1 in queue.jobs() and slow.windows_done < 100  # the file is still running
    started = time.monotonic()
    window.close()  # cancels the file at its next window; never waits long
    assert time.monotonic() - started < 2.0
    assert not window.files.thread.isRunning() and not window.inference.thread.isRunning()


def test_adapt_to_the_files_speaker(qtbot, checkpoint_path, speech_path):
    """With the Files tab's checkbox on, a file is scored with its own speaker's profile (other
    probabilities than without), and the training statistics are used again afterwards."""
    from ser_studio.model.inference.predictor import Predictor

    predictor = Predictor.load(checkpoint_path)
    handle = FileThread(FileWorker(loader=lambda _path: predictor))
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.attach(handle)
    try:
        with qtbot.waitSignal(handle.worker.modelLoaded, timeout=10_000):
            handle.load_model("random")
        results = []
        handle.worker.fileResult.connect(lambda job, res, labels: results.append(res))
        for adapt in (False, True):
            panel.adapt.setChecked(adapt)
            assert handle.worker.adapt_speaker is adapt
            handle.analyse([speech_path])
            qtbot.waitUntil(lambda: len(results) == int(adapt) + 1, timeout=30_000)
        plain, adapted = (r.overall.probs for r in results)
        assert not np.allclose(plain, adapted, atol=1e-4)
        assert torch.allclose(predictor._mean, torch.full_like(predictor._mean, -6.0))
    finally:
        handle.shutdown(2_000)
