"""The main window's live input (app/shell/input_link.py), branch by branch, between stand-ins
for the Live tab's controls and the recorder's lifecycle that record what they are asked."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PyQt5.QtCore import QObject, pyqtSignal

from ser_studio.app.live.devices import InputDevice
from ser_studio.app.shell.input_link import InputLink

DEVICES = [InputDevice(3, "USB Headset", "ALSA", 1, 48000.0, False),
           InputDevice(5, "pulse", "ALSA", 32, 44100.0, True)]


class _Spin:
    def __init__(self, value: float):
        self._value = value

    def value(self) -> float:
        return self._value

    def setValue(self, value: float) -> None:
        self._value = value


class FakeControls(QObject):
    """The signals and public methods of app/live/controls.Controls that the link uses."""

    listenToggled = pyqtSignal(bool)
    deviceChanged = pyqtSignal(object)
    devicesListed = pyqtSignal(str)
    windowChanged = pyqtSignal(float)
    hopChanged = pyqtSignal(float)

    def __init__(self):
        super().__init__()
        self.window, self.hop = _Spin(4.0), _Spin(0.75)
        self.device, self.devices, self.calls = 3, list(DEVICES), []

    def current_device(self):
        return self.device

    def current_device_text(self) -> str:
        return {3: "USB Headset", 5: "pulse", None: "System default"}[self.device]

    def set_listening(self, on: bool) -> None:
        self.calls.append(("set_listening", on))

    def select_device(self, device) -> None:
        self.device = device
        self.calls.append(("select_device", device))

    def refresh_devices(self, select=None) -> None:
        self.calls.append(("refresh_devices", select))


class FakeListening(QObject):
    """app/live/listening.Listening's signals; start/stop/restart are recorded."""

    fallback = pyqtSignal(object, str)
    state = pyqtSignal(bool)
    stats = pyqtSignal(int, int)
    opened = pyqtSignal(str)
    stalled = pyqtSignal(bool)
    error = pyqtSignal(str)

    def __init__(self):
        super().__init__()
        self.calls = []

    def start(self, **params):
        self.calls.append(("start", params))

    def stop(self):
        self.calls.append(("stop", None))

    def restart(self, **params):
        self.calls.append(("restart", params))


class FakeStatusBar:
    def __init__(self):
        self.message = ""

    def showMessage(self, text: str, _timeout: int = 0) -> None:
        self.message = text

    def clearMessage(self) -> None:
        self.message = ""


def make_link(cli_device="headset"):
    """An InputLink between fakes, with everything they were asked as attributes."""
    controls, listening, bar = FakeControls(), FakeListening(), FakeStatusBar()
    status = SimpleNamespace(devices=[], lost=[])
    status.show_device = status.devices.append
    status.set_blocks_lost = lambda lost, total: status.lost.append((lost, total))
    settings = SimpleNamespace(device="", window_s=3.0, hop_s=0.5)
    errors = []
    made = InputLink(controls, listening, status, settings, status_bar=bar,
                     show_error=lambda title, text: errors.append((title, text)),
                     cli_device=cli_device)
    return SimpleNamespace(link=made, controls=controls, listening=listening, status=status,
                           settings=settings, errors=errors, bar=bar)


@pytest.fixture
def link(qapp):
    return make_link()


PARAMS = {"device": 3, "device_label": "USB Headset", "window_s": 4.0, "hop_s": 0.75}


def test_listen_starts_and_stops_on_the_chosen_device_with_the_chosen_timing(link):
    link.controls.listenToggled.emit(True)
    link.controls.listenToggled.emit(False)
    assert link.listening.calls == [("start", PARAMS), ("stop", None)]


def test_the_listening_state_reaches_the_controls_and_an_idle_input_is_named(link):
    link.listening.state.emit(True)
    assert link.controls.calls == [("set_listening", True)] and link.status.devices == []
    link.listening.state.emit(False)
    assert link.controls.calls[-1] == ("set_listening", False)
    assert link.status.devices == ["USB Headset (idle)"]


def test_opened_device_lost_blocks_and_errors_are_shown(link):
    link.listening.opened.emit("USB Headset @ 48 kHz")
    link.listening.stats.emit(2, 50)
    link.listening.error.emit("cannot open input device 'USB Headset'")
    assert link.status.devices == ["USB Headset @ 48 kHz"] and link.status.lost == [(2, 50)]
    assert link.errors == [("Input device", "cannot open input device 'USB Headset'")]


def test_a_stalled_input_is_named_until_audio_comes_back(link):
    link.listening.stalled.emit(True)
    assert link.bar.message.startswith("No audio from USB Headset for a while")
    link.listening.stalled.emit(False)
    assert link.bar.message == ""


@pytest.mark.parametrize("device, label, kept", [(None, "System default", ""),
                                                 (5, "pulse", "pulse")])
def test_a_fallback_selects_and_keeps_the_device_that_worked(link, device, label, kept):
    link.listening.fallback.emit(device, label)
    assert link.controls.calls == [("select_device", device)]
    assert link.settings.device == kept
    assert link.bar.message == f"Back to the input that worked: {label}"


@pytest.mark.parametrize("device, kept, shown", [(5, "pulse", "pulse"),
                                                 (None, "", "System default")])
def test_another_device_is_kept_shown_and_restarts_listening(link, device, kept, shown):
    link.controls.device = device
    link.controls.deviceChanged.emit(device)
    assert link.settings.device == kept and link.status.devices == [shown]
    assert link.listening.calls == [("restart", {**PARAMS, "device": device,
                                                 "device_label": shown})]


@pytest.mark.parametrize("signal", ["windowChanged", "hopChanged"])
def test_another_window_or_hop_is_kept_and_restarts_listening(link, signal):
    link.controls.window.setValue(6.0)
    link.controls.hop.setValue(1.25)
    getattr(link.controls, signal).emit(1.0)
    assert (link.settings.window_s, link.settings.hop_s) == (6.0, 1.25)
    assert link.listening.calls == [("restart", {**PARAMS, "window_s": 6.0, "hop_s": 1.25})]


def test_the_command_lines_device_is_selected_after_the_first_scan_only(link):
    link.controls.devicesListed.emit("")
    link.controls.devicesListed.emit("")
    assert link.controls.calls == [("refresh_devices", 3)] and link.errors == []


def test_a_scan_error_and_an_unknown_command_line_device_are_reported(qapp):
    link = make_link("no such microphone")
    link.controls.devicesListed.emit("PortAudio is not initialised")
    assert link.errors[0] == ("Input devices",
                              "Cannot list input devices: PortAudio is not initialised")
    assert link.errors[1][0] == "Input device" and "no such microphone" in link.errors[1][1]
    assert link.controls.calls == []
