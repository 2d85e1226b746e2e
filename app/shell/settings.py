"""Persistent settings (QSettings): device, model path, window/hop, smoothing, geometry.

Values are read with their type and clamped, so a hand-edited or stale settings file never
breaks start-up. Tests pass their own QSettings (an ini file in a temporary folder).
"""
from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QByteArray, QSettings

from ser_studio.model.constants import LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS

ORGANISATION = "ser-studio"
APPLICATION = "SER Studio"


def default_qsettings() -> QSettings:
    """The user's settings store (native format, per user)."""
    return QSettings(QSettings.NativeFormat, QSettings.UserScope, ORGANISATION, APPLICATION)


def ini_qsettings(path) -> QSettings:
    """A settings store in an ini file at ``path`` (tests, portable installs)."""
    return QSettings(str(path), QSettings.IniFormat)


def _flag(key: str, doc: str) -> property:
    """A true/false setting stored under ``key`` (false until turned on)."""
    return property(lambda self: self._get_bool(key, False),
                    lambda self, value: self._set(key, bool(value)), doc=doc)


class AppSettings:
    """Typed access to one QSettings store."""

    def __init__(self, store: QSettings | None = None):
        self.store = store if store is not None else default_qsettings()

    def _get(self, key: str, default, kind):
        value = self.store.value(key, default)
        try:
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    def _get_bool(self, key: str, default: bool) -> bool:
        value = self.store.value(key, default)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1")

    def _set(self, key: str, value) -> None:
        self.store.setValue(key, value)

    @property
    def device(self) -> str:
        """Input device name ("" = system default)."""
        return self._get("audio/device", "", str)

    @device.setter
    def device(self, name: str) -> None:
        self._set("audio/device", name or "")

    def last_folder(self, dialog: str) -> str:
        """The folder an open dialog ("audio", "model", ...) was last used in ("" = none yet,
        or it no longer exists)."""
        folder = self._get(f"dialogs/{dialog}", "", str)
        return folder if folder and Path(folder).is_dir() else ""

    def remember_folder(self, dialog: str, chosen: str) -> None:
        """Remember the folder of ``chosen`` (a file or folder path) for ``dialog``."""
        if chosen:
            path = Path(chosen)
            self._set(f"dialogs/{dialog}", str(path if path.is_dir() else path.parent))

    @property
    def model_path(self) -> str:
        """Checkpoint path ("" = the default model)."""
        return self._get("model/path", "", str)

    @model_path.setter
    def model_path(self, path: str) -> None:
        self._set("model/path", str(path or ""))

    @property
    def window_s(self) -> float:
        return min(10.0, max(1.0, self._get("live/window_s", LIVE_BUFFER_SECONDS, float)))

    @window_s.setter
    def window_s(self, value: float) -> None:
        self._set("live/window_s", float(value))

    @property
    def hop_s(self) -> float:
        return min(self.window_s, max(0.25, self._get("live/hop_s", LIVE_HOP_SECONDS, float)))

    @hop_s.setter
    def hop_s(self, value: float) -> None:
        self._set("live/hop_s", float(value))

    @property
    def smoothing(self) -> int:
        """Windows averaged for the shown probabilities (1 = off)."""
        return min(20, max(1, self._get("live/smoothing", 1, int)))

    @smoothing.setter
    def smoothing(self, value: int) -> None:
        self._set("live/smoothing", int(value))

    keep_audio = _flag("history/keep_audio", "Store the audio of live speech segments with "
                       "their history rows (off until the user turns it on, knowingly: "
                       "History › Keep audio).")
    adapt_live = _flag("live/adapt", "The live badge's \"Keep adapting\".")
    adapt_file_speaker = _flag("files/adapt_speaker",
                               "The Files tab's \"Adapt to this file's speaker\".")

    @property
    def audio_retention_days(self) -> int:
        """Days stored audio is kept (0 = until deleted by hand), 0..3650; default 30."""
        return min(max(self._get("history/audio_retention_days", 30, int), 0), 3650)

    @audio_retention_days.setter
    def audio_retention_days(self, days: int) -> None:
        self._set("history/audio_retention_days", int(days))

    @property
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._set("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self.store.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._set("window/state", value)

    @property
    def tab(self) -> int:
        return max(0, self._get("window/tab", 0, int))

    @tab.setter
    def tab(self, value: int) -> None:
        self._set("window/tab", int(value))

    def sync(self) -> None:
        """Write to disk now."""
        self.store.sync()
