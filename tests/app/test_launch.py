"""Start-up: command line, the global exception hook, device resolution, a full run of main()."""
from __future__ import annotations

import logging
import sys
import threading

import pytest
from PyQt5.QtCore import QSettings, QTimer
from PyQt5.QtWidgets import QApplication

from ser_studio.app.live.devices import DeviceError, InputDevice, resolve_device
from ser_studio.app.shell import launch

DEVICES = [InputDevice(0, "HDA Intel PCH: ALC257 Analog (hw:0,0)", "ALSA", 2, 48000.0, False),
           InputDevice(3, "USB Headset Mic", "ALSA", 1, 16000.0, False),
           InputDevice(5, "pulse", "ALSA", 32, 44100.0, True)]


def test_command_line():
    args = launch.build_parser().parse_args(
        ["--model", "m.safetensors", "--history", "h.db", "--device", "USB"])
    assert (args.model, args.history, args.device) == ("m.safetensors", "h.db", "USB")
    assert launch.build_parser().parse_args(["--replay", "a.wav"]).replay == "a.wav"
    with pytest.raises(SystemExit):
        launch.build_parser().parse_args(["--bogus"])


def test_resolve_device_by_index_name_or_fragment():
    assert resolve_device(None, DEVICES) is None and resolve_device("", DEVICES) is None
    assert resolve_device("3", DEVICES) == 3
    assert resolve_device("pulse", DEVICES) == 5
    assert resolve_device("headset", DEVICES) == 3
    with pytest.raises(DeviceError, match="not found; available inputs"):
        resolve_device("7", DEVICES)
    with pytest.raises(DeviceError, match="ambiguous"):
        resolve_device("a", DEVICES)


def test_exception_hook_logs_everything_and_shows_one_dialog(qtbot, caplog):
    hook = launch.ExceptionHook()
    for k in range(3):
        try:
            raise ValueError(f"broken {k}")
        except ValueError as exc:
            hook.handle(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: hook.dialog is not None and hook.dialog.isVisible(), timeout=2000)
    qtbot.wait(50)
    assert hook.shown == 1 and "broken 0" in hook.dialog.text()
    assert sum("uncaught exception" in r.message for r in caplog.records) == 3
    hook.dialog.close()


def test_exception_in_a_thread_reaches_the_hook(qtbot, monkeypatch):
    hook = launch.ExceptionHook()
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    hook.install()
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: hook.dialog is not None, timeout=2000)
    assert "ZeroDivisionError" in hook.dialog.text()
    hook.dialog.close()


def test_main_starts_the_app_and_exits_cleanly(qtbot, tmp_path, checkpoint_path, monkeypatch):
    from ser_studio.app.shell.main_window import MainWindow

    QSettings.setPath(QSettings.NativeFormat, QSettings.UserScope, str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    handlers = list(logging.getLogger().handlers)
    seen = {}

    def close_when_ready():
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        box = windows[0]._error_box if windows else None
        if windows and windows[0].model_info is not None and box is not None:
            seen.update(model=windows[0].model_info.path, error=box.text())
            box.close()
            windows[0].close()
        else:
            QTimer.singleShot(50, close_when_ready)

    QTimer.singleShot(50, close_when_ready)
    history = tmp_path / "history.sqlite3"
    try:
        code = launch.main(["--model", str(checkpoint_path), "--history", str(history),
                            "--device", "no such microphone"])
    finally:
        for h in logging.getLogger().handlers:
            if h not in handlers:
                logging.getLogger().removeHandler(h)
                h.close()
    assert code == 0
    assert seen["model"] == str(checkpoint_path)
    assert "no such microphone" in seen["error"] and "not found" in seen["error"]
    assert history.exists()
    assert (tmp_path / "state" / "ser-studio" / "log" / "app.log").exists()


def test_without_a_display_the_app_says_so_instead_of_aborting(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(launch.sys, "platform", "linux")
    assert launch.main([]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "QT_QPA_PLATFORM=offscreen" in err
    assert launch.display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") == ""
    assert launch.display_problem({}, "darwin") == ""


def test_a_missing_replay_file_or_model_stops_the_start_with_its_name(tmp_path, capsys):
    missing = tmp_path / "nope.wav"
    assert launch.main(["--replay", str(missing)]) == 2
    assert f"--replay {missing}: not found" in capsys.readouterr().err
    assert launch.main(["--model", str(tmp_path / "gone.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err


def test_a_history_database_that_cannot_be_opened_is_named_with_what_failed(tmp_path):
    """The dialog says what failed and where the database is, not "see the log"."""
    broken = tmp_path / "data" / "history.sqlite3"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not an SQLite database, it is a text file" * 40)
    store, message = launch.open_history(str(broken))
    assert store is None
    assert "not a usable history database" in message and f"Database: {broken}" in message
    assert "--history PATH" in message and "see the log" not in message
    good, message = launch.open_history(str(tmp_path / "new" / "history.sqlite3"))
    assert good is not None and message == ""


def test_setup_logging_adds_its_handlers_once(tmp_path, monkeypatch):
    """A second call (a second main() in one process, the tests) adds no second stderr or
    file handler: the ones it added are known by their names."""
    monkeypatch.setattr(launch.platformdirs, "user_log_dir", lambda _name: str(tmp_path))
    root = logging.getLogger()
    ours = [h for h in root.handlers if (h.get_name() or "").startswith(launch.HANDLER_PREFIX)]
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if h not in ours])
    level, before = root.level, list(root.handlers)  # an earlier main() in this process
    try:
        assert launch.setup_logging() == tmp_path / "app.log"
        assert launch.setup_logging() is None
        added = [h for h in root.handlers if h not in before]
        assert sorted(h.get_name() for h in added) == [launch.HANDLER_PREFIX + "file",
                                                       launch.HANDLER_PREFIX + "stderr"]
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
