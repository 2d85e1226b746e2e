"""Each branch of the app's workers and controllers (issue 21 item 7): a file job cancelled
mid-run when predict_file reports no progress, a job with no model, stop() dropping queued work,
a file's speaker profile reset after a cancelled or failed adapted run (and a file too short for
one), the live worker applying the new input's saved profile or none (never the old input's),
adapting following the new input, a failed calibration keeping the profile in use, a model change
dropping the adaptation, and the window doing the same when the Input box changes while a
profile applies. Worker slots are driven directly in the test thread."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ser_studio.app.calibration.profiles import profile_path
from ser_studio.app.files.file_worker import FileWorker
from ser_studio.app.live.devices import InputDevice
from ser_studio.app.live.inference_worker import InferenceWorker
from ser_studio.model.adaptation.profile import ProfileError, make_profile
from ser_studio.model.audio.io import load_audio
from ser_studio.model.config.inference import InferenceConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference.prediction import FileResult, Prediction
from ser_studio.model.inference.predictor import Predictor

LABELS = ["angry", "happy", "neutral", "sad"]
CHECKPOINT_MEAN = -6.0  # tests/app/conftest.py make_checkpoint's norm_mean


# -- the file worker ---------------------------------------------------------------------------
class FakeFilePredictor:
    """A Predictor stand-in for the file worker: ``during(path)`` runs inside predict_file (to
    cancel or fail mid-run); ``profiles`` lists every use_profile argument in order."""

    name = "fake"
    labels = LABELS
    checkpoint_path = Path("fake.safetensors")
    checkpoint = SimpleNamespace(inference=InferenceConfig())

    def __init__(self, *, with_progress: bool = True, during=None):
        self.during = during or (lambda path: None)
        self.profiles: list = []
        self.calls = 0
        if not with_progress:
            self.predict_file = self._without_progress

    def use_profile(self, profile, source="profile") -> None:
        self.profiles.append(profile)

    def predict_file(self, path, *, vad: bool = True, progress=None):
        self.calls += 1
        if progress is not None:
            progress(1.0, 4.0)
        self.during(path)
        if progress is not None:
            progress(4.0, 4.0)
        probs = np.array([0.1, 0.6, 0.2, 0.1], dtype=np.float32)
        overall = Prediction(label="happy", probs=probs, attention=np.zeros(0),
                             attention_rate=0.0, speech=True, speech_ratio=1.0, latency_s=0.0)
        return FileResult(path=Path(path), duration_s=4.0, overall=overall,
                          windows=[(0.0, 4.0, overall)])

    def _without_progress(self, path, *, vad: bool = True):
        return FakeFilePredictor.predict_file(self, path, vad=vad)


def file_worker(predictor, history=None) -> tuple[FileWorker, list]:
    """A FileWorker (not moved to a thread) with ``predictor`` loaded, and its events."""
    worker = FileWorker(history=history, loader=lambda _path: predictor, threads=1)
    worker.load_model("fake")
    events = []
    worker.started.connect(lambda job: events.append(("started", job)))
    worker.fileResult.connect(lambda job, res, labels: events.append(("result", job)))
    worker.fileError.connect(lambda job, path, msg: events.append(("error", job, msg)))
    worker.cancelled.connect(lambda job: events.append(("cancelled", job)))
    return worker, events


def test_a_job_cancelled_mid_run_without_progress_discards_its_result(history):
    """predict_file without a progress callback cannot be stopped; cancelling while it runs
    drops its result (no fileResult, no history row) and the next job runs normally."""
    holder = {}
    predictor = FakeFilePredictor(with_progress=False,
                                  during=lambda path: path == "a.wav" and holder["w"].cancel(1))
    worker, events = file_worker(predictor, history)
    holder["w"] = worker
    worker.analyse(1, "a.wav")
    worker.analyse(2, "b.wav")
    assert events == [("started", 1), ("cancelled", 1), ("started", 2), ("result", 2)]
    assert history.count() == 1


def test_a_job_cancelled_mid_run_with_progress_stops_at_the_next_window(history):
    holder = {}
    predictor = FakeFilePredictor(during=lambda path: holder["w"].cancel(1))
    worker, events = file_worker(predictor, history)
    holder["w"] = worker
    progress = []
    worker.progress.connect(lambda job, done, total: progress.append(done))
    worker.analyse(1, "a.wav")
    assert events == [("started", 1), ("cancelled", 1)]
    assert progress == [1.0]  # the second window's report raised FileCancelled instead
    assert history.count() == 0


def test_a_job_without_a_model_is_an_error_naming_the_file():
    worker = FileWorker(loader=lambda _path: None, threads=1)
    errors, started = [], []
    worker.fileError.connect(lambda job, path, msg: errors.append((job, msg)))
    worker.started.connect(started.append)
    worker.analyse(4, "talk.wav")
    assert errors == [(4, "talk.wav: no model is loaded; open a model first")] and started == []


def test_a_failed_model_load_keeps_the_model_it_had():
    first = FakeFilePredictor()
    loads = iter([first, OSError("disk gone")])

    def loader(_path):
        item = next(loads)
        if isinstance(item, Exception):
            raise item
        return item

    worker = FileWorker(loader=loader, threads=1)
    errors = []
    worker.modelError.connect(errors.append)
    worker.load_model("a")
    worker.load_model("b")
    assert worker.predictor is first and errors == ["Cannot load model b for files: disk gone"]


def test_stop_drops_queued_jobs_and_later_model_loads():
    predictor = FakeFilePredictor()
    worker, events = file_worker(predictor)
    loaded = []
    worker.modelLoaded.connect(loaded.append)
    worker.stop()
    worker.analyse(1, "a.wav")
    worker.load_model("other")
    assert events == [("cancelled", 1)] and predictor.calls == 0 and loaded == []


@pytest.fixture
def fake_profile(monkeypatch):
    """make_profile/load_audio for the adapted file path replaced: ``fake_profile.fail`` set to
    a ProfileError makes the file too short for a profile."""
    from ser_studio.model.adaptation import profile as profile_module
    from ser_studio.model.audio import io as audio_io

    class Made:
        speech_seconds = 12.0

    state = type("State", (), {"fail": None, "made": Made()})()

    def fake_make(predictor, pieces):
        if state.fail is not None:
            raise state.fail
        return state.made

    monkeypatch.setattr(profile_module, "make_profile", fake_make)
    monkeypatch.setattr(audio_io, "load_audio", lambda path: np.zeros(SAMPLE_RATE, np.float32))
    return state


@pytest.mark.parametrize("how", ["cancelled", "failed"])
def test_the_files_speaker_profile_is_reset_after_a_cancelled_or_failed_run(fake_profile, how):
    holder = {}

    def during(path):
        if how == "cancelled":
            holder["w"].cancel(1)
        else:
            raise RuntimeError("decoder broke")

    predictor = FakeFilePredictor(during=during)
    worker, events = file_worker(predictor)
    holder["w"] = worker
    worker.adapt_speaker = True
    worker.analyse(1, "a.wav")
    assert predictor.profiles == [fake_profile.made, None]  # used, then the training stats
    if how == "cancelled":
        assert events == [("started", 1), ("cancelled", 1)]
    else:
        assert events == [("started", 1), ("error", 1, "a.wav: decoder broke")]


def test_a_file_too_short_for_a_profile_is_scored_without_one(fake_profile):
    fake_profile.fail = ProfileError("a.wav: only 1.0 s of speech")
    predictor = FakeFilePredictor()
    worker, events = file_worker(predictor)
    worker.adapt_speaker = True
    worker.analyse(1, "a.wav")
    assert events == [("started", 1), ("result", 1)] and predictor.profiles == []


# -- the live worker's speaker profiles ----------------------------------------------------------
def is_training_mean(predictor) -> bool:
    return bool(torch.allclose(predictor._mean, torch.full_like(predictor._mean,
                                                                CHECKPOINT_MEAN)))


@pytest.fixture
def profiles(checkpoint_path, speech_path, tmp_path):
    """Saved profiles in tmp_path/profiles: "Mic A" from the whole speech file, "Mic C" from
    its first 1.5 s repeated, none for "Mic B". Returns (folder, {name: its mean (D,)})."""
    predictor = Predictor.load(checkpoint_path)
    speech = load_audio(speech_path)
    short = np.tile(speech[:int(1.5 * SAMPLE_RATE)], 3)
    folder, means = tmp_path / "profiles", {}
    folder.mkdir()
    for name, wav in (("Mic A", speech), ("Mic C", short)):
        profile = make_profile(predictor, [wav])
        profile.save(profile_path(folder, name, predictor.model_sha1()))
        predictor.use_profile(profile)
        means[name] = predictor._mean.clone()
        predictor.use_profile(None)
    assert not torch.allclose(means["Mic A"], means["Mic C"])
    return folder, means


@pytest.fixture
def live_worker(checkpoint_path):
    """An InferenceWorker (not moved to a thread) with its own Predictor of the checkpoint,
    and the profileChanged/profileError it emitted."""
    worker = InferenceWorker(loader=lambda _path: Predictor.load(checkpoint_path), threads=1)
    worker.load_model("random")
    worker.changed, worker.errors = [], []
    worker.profileChanged.connect(worker.changed.append)
    worker.profileError.connect(worker.errors.append)
    return worker


def test_another_input_gets_its_own_profile_or_none_never_the_old_ones(live_worker, profiles):
    folder, means = profiles
    worker = live_worker
    worker.apply_profile(str(folder), "Mic A")
    assert torch.allclose(worker.predictor._mean, means["Mic A"])
    worker.apply_profile(str(folder), "Mic B")  # no profile saved: the training statistics
    assert worker.changed[-1] is None and is_training_mean(worker.predictor)
    worker.apply_profile(str(folder), "Mic C")
    assert worker.changed[-1].device == "Mic C"
    assert torch.allclose(worker.predictor._mean, means["Mic C"])
    worker.apply_profile(str(folder), "Mic B")
    assert worker.changed[-1] is None and is_training_mean(worker.predictor)
    assert worker.errors == []


def test_a_broken_profile_falls_back_to_the_training_statistics(live_worker, profiles):
    folder, means = profiles
    worker = live_worker
    worker.apply_profile(str(folder), "Mic A")
    profile_path(folder, "Mic C", worker.predictor.model_sha1()).write_text("{not json")
    worker.apply_profile(str(folder), "Mic C")
    assert len(worker.errors) == 1 and worker.errors[0].startswith("Speaker profile: ")
    assert worker.changed[-1] is None and is_training_mean(worker.predictor)


def test_a_failed_calibration_keeps_the_profile_in_use(live_worker, profiles):
    folder, means = profiles
    worker = live_worker
    worker.apply_profile(str(folder), "Mic A")
    n = len(worker.changed)
    worker.make_profile([np.zeros(2 * SAMPLE_RATE, np.float32)], str(folder), "Mic A")
    assert len(worker.errors) == 1 and len(worker.changed) == n  # no speech: nothing changes
    assert torch.allclose(worker.predictor._mean, means["Mic A"])


def test_adapting_follows_the_input_and_a_model_change_drops_it(live_worker, profiles):
    folder, means = profiles
    worker = live_worker
    worker.set_adapting(True, str(folder), "Mic A")
    assert worker._adapting.device == "Mic A"
    worker.set_adapting(True, str(folder), "Mic C")
    assert worker._adapting.device == "Mic C"
    assert worker._adapting.path == profile_path(folder, "Mic C", worker.predictor.model_sha1())
    worker.apply_profile(str(folder), "Mic C")  # a profile op restarts adaptation from the file
    assert worker._adapting.device == "Mic C"
    worker.load_model("another")  # until the new model's saved profile is applied
    assert worker._adapting is None
    worker.set_adapting(False, str(folder), "Mic C")
    worker.apply_profile(str(folder), "Mic C")
    assert worker._adapting is None


def test_profile_ops_are_ignored_once_stopping_and_refused_without_a_model(tmp_path):
    worker = InferenceWorker(loader=lambda _path: None, threads=1)
    changed, errors = [], []
    worker.profileChanged.connect(changed.append)
    worker.profileError.connect(errors.append)
    worker.apply_profile(str(tmp_path), "Mic A")
    assert errors == ["No model is loaded, so there is nothing to calibrate."]
    worker.stop()
    worker.reset_profile(str(tmp_path), "Mic A")
    assert len(errors) == 1 and changed == []


# -- the window: the Input box changes while a profile applies ----------------------------------
def test_changing_the_input_while_a_profile_applies_ends_on_the_new_inputs(
        qtbot, make_window, checkpoint_path, speech_path, tmp_path):
    """Switching A -> B -> C -> B without waiting: the worker takes the requests in order and
    ends on B's (none: the training statistics), never A's or C's; adapting follows B."""
    devices = [InputDevice(3, "Mic A", "ALSA", 1, 16000.0, False),
               InputDevice(5, "Mic B", "ALSA", 1, 48000.0, False),
               InputDevice(7, "Mic C", "ALSA", 1, 44100.0, False)]
    sha1 = Predictor.load(checkpoint_path).model_sha1()
    folder = tmp_path / "profiles"
    folder.mkdir()
    predictor = Predictor.load(checkpoint_path)
    for dev in (devices[0], devices[2]):
        profile = make_profile(predictor, [load_audio(speech_path)])
        profile.save(profile_path(folder, dev.label(), sha1))
    window = make_window()
    calibration, controls = window.calibration, window.controls
    calibration.badge.adapting.setChecked(True)
    qtbot.waitUntil(lambda: controls.device.count() > 0 and controls.refresh.isEnabled(),
                    timeout=10_000)  # the window's own device scan has reported
    controls._on_devices(devices, "")  # as a device scan reports them
    changed = []
    window.inference.worker.profileChanged.connect(changed.append)
    for pos in (1, 2, 3):
        controls.device.setCurrentIndex(pos)
    assert controls.current_device_text() == devices[2].label()
    controls.device.setCurrentIndex(2)
    expected = [devices[0].label(), None, devices[2].label(), None]

    def last_four() -> list:  # earlier ones: the window's own applies at start
        return [c.device if c else None for c in changed[-4:]]

    qtbot.waitUntil(lambda: last_four() == expected, timeout=20_000)
    n = len(changed)
    qtbot.wait(200)
    assert len(changed) == n  # nothing applied after B's
    worker = window.inference.worker
    qtbot.waitUntil(lambda: worker._adapting is not None
                    and worker._adapting.device == devices[1].label(), timeout=10_000)
    assert calibration.active is None and calibration.badge.text.text().startswith("Adapting")
    assert is_training_mean(worker.predictor)


# -- the listening session -----------------------------------------------------------------------
class FakeInference:
    """What Listening needs of an InferenceThread: worker.submit and end_segment (counted)."""

    def __init__(self):
        self.windows = 0
        self.segments_ended = 0
        self.worker = self

    def submit(self, wav, end) -> None:
        self.windows += 1

    def end_segment(self) -> None:
        self.segments_ended += 1


def listening_on(qtbot, factory):
    """A Listening on ``factory`` (a Recorder stream_factory) and its state/fallback signals."""
    from ser_studio.app.live.listening import Listening

    listening = Listening(FakeInference(), stream_factory=factory)
    listening.states, listening.fallbacks = [], []
    listening.state.connect(listening.states.append)
    listening.fallback.connect(lambda dev, label: listening.fallbacks.append(dev))
    return listening


def start(listening, device) -> None:
    listening.start(device=device, device_label=f"Mic {device}", window_s=1.0, hop_s=0.25)


def test_another_device_replaces_the_recorder_after_it_ends_and_closes_the_segment(
        qtbot, speech_path, file_stream_factory):
    factory = file_stream_factory(speech_path, loop=True)
    devices = []
    listening = listening_on(qtbot, lambda device, cb: devices.append(device)
                             or factory(device, cb))
    start(listening, 1)
    first, ended = listening.recorder, []
    first.finished.connect(lambda: ended.append(True))
    qtbot.waitUntil(lambda: first.windows_emitted > 0, timeout=10_000)
    start(listening, 2)  # restart with another device while the first still runs
    assert listening.recorder is first and listening.listening
    qtbot.waitUntil(lambda: listening.recorder is not None and listening.recorder is not first,
                    timeout=10_000)
    assert ended == [True] and devices == [1, 2]  # the second started after the first ended
    assert listening.inference.segments_ended == 1  # the first device's segment is closed
    assert listening.states == [True, True]
    assert listening.shutdown(3_000)


def test_stop_during_a_restart_launches_nothing(qtbot, speech_path, file_stream_factory):
    factory = file_stream_factory(speech_path, loop=True)
    listening = listening_on(qtbot, factory)
    start(listening, 1)
    first, ended = listening.recorder, []
    first.finished.connect(lambda: ended.append(True))
    qtbot.waitUntil(lambda: first.windows_emitted > 0, timeout=10_000)
    start(listening, 2)
    listening.stop()  # before the first recorder has ended
    qtbot.waitUntil(lambda: listening.recorder is None and bool(ended), timeout=10_000)
    qtbot.wait(200)
    assert listening.recorder is None and len(factory.streams) == 1
    assert listening.states[-1] is False and True not in listening.states[1:]


def test_a_device_that_worked_and_then_vanished_gives_no_fallback(qtbot, speech_path,
                                                                   file_stream_factory):
    """Falling back is for a newly chosen device that never opened; one that opened and then
    stopped (unplugged) only reports its error."""
    good = file_stream_factory(speech_path, loop=True)
    vanishing = file_stream_factory(speech_path, loop=True, vanish_after=20)
    listening = listening_on(qtbot, lambda device, cb: (good if device == 1 else vanishing)(
        device, cb))
    errors = []
    listening.error.connect(errors.append)
    start(listening, 1)
    qtbot.waitUntil(lambda: listening.recorder is not None
                    and listening.recorder.windows_emitted > 0, timeout=10_000)
    start(listening, 2)
    qtbot.waitUntil(lambda: bool(errors), timeout=15_000)
    qtbot.waitUntil(lambda: not listening.listening, timeout=10_000)
    assert listening.fallbacks == [] and listening.states[-1] is False
    assert len(good.streams) == 1


# -- the wizard link and the background task runner ---------------------------------------------
def fake_wizard(running: bool):
    """A TrainingWizard stand-in with what WizardLink uses: modelReady, train_page (running(),
    runFinished), run_dir(), reject() (counted in ``rejected``)."""
    from PyQt5.QtCore import QObject, pyqtSignal

    class Page(QObject):
        runFinished = pyqtSignal(bool)

        def running(self) -> bool:
            return running

    class Wizard(QObject):
        modelReady = pyqtSignal(str)

        def __init__(self):
            super().__init__()
            self.train_page, self.rejected = Page(), 0

        def run_dir(self) -> Path:
            return Path("/runs/today")

        def reject(self) -> None:
            self.rejected += 1

    return Wizard()


def test_the_wizard_link_holds_the_close_only_while_a_training_runs(qtbot):
    from ser_studio.app.wizard.wizard_link import WizardLink

    answers, asked = [False, True], []
    link = WizardLink(None, ask=lambda text: asked.append(text) or answers.pop(0))
    closes, messages, models = [], [], []
    link.closeRequested.connect(lambda: closes.append(True))
    link.message.connect(messages.append)
    link.modelReady.connect(models.append)
    assert not link.holds_close()  # no wizard
    idle = fake_wizard(running=False)
    link.adopt(idle)
    assert not link.holds_close() and asked == []  # a wizard without a run: close at once
    busy = fake_wizard(running=True)
    link.adopt(busy)
    assert link.holds_close() and busy.rejected == 0  # "No": nothing stops
    assert link.holds_close() and busy.rejected == 1 and len(asked) == 2  # asked afresh: "Yes"
    assert "/runs/today" in asked[1] and len(messages) == 1
    assert link.holds_close() and len(asked) == 2 and busy.rejected == 1  # stopping: not again
    assert closes == []
    busy.train_page.runFinished.emit(True)
    assert closes == [True]
    busy.modelReady.emit("/runs/today/model.safetensors")
    assert models == ["/runs/today/model.safetensors"]
    with qtbot.waitSignal(idle.destroyed, timeout=2_000):
        idle.deleteLater()  # an older wizard going away leaves the current one adopted
    assert link.wizard is busy
    with qtbot.waitSignal(busy.destroyed, timeout=2_000):
        busy.deleteLater()
    assert link.wizard is None


def test_background_tasks_report_results_and_errors_and_say_when_busy(qtbot):
    from PyQt5.QtCore import QThreadPool

    from ser_studio.app.shell.background_task import TaskRunner

    runner = TaskRunner(QThreadPool.globalInstance())
    gate, done, failed = threading.Event(), [], []
    runner.submit(lambda: gate.wait(10) and 42, done.append, failed.append)
    assert runner.busy()
    gate.set()
    qtbot.waitUntil(lambda: done == [42], timeout=10_000)
    assert not runner.busy()

    def bad_input():
        raise ValueError("talk.m4a: cannot decode m4a")

    def crash():
        raise KeyError()  # no message: its type names it

    runner.submit(bad_input, done.append, failed.append)
    runner.submit(crash, done.append, failed.append)
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert sorted(failed) == ["KeyError", "talk.m4a: cannot decode m4a"] and done == [42]
    assert not runner.busy()


# -- the recorder --------------------------------------------------------------------------------
class DeadStream:
    """An input stream whose start (``fail_start``) and abort fail; records what was called."""

    samplerate = 16000

    def __init__(self, fail_start: bool):
        self.fail_start, self.calls = fail_start, []

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise OSError("Device unavailable [PaErrorCode -9985]")

    def abort(self) -> None:
        self.calls.append("abort")
        raise OSError("already gone")

    def close(self) -> None:
        self.calls.append("close")


@pytest.mark.parametrize("fail_start", [True, False])
def test_a_stream_that_fails_to_start_or_is_stopped_at_once_is_closed(qtbot, fail_start):
    """A stream that opened but cannot start reports one error and is still closed (abort
    failing too); one stopped before its thread starts ends without an error, closed."""
    from ser_studio.app.live.recorder import Recorder

    stream = DeadStream(fail_start)
    rec = Recorder(device=4, device_label="Mic D", window_s=1.0, hop_s=0.25,
                   stream_factory=lambda device, cb: stream)
    errors, opened = [], []
    rec.error.connect(errors.append)
    rec.opened.connect(opened.append)
    if not fail_start:
        rec.request_stop()
    with qtbot.waitSignal(rec.finished, timeout=10_000):
        rec.start()
    assert stream.calls == ["start", "abort", "close"] and rec.windows_emitted == 0
    if fail_start:
        assert opened == [] and len(errors) == 1
        assert errors[0].startswith("cannot start input device 'Mic D': Device unavailable")
    else:
        assert opened == ["Mic D · 16 kHz"] and errors == []


# -- the calibration dialog ----------------------------------------------------------------------
def calibration_dialog(qtbot, factory):
    from ser_studio.app.calibration.calibration_dialog import CalibrationDialog

    dialog = CalibrationDialog(device=None, device_label="Mic A", stream_factory=factory)
    qtbot.addWidget(dialog)
    dialog.got, dialog.failures = [], []
    dialog.recorded.connect(dialog.got.append)
    dialog.failed.connect(dialog.failures.append)
    return dialog


def test_cancel_or_finish_before_the_input_opens_records_nothing_later(qtbot):
    """The dialog starts once the live recorder has let go of the device; Cancel or Finish
    before that means start() opens nothing, and Finish gives an empty recording at once."""
    opened = []
    factory = lambda device, cb: opened.append(device)  # noqa: E731  (never reached)
    cancelled = calibration_dialog(qtbot, factory)
    cancelled.open()
    cancelled.reject()
    cancelled.start()
    finished = calibration_dialog(qtbot, factory)
    finished.open()
    finished.finish()
    finished.start()
    assert not cancelled.recording and not finished.recording and opened == []
    assert cancelled.got == [] and cancelled.result() == cancelled.Rejected
    assert finished.got == [[]] and finished.result() == finished.Accepted


def test_an_input_that_fails_during_calibration_fails_the_dialog(qtbot):
    from ser_studio.app.live.devices import DeviceError

    def factory(device, cb):
        raise DeviceError("cannot open input device 'Mic A': Device unavailable")

    dialog = calibration_dialog(qtbot, factory)
    dialog.open()
    with qtbot.waitSignal(dialog.recorder.finished, timeout=10_000):
        dialog.start()
    assert len(dialog.failures) == 1 and "Mic A" in dialog.failures[0]
    assert dialog.got == [] and dialog.result() == dialog.Rejected and not dialog.isVisible()


def test_the_capture_keeps_only_each_windows_new_samples():
    from ser_studio.app.calibration.calibration_dialog import Capture

    capture = Capture()
    stream = np.arange(3 * SAMPLE_RATE, dtype=np.float32) / (3 * SAMPLE_RATE)
    w = SAMPLE_RATE
    capture.add(stream[:w], w)  # the first window: all of it
    capture.add(stream[w // 4:w + w // 4], w + w // 4)  # a hop later: its last quarter
    capture.add(stream[w // 4:w + w // 4], w + w // 4)  # the same window again: nothing
    capture.add(stream[2 * w:3 * w], 3 * w)  # after a gap longer than a window: all of it
    chunks = capture.chunks()
    assert [c.size for c in chunks] == [w, w // 4, w]
    np.testing.assert_array_equal(np.concatenate(chunks[:2]), stream[:w + w // 4])
    np.testing.assert_array_equal(chunks[2], stream[2 * w:])
    assert capture.total_s == pytest.approx(2.25)
