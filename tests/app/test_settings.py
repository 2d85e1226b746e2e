"""Settings: typed, clamped, and persistent in the given store."""
from __future__ import annotations

from PyQt5.QtCore import QByteArray

from ser_studio.app.shell.settings import AppSettings, ini_qsettings
from ser_studio.model.constants import LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS


def test_defaults(tmp_path):
    s = AppSettings(ini_qsettings(tmp_path / "s.ini"))
    assert (s.device, s.model_path, s.smoothing, s.tab) == ("", "", 1, 0)
    assert (s.window_s, s.hop_s) == (LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS)
    assert s.keep_audio is False  # storing microphone audio is the user's choice
    assert s.audio_retention_days == 30
    assert s.geometry is None and s.window_state is None


def test_values_survive_a_new_store_and_are_clamped(tmp_path):
    path = tmp_path / "s.ini"
    s = AppSettings(ini_qsettings(path))
    s.device, s.model_path, s.window_s, s.hop_s = "USB Mic", "/m.safetensors", 3.5, 0.75
    s.smoothing, s.keep_audio, s.geometry = 5, False, QByteArray(b"geometry")
    s.sync()
    t = AppSettings(ini_qsettings(path))
    assert (t.device, t.model_path, t.window_s, t.hop_s) == ("USB Mic", "/m.safetensors", 3.5,
                                                             0.75)
    assert t.smoothing == 5 and t.keep_audio is False and bytes(t.geometry) == b"geometry"
    t.store.setValue("live/window_s", "99")
    t.store.setValue("live/hop_s", "not a number")
    t.store.setValue("live/smoothing", -3)
    assert (t.window_s, t.hop_s, t.smoothing) == (10.0, LIVE_HOP_SECONDS, 1)
