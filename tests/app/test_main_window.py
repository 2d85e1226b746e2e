"""The main window and the wiring between its parts: drag-and-drop, listening through an
injected stream, device failure, closing while busy, settings, menus, wizard hand-over."""
from __future__ import annotations

import time

from PyQt5.QtCore import QMimeData, QPoint, Qt, QUrl
from PyQt5.QtGui import QDragEnterEvent, QDropEvent
from PyQt5.QtWidgets import QApplication

from ser_studio.app.live.devices import DeviceError
from ser_studio.app.shell.settings import AppSettings, ini_qsettings


def _drop(window, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, drop)


def test_drop_good_and_bad_files(qtbot, make_window, speech_path, tmp_path, history):
    window = make_window()
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is not a wav file")
    _drop(window, [bad, speech_path])
    panel = window.file_panel
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=30_000)
    assert window.tabs.currentWidget() is panel
    by_name = {panel.table.item(r, 0).text(): r for r in range(2)}
    bad_row, good_row = by_name["not_audio.wav"], by_name["speech.wav"]
    assert panel.table.item(bad_row, 2).text() == "error"
    assert str(bad) in panel.table.item(bad_row, 4).text()
    assert panel.table.item(good_row, 2).text().lower() in window.model_info.labels
    qtbot.waitUntil(lambda: len(history.query(source=str(speech_path))) == 1, timeout=5_000)
    assert not history.query(source=str(bad))


def test_listening_shows_predictions_and_writes_history(qtbot, make_window, speech_path,
                                                        file_stream_factory, history,
                                                        settings):
    factory = file_stream_factory(speech_path, speed=2.0)  # speech, then the stream stays quiet
    settings.keep_audio = True  # the user chose to keep audio
    window = make_window(stream_factory=factory)
    window.start_listening()
    live = window.live_panel
    qtbot.waitUntil(lambda: live.headline.emotion.text().lower() in window.model_info.labels,
                    timeout=20_000)
    assert window.status.latency.text().startswith("Latency: ")
    assert "ms" in window.status.latency.text()
    assert "kHz" in window.status.device.toolTip()
    window.stop_listening()
    qtbot.waitUntil(lambda: history.count() == 1, timeout=10_000)
    row = history.query()[0]
    assert row.source == "microphone" and row.label in window.model_info.labels
    assert row.model == window.model_info.name and row.has_audio
    qtbot.waitUntil(lambda: window.listening.recorder is None, timeout=3_000)
    assert window.controls.listen.text() == "Start listening"


def test_device_open_failure_is_reported_and_the_app_keeps_running(
        qtbot, make_window, speech_path, file_stream_factory):
    good = file_stream_factory(speech_path, loop=True)
    state = {"fail": True}

    def factory(device, callback):
        if state["fail"]:
            raise DeviceError("cannot open input device 'Broken mic': Device unavailable")
        return good(device, callback)

    window = make_window(stream_factory=factory)
    window.start_listening()
    qtbot.waitUntil(lambda: window._error_box is not None and window._error_box.isVisible(),
                    timeout=5_000)
    assert "Broken mic" in window._error_box.text()
    qtbot.waitUntil(lambda: not window.controls.listen.isChecked(), timeout=3_000)
    state["fail"] = False  # the user picks a working device and starts again
    window.start_listening()
    qtbot.waitUntil(lambda: window.live_panel._result is not None, timeout=10_000)


def test_a_new_device_that_fails_falls_back_to_the_one_that_worked(
        qtbot, make_window, speech_path, file_stream_factory):
    from ser_studio.app.live.devices import InputDevice

    good = file_stream_factory(speech_path, loop=True)

    def factory(device, callback):
        if device == 7:
            raise DeviceError("cannot open input device 'Flaky USB': Device unavailable")
        return good(device, callback)

    window = make_window(stream_factory=factory)
    controls = window.controls
    qtbot.waitUntil(lambda: controls.device.count() > 0 and controls.refresh.isEnabled(),
                    timeout=10_000)
    controls._on_devices([InputDevice(7, "Flaky USB", "ALSA", 1, 48000.0, False)], "")
    controls.select_device(None)
    with qtbot.waitSignal(window.listening.opened, timeout=10_000):
        window.start_listening()
    with qtbot.waitSignal(window.listening.fallback, timeout=10_000) as fell_back:
        controls.device.setCurrentIndex(1)  # the user picks the flaky device
    assert fell_back.args[0] is None
    assert "Flaky USB" in window._error_box.text()
    qtbot.waitUntil(lambda: window.listening.recorder is not None
                    and window.listening.recorder.windows_emitted > 0, timeout=10_000)
    assert controls.current_device() is None and controls.listen.isChecked()


def test_closing_while_both_threads_run_takes_under_2_s(qtbot, make_window, speech_path,
                                                        file_stream_factory):
    window = make_window(stream_factory=file_stream_factory(speech_path, loop=True))
    window.start_listening()
    qtbot.waitUntil(lambda: window.live_panel._result is not None, timeout=10_000)
    window.analyse_files([speech_path] * 6)  # keep the worker busy too
    recorder = window.listening.recorder
    assert recorder.isRunning() and window.inference.thread.isRunning()
    started = time.monotonic()
    window.close()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert not recorder.isRunning() and not window.inference.thread.isRunning()


def test_settings_persist_across_a_new_window(qtbot, make_window, tmp_path):
    ini = tmp_path / "persist.ini"
    first = make_window(settings=AppSettings(ini_qsettings(ini)))
    first.controls.window.setValue(3.0)
    first.controls.hop.setValue(0.75)
    first.controls.smoothing.setValue(4)
    first.resize(1234, 777)
    first.tabs.setCurrentIndex(1)
    first.close()
    second = make_window(settings=AppSettings(ini_qsettings(ini)), model_path=None)
    assert second.controls.window.value() == 3.0
    assert second.controls.hop.value() == 0.75
    assert second.controls.smoothing.value() == 4
    assert (second.width(), second.height()) == (1234, 777)
    assert second.tabs.currentIndex() == 1
    # The model chosen in the first window is the one the second loads without --model,
    # and the window says so; the shipped model is one choice away in the Model box.
    assert second.model_info.path == first.model_info.path
    assert "given with --model" in first.status.model.toolTip()
    assert "used last time" in second.status.model.toolTip()
    box = second.controls.model
    assert first.model_info.path in box.toolTip() and "used last time" in box.toolTip()
    assert box.itemText(0) == "Shipped default model" and box.itemData(0) == ""


def test_menus_and_shortcuts(make_window):
    window = make_window()
    shortcuts = {name: a.shortcut().toString() for name, a in window.actions_by_name.items()}
    assert shortcuts == {"open_audio": "Ctrl+O", "open_model": "Ctrl+M",
                         "open_run": "Ctrl+Shift+M",
                         "export_history": "Ctrl+E", "quit": "Ctrl+Q", "wizard": "Ctrl+T",
                         "about": "", "keep_audio": "", "calibrate": "",
                         "reset_calibration": ""}
    keep = window.actions_by_name["keep_audio"]
    assert not keep.isChecked() and window.inference.worker.keep_audio is False  # off at first
    asked = []
    window.confirm_keep_audio = lambda text: asked.append(text) or False
    keep.setChecked(True)  # refused: stays off
    assert not keep.isChecked() and window.settings.keep_audio is False
    assert str(window.history.path) in asked[0] and "30 days" in asked[0]
    window.confirm_keep_audio = lambda text: True
    keep.setChecked(True)
    assert window.settings.keep_audio is True and window.inference.worker.keep_audio is True
    keep.setChecked(False)
    assert window.settings.keep_audio is False and window.inference.worker.keep_audio is False
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Live", "Train", "Help"]
    assert window.tabs.tabText(2) == "History"


def test_wizard_model_is_loaded_into_the_live_view(qtbot, make_window, tmp_path,
                                                   checkpoint_factory):
    window = make_window()
    window.open_wizard()
    first = window.wizard
    window.open_wizard()  # Ctrl+T again raises the open wizard instead of a second one
    assert window.wizard is first and first.isVisible()
    other = checkpoint_factory(tmp_path / "wizard_model.safetensors", seed=1)
    with qtbot.waitSignal(window.inference.worker.modelLoaded, timeout=20_000) as loaded:
        window.wizard.modelReady.emit(str(other))
    assert loaded.args[0].path == str(other)
    assert window.tabs.currentIndex() == 0
    qtbot.waitUntil(lambda: "trained in the wizard" in window.status.model.toolTip())
    assert window.controls.model.currentText() == "wizard_model"
    window.wizard.close()


def test_a_failed_model_load_keeps_the_model_in_use_named(qtbot, make_window, tmp_path,
                                                          checkpoint_factory, monkeypatch):
    """The status bar never stays on "loading…": after a failed load it names the model
    still in use; a run folder's model.safetensors is named by its run."""
    window = make_window()
    run = tmp_path / "run-20261202-0400"
    run.mkdir()
    good = checkpoint_factory(run / "model.safetensors", seed=2)
    with qtbot.waitSignal(window.inference.worker.modelLoaded, timeout=20_000) as loaded:
        window.load_model(str(good))
    assert loaded.args[0].name.startswith("run-20261202-0400 (")
    shown = window.status.model.text()
    monkeypatch.setattr(window, "show_error", lambda *args: None)
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with qtbot.waitSignal(window.inference.worker.modelError, timeout=20_000):
        window.load_model(str(bad))
    qtbot.waitUntil(lambda: window.status.model.text() == shown, timeout=2000)


def test_a_run_folder_loads_its_final_model_from_the_command_line_and_the_menu(
        qtbot, make_window, tmp_path, checkpoint_factory, monkeypatch):
    """``--model RUN`` and File › Open run folder load RUN/model.safetensors (not a fold's);
    the Model box and the settings hold that file, once; a folder without one is reported
    with what it holds."""
    from ser_studio.app.shell import main_window as mw

    run = tmp_path / "run-a"
    final = checkpoint_factory(run / "model.safetensors", seed=3)
    checkpoint_factory(run / "fold_1" / "model.safetensors", seed=4)
    window = make_window(model_path=str(run))
    assert window.model_info.path == str(final) and window.settings.model_path == str(final)
    assert window.model_info.name.startswith("run-a (")
    box = window.controls.model
    paths = [box.itemData(i) for i in range(box.count())]
    assert paths.count(str(final)) == 1 and str(run) not in paths
    assert box.currentData() == str(final)

    other = tmp_path / "run-b"
    second = checkpoint_factory(other / "model.safetensors", seed=5)
    monkeypatch.setattr(mw.QFileDialog, "getExistingDirectory",
                        lambda parent, title, folder: str(other))
    with qtbot.waitSignal(window.files.worker.modelLoaded, timeout=20_000):
        window.actions_by_name["open_run"].trigger()
    qtbot.waitUntil(lambda: window.model_info.path == str(second), timeout=20_000)
    assert window.model_origin == "opened with File › Open run folder"

    errors = []
    monkeypatch.setattr(window, "show_error", lambda title, text: errors.append(text))
    folds_only = tmp_path / "no-final"
    checkpoint_factory(folds_only / "fold_1" / "model.safetensors")
    window.load_model(str(folds_only))
    qtbot.waitUntil(lambda: bool(errors), timeout=20_000)
    assert "fold_1/model.safetensors" in errors[0] and "no model.safetensors" in errors[0]
    assert window.model_info.path == str(second)  # the model in use stays


def test_history_rows_of_a_replayed_file_say_replay(qtbot, make_window, speech_path, history):
    from ser_studio.app.live.replay import replay_factory

    window = make_window(stream_factory=replay_factory(speech_path, speed=2.0))
    window.start_listening()
    qtbot.waitUntil(lambda: window.live_panel._result is not None, timeout=20_000)
    window.stop_listening()
    qtbot.waitUntil(lambda: history.count() >= 1, timeout=10_000)
    assert history.query()[0].source == f"replay: {speech_path}"


def test_quitting_while_the_wizard_trains_asks_and_stops_the_training_cleanly(
        qtbot, make_window, tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from ser_studio.app.wizard.wizard import TrainingWizard
    from test_wizard_pages import write_manifest

    monkeypatch.setenv("FAKE_MODE", "slow")
    window = make_window()
    wizard = TrainingWizard(window, python=sys.executable,
                            main_py=Path(__file__).with_name("fake_trainer.py"))
    window.wizard_link.adopt(wizard)
    wizard.show()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with qtbot.waitSignal(wizard.corpus_page.checked, timeout=10_000):
        wizard.corpus_page.path_edit.setText(str(write_manifest(corpus)))
        wizard.corpus_page.check()
    wizard.next()
    wizard.setup_page.out_edit.setText(str(tmp_path / "run"))
    wizard.setup_page.editors["train.folds"].widget.setValue(3)  # the corpus has 3 speakers
    wizard.next()  # the summary
    wizard.next()  # Start training
    qtbot.waitUntil(lambda: wizard.train_page.progress.fold >= 1, timeout=10_000)
    asked = []
    window.ask_quit_training = lambda text: asked.append(text) or False
    window.close()
    assert window.isVisible() and wizard.train_page.running()  # "No": nothing stops
    assert "--resume" in asked[0] and str(tmp_path / "run") in asked[0]
    window.ask_quit_training = lambda text: asked.append(text) or True
    window.close()
    assert window.isVisible()  # the GUI is not blocked while the trainer stops
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15_000)
    assert not wizard.train_page.running() and len(asked) == 2
    signals = (tmp_path / "run" / "signals.txt").read_text()
    assert "SIGTERM" in signals  # stopped through the trainer's own cancel path


def test_open_dialogs_start_in_the_folder_last_used(qtbot, make_window, speech_path,
                                                    monkeypatch, checkpoint_path):
    from ser_studio.app.shell import main_window as mw

    window = make_window()
    started_in = []

    def fake_open_files(parent, title, folder, filter_):
        started_in.append(folder)
        return [str(speech_path)], filter_

    def fake_open_file(parent, title, folder, filter_):
        started_in.append(folder)
        return str(checkpoint_path), filter_

    monkeypatch.setattr(mw.QFileDialog, "getOpenFileNames", fake_open_files)
    monkeypatch.setattr(mw.QFileDialog, "getOpenFileName", fake_open_file)
    window.open_audio_files()
    window.open_audio_files()
    window.open_model()
    window.open_model()
    assert started_in == ["", str(speech_path.parent), "", str(checkpoint_path.parent)]


def test_an_m4a_among_several_opened_files_is_listed_with_the_reason(
        qtbot, make_window, speech_path, tmp_path, monkeypatch):
    """The Open dialog's audio filter shows .m4a files (hidden, one would drop out of a
    selection of several without a word); the Files tab then says why it is refused."""
    from ser_studio.app.shell import main_window as mw

    window = make_window()
    m4a = tmp_path / "voice memo.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(2000))
    shown = {}

    def fake_open_files(parent, title, folder, filter_):
        shown["filter"] = filter_
        return [str(speech_path), str(m4a)], filter_

    monkeypatch.setattr(mw.QFileDialog, "getOpenFileNames", fake_open_files)
    window.open_audio_files()
    audio_patterns = shown["filter"].split(";;")[0]
    assert "*.m4a" in audio_patterns.split("(")[1].rstrip(")").split()
    panel = window.file_panel
    qtbot.waitUntil(lambda: panel.table.rowCount() == 2, timeout=30_000)
    row = [panel.table.item(r, 0).text() for r in range(2)].index("voice memo.m4a")
    assert panel.table.item(row, 2).text() == "error"
    assert "m4a/AAC (MP4) is not supported" in panel.table.item(row, 4).text()


def test_adapt_to_the_files_speaker_is_remembered(qtbot, make_window, settings):
    window = make_window()
    assert not window.file_panel.adapt.isChecked()
    window.file_panel.adapt.setChecked(True)
    assert window.files.worker.adapt_speaker is True
    window.close()
    again = make_window()
    assert again.file_panel.adapt.isChecked() and settings.adapt_file_speaker
    assert again.files.worker.adapt_speaker is True


def test_listening_never_widens_the_window(qtbot, make_window, speech_path, tmp_path,
                                           file_stream_factory):
    """Texts that grow while listening (a "very quiet" warning in the headline, the status
    bar's Dropped and Input fields) do not raise the window's minimum width, so a window
    at its size stays at it."""
    import soundfile as sf

    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.constants import SAMPLE_RATE

    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, load_audio(speech_path) * 10 ** (-45 / 20), SAMPLE_RATE)
    window = make_window(stream_factory=file_stream_factory(quiet, speed=2.0))
    bar, live = window.statusBar(), window.live_panel
    qtbot.wait(100)

    def widths():
        return window.width(), bar.minimumSizeHint().width(), live.minimumSizeHint().width()

    before = widths()
    window.start_listening()
    qtbot.waitUntil(lambda: "quiet" in live.headline.status.text(), timeout=20_000)
    qtbot.waitUntil(lambda: "windows" in window.status.dropped.text(), timeout=5_000)
    qtbot.wait(100)
    after = widths()
    assert after[0] == before[0], "the window widened itself"
    assert after[1] <= before[1] and after[2] <= before[2], (before, after)
    window.stop_listening()


def test_a_model_that_fails_to_load_is_told_the_same_everywhere(qtbot, tmp_path, history,
                                                                settings, checkpoint_path):
    """With no model loaded, the headline says "No model", and so do the Model box (not
    "Shipped default model") and the status bar; loading a good model afterwards clears it."""
    from ser_studio.app.live.controls import DEFAULT_MODEL_TEXT, NO_MODEL_TEXT
    from ser_studio.app.shell.main_window import MainWindow

    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    window = MainWindow(model_path=str(bad), history=history, settings=settings,
                        profiles_dir=tmp_path / "profiles")
    qtbot.addWidget(window)
    window.show_error = lambda *args: None
    window.show()
    live, box = window.live_panel, window.controls.model
    qtbot.waitUntil(lambda: live.headline.emotion.text() == "No model", timeout=20_000)
    assert box.currentText() == NO_MODEL_TEXT and "broken.safetensors" in box.toolTip()
    assert window.status.model.text() == "Model: none"
    assert DEFAULT_MODEL_TEXT in [box.itemText(i) for i in range(box.count())]
    with qtbot.waitSignal(window.inference.worker.modelLoaded, timeout=20_000):
        window.load_model(str(checkpoint_path))
    qtbot.waitUntil(lambda: box.currentText() == "random_model", timeout=2000)
    assert NO_MODEL_TEXT not in [box.itemText(i) for i in range(box.count())]
    window.close()


def test_the_model_box_tooltip_names_the_languages_the_model_was_trained_on(
        qtbot, make_window, tmp_path, checkpoint_factory):
    """The tooltip's last line says what the loaded checkpoint records of its training
    languages, most heard first; an older checkpoint without them says so."""
    import json

    window = make_window()
    box = window.controls.model
    assert "training languages are not recorded" in box.toolTip()
    heard = checkpoint_factory(tmp_path / "heard.safetensors", seed=3)
    sidecar = heard.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    doc["languages"] = {"English": 4, "Korean": 12}
    sidecar.write_text(json.dumps(doc))
    with qtbot.waitSignal(window.inference.worker.modelLoaded, timeout=20_000):
        window.load_model(str(heard))
    qtbot.waitUntil(lambda: "Trained on" in box.toolTip(), timeout=2000)
    assert box.toolTip().splitlines()[-1] == "Trained on Korean (12 clips) and English (4) speech"
    assert str(heard) in box.toolTip()
