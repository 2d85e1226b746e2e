"""The main window's live input: listening on the chosen device with the chosen window and hop,
remembering those choices, and saying what the input does (opened, idle, stalled, back on the
device that worked, failed).

It joins the Live tab's controls (app/live/controls.py) to the recorder's lifecycle
(app/live/listening.py) through their signals and public methods; the window keeps its public
``start_listening``/``stop_listening``, which toggle the controls' Listen button, and shows
what is heard (the live panel) itself.
"""
from __future__ import annotations

import logging

from PyQt5.QtCore import QObject

from ser_studio.app.live.devices import DeviceError, resolve_device

log = logging.getLogger(__name__)


class InputLink(QObject):
    """Drives ``listening`` (a Listening) from ``controls`` (the Live tab's Controls).

    status: the window's StatusFields (the device field); settings: AppSettings (the device,
    window and hop are kept there); status_bar: the window's QStatusBar (transient messages);
    show_error(title, text): the window's warning box; cli_device: NAME_OR_INDEX given on the
    command line, selected once the first device scan has listed the devices (None: none)."""

    def __init__(self, controls, listening, status, settings, *, status_bar, show_error,
                 cli_device=None, parent=None):
        super().__init__(parent)
        self.controls, self.listening = controls, listening
        self.status, self.settings = status, settings
        self._status_bar = status_bar
        self._show_error = show_error
        self._cli_device = cli_device
        controls.listenToggled.connect(self._on_listen_toggled)
        controls.deviceChanged.connect(self._on_device_changed)
        controls.devicesListed.connect(self._on_devices_listed)
        controls.windowChanged.connect(self._on_timing_changed)
        controls.hopChanged.connect(self._on_timing_changed)
        listening.state.connect(self._on_listening_state)
        listening.stats.connect(status.set_blocks_lost)
        listening.opened.connect(status.show_device)
        listening.error.connect(lambda text: self._show_error("Input device", text))
        listening.stalled.connect(self._on_stalled)
        listening.fallback.connect(self._on_device_fallback)

    def _listen_params(self) -> dict:
        return dict(device=self.controls.current_device(),
                    device_label=self.controls.current_device_text(),
                    window_s=self.controls.window.value(), hop_s=self.controls.hop.value())

    def _on_listen_toggled(self, on: bool) -> None:
        if on:
            self.listening.start(**self._listen_params())
        else:
            self.listening.stop()

    def _on_listening_state(self, on: bool) -> None:
        self.controls.set_listening(on)
        if not on:
            self.status.show_device(f"{self.controls.current_device_text()} (idle)")

    def _on_stalled(self, stalled: bool) -> None:
        if stalled:
            self._status_bar.showMessage(
                f"No audio from {self.controls.current_device_text()} for a while; is it "
                "muted, paused or unplugged?")
        else:
            self._status_bar.clearMessage()

    def _on_device_fallback(self, device, label: str) -> None:
        self.controls.select_device(device)
        self.settings.device = "" if device is None else label
        self._status_bar.showMessage(f"Back to the input that worked: {label}", 10000)

    def _on_device_changed(self, _index) -> None:
        index = self.controls.current_device()
        self.settings.device = "" if index is None else self.controls.current_device_text()
        self.status.show_device(self.controls.current_device_text())
        self.listening.restart(**self._listen_params())

    def _on_devices_listed(self, error: str) -> None:
        """After a device scan: its error, if any, and the command line's device, selected
        after the first scan only."""
        if error:
            self._show_error("Input devices", f"Cannot list input devices: {error}")
        if self._cli_device is None:
            return
        spec, self._cli_device = self._cli_device, None
        try:
            index = resolve_device(spec, self.controls.devices)
        except DeviceError as exc:
            self._show_error("Input device", str(exc))
            return
        self.controls.refresh_devices(select=index)

    def _on_timing_changed(self, _value: float) -> None:
        self.settings.window_s = self.controls.window.value()
        self.settings.hop_s = self.controls.hop.value()
        self.listening.restart(**self._listen_params())
