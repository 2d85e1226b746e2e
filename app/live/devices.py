"""Input devices: list them, resolve ``--device NAME_OR_INDEX``, open an input stream.

No Qt here. sounddevice is imported lazily because importing it initialises PortAudio, which
scans the audio system as it is at that moment (a test that starts PulseAudio first, or a user
who plugs in a headset, needs ``rescan``). Every PortAudio call goes through one lock so a
rescan never runs while another thread opens a stream.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

PORTAUDIO_LOCK = threading.RLock()


class DeviceError(RuntimeError):
    """An input device that cannot be found or opened; the message names it."""


@dataclass(frozen=True)
class InputDevice:
    """One capture device as PortAudio sees it."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool

    def label(self) -> str:
        """Text for a device chooser."""
        star = " (default)" if self.is_default else ""
        return f"{self.name}{star}"


def _sd():
    import sounddevice

    return sounddevice


def rescan() -> None:
    """Re-initialise PortAudio so devices added or removed since start-up are seen.

    Must not be called while a stream is open (the caller stops listening first).
    """
    sd = _sd()
    with PORTAUDIO_LOCK:
        sd._terminate()
        sd._initialize()


def list_input_devices() -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order."""
    sd = _sd()
    with PORTAUDIO_LOCK:
        try:
            devices = sd.query_devices()
            apis = sd.query_hostapis()
            default_in = sd.default.device[0]
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot list audio devices: {exc}") from exc
    out = []
    for dev in devices:
        if dev["max_input_channels"] <= 0:
            continue
        out.append(InputDevice(
            index=int(dev["index"]), name=str(dev["name"]),
            hostapi=str(apis[dev["hostapi"]]["name"]), channels=int(dev["max_input_channels"]),
            default_rate=float(dev["default_samplerate"]),
            is_default=int(dev["index"]) == default_in))
    return out


def resolve_device(spec: str | int | None, devices: list[InputDevice] | None = None) -> int | None:
    """``None``/"" -> None (the system default); an index or a (case-insensitive) name or
    unique name fragment -> the device index. Raises DeviceError naming the choices."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    devices = list_input_devices() if devices is None else devices
    choices = ", ".join(f"{d.index}: {d.name}" for d in devices) or "none"
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if any(d.index == index for d in devices):
            return index
        raise DeviceError(f"input device {index} not found; available inputs = [{choices}]")
    exact = [d for d in devices if d.name.lower() == text.lower()]
    if exact:
        return exact[0].index
    partial = [d for d in devices if text.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0].index
    if partial:
        names = ", ".join(d.name for d in partial)
        raise DeviceError(f"input device {text!r} is ambiguous; it matches [{names}]")
    raise DeviceError(f"input device {text!r} not found; available inputs = [{choices}]")


def open_input_stream(device: int | None, callback: Callable[..., Any], block_s: float = 0.05):
    """Open (not start) a mono float32 sounddevice.InputStream on ``device``.

    16 kHz is asked for first; a device that refuses it is opened at its own default rate
    (the caller resamples; the stream's ``samplerate`` says which). Raises DeviceError naming
    the device when neither works.
    """
    sd = _sd()
    with PORTAUDIO_LOCK:
        try:
            info = sd.query_devices(device, "input")
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"input device {device if device is not None else 'default'} "
                              f"is not available: {exc}") from exc
        rates = [SAMPLE_RATE]
        if int(info["default_samplerate"]) != SAMPLE_RATE:
            rates.append(int(info["default_samplerate"]))
        errors = []
        for rate in rates:
            try:
                return sd.InputStream(device=device, channels=1, samplerate=rate,
                                      dtype="float32", blocksize=int(rate * block_s),
                                      callback=callback)
            except (sd.PortAudioError, ValueError) as exc:
                errors.append(f"{rate} Hz: {exc}")
                log.info("input device %r refused %d Hz: %s", info["name"], rate, exc)
    raise DeviceError(f"cannot open input device {info['name']!r}: " + "; ".join(errors))
