"""Integration through a real virtual microphone: PulseAudio with a null sink whose monitor is
the default source. Speech played into the sink reaches the running window through
sounddevice/PortAudio (ALSA's pulse plugin), the live panel shows a prediction and a history
row is written. Skips only when PulseAudio or espeak-ng is not installed."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from ser_studio.app.live.devices import rescan
from ser_studio.app.shell.main_window import MainWindow

BINARIES = ("pulseaudio", "pactl", "paplay", "espeak-ng")
pytestmark = pytest.mark.skipif(
    any(shutil.which(b) is None for b in BINARIES),
    reason="needs PulseAudio (pulseaudio, pactl, paplay) and espeak-ng")


def _start_pulseaudio(env: dict) -> None:
    base = ["pulseaudio", "-D", "-n", "--exit-idle-time=-1",
            "--load=module-null-sink sink_name=vmic",
            "--load=module-native-protocol-unix"]
    errors = []
    for extra in ([], ["--system=false"], ["--disallow-exit"]):
        done = subprocess.run(base + extra, env=env, capture_output=True, text=True)
        if done.returncode == 0:
            break
        errors.append(done.stderr.strip())
    else:
        raise RuntimeError("pulseaudio did not start: " + " | ".join(errors))
    deadline = time.monotonic() + 10
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("pulseaudio started but does not answer pactl")
        time.sleep(0.1)
    for cmd in (["pactl", "set-default-sink", "vmic"],
                ["pactl", "set-default-source", "vmic.monitor"]):
        subprocess.run(cmd, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def virtual_mic():
    """A private PulseAudio daemon whose default source is the monitor of sink "vmic"."""
    runtime = tempfile.mkdtemp(prefix="pulse-")
    saved = os.environ.get("PULSE_RUNTIME_PATH")
    os.environ["PULSE_RUNTIME_PATH"] = runtime  # sounddevice's ALSA pulse plugin reads this
    env = dict(os.environ)
    try:
        _start_pulseaudio(env)
        rescan()  # PortAudio must look at the audio system again, now with the daemon
        yield env
    finally:
        subprocess.run(["pulseaudio", "-k"], env=env, capture_output=True)
        if saved is None:
            os.environ.pop("PULSE_RUNTIME_PATH", None)
        else:
            os.environ["PULSE_RUNTIME_PATH"] = saved
        rescan()
        shutil.rmtree(runtime, ignore_errors=True)


def test_speech_into_the_virtual_mic_gives_a_prediction_and_a_history_row(
        qtbot, virtual_mic, checkpoint_path, history, settings, tmp_path):
    speech = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(speech),
                    "Hello! I am really happy to see you here today. What a lovely surprise."],
                   check=True, capture_output=True)
    settings.keep_audio = True  # the user chose to keep the audio of live segments
    window = MainWindow(model_path=str(checkpoint_path), history=history, settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=20_000)
    qtbot.waitUntil(lambda: window.controls.device.count() > 0, timeout=10_000)
    with qtbot.waitSignal(window.listening.opened, timeout=10_000):
        window.start_listening()
    player = subprocess.Popen(["paplay", "--device=vmic", str(speech)], env=virtual_mic)
    try:
        labels = window.model_info.labels
        qtbot.waitUntil(
            lambda: window.live_panel.headline.emotion.text().lower() in labels, timeout=20_000)
        result = window.live_panel._result
        assert result.speech and result.label in labels and result.wav.std() > 0.01
        assert player.wait(timeout=20) == 0
        # The segment closes after a second of silence and is written to the history.
        qtbot.waitUntil(lambda: history.count() >= 1, timeout=15_000)
    finally:
        if player.poll() is None:
            player.kill()
    row = history.query()[0]
    assert row.source == "microphone" and row.label in labels and row.duration_s > 1.0
    assert row.has_audio and history.audio(row.id).std() > 0.01
    assert window._error_box is None or not window._error_box.isVisible()
    window.close()


def test_calibrating_through_the_virtual_mic_saves_and_applies_a_profile(
        qtbot, virtual_mic, checkpoint_path, settings, tmp_path):
    speech = tmp_path / "calibrate.wav"
    subprocess.run(["espeak-ng", "-w", str(speech),
                    "This is how I usually talk. I am reading a few sentences aloud so the "
                    "program can learn what my voice sounds like on this microphone."],
                   check=True, capture_output=True)
    window = MainWindow(model_path=str(checkpoint_path), settings=settings,
                        profiles_dir=tmp_path / "profiles")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=20_000)
    qtbot.waitUntil(lambda: window.controls.device.count() > 0, timeout=10_000)
    badge = window.calibration.badge
    qtbot.waitUntil(lambda: badge.text.text() == "Not calibrated", timeout=5_000)
    window.calibration.start()
    dialog = window.calibration.dialog
    qtbot.waitUntil(dialog.recorder.isRunning, timeout=5_000)
    player = subprocess.Popen(["paplay", "--device=vmic", str(speech)], env=virtual_mic)
    try:
        qtbot.waitUntil(lambda: dialog.capture.speech_s >= 3.0, timeout=20_000)
        dialog.finish()
        qtbot.waitUntil(lambda: badge.text.text().startswith("Calibrated to"), timeout=30_000)
    finally:
        if player.poll() is None:
            player.kill()
    saved = list((tmp_path / "profiles").glob("*.json"))
    assert len(saved) == 1
    predictor = window.inference.worker.predictor
    assert not bool((predictor._mean == -6.0).all())  # no longer the checkpoint's statistics
    assert window._error_box is None or not window._error_box.isVisible()
    window.close()
