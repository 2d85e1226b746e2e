"""Calibrating the live model to the user's voice: the guided recording through an injected
input stream, the saved profile per device and model, its automatic use, Reset, and a profile
made for another model being refused."""
from __future__ import annotations

import json

import torch

from ser_studio.app.calibration.calibration import (ADAPTING_FROM_NOTHING, EXPECTS_CALIBRATION,
                                                    NOT_CALIBRATED, badge_text)
from ser_studio.app.calibration.profiles import ActiveProfile, profile_path
from ser_studio.model.adaptation.profile import load_profile, make_profile
from ser_studio.model.audio.io import load_audio
from ser_studio.model.config.schema import TrainConfig
from ser_studio.model.inference.predictor import Predictor

DEFAULT_INPUT = "System default input"  # the device a window without --device listens to
CHECKPOINT_MEAN = -6.0  # tests/app/conftest.py make_checkpoint's norm_mean


def live_mean(window) -> torch.Tensor:
    """The standardisation mean (D,) the live predictor uses now."""
    return window.inference.worker.predictor._mean


def uses_training_statistics(window) -> bool:
    return bool(torch.allclose(live_mean(window), torch.full_like(live_mean(window),
                                                                 CHECKPOINT_MEAN)))


def save_profile_of(checkpoint, speech_path, path):
    predictor = Predictor.load(checkpoint)
    profile = make_profile(predictor, [load_audio(speech_path)])
    path.parent.mkdir(parents=True, exist_ok=True)
    return profile.save(path)


def test_badge_text_and_profile_paths():
    assert badge_text(None) == NOT_CALIBRATED
    assert badge_text(ActiveProfile("USB mic", 23.4, "/x.json")) == \
        "Calibrated to USB mic: 23 s of speech"
    a, b = profile_path("/p", "USB mic (hw:1,0)", "ab" * 20), profile_path("/p", "Headset",
                                                                           "ab" * 20)
    assert a != b and a.suffix == ".json" and a.parent.name == "p"
    assert profile_path("/p", "Headset", "cd" * 20) != b


def test_guided_recording_saves_applies_and_resets(qtbot, make_window, speech_path,
                                                  file_stream_factory, tmp_path):
    window = make_window(stream_factory=file_stream_factory(speech_path, speed=2.0))
    badge = window.calibration.badge
    qtbot.waitUntil(lambda: window.inference.worker.predictor is not None, timeout=15_000)
    assert badge.text.text() == NOT_CALIBRATED
    assert uses_training_statistics(window)

    badge.calibrate.click()
    dialog = window.calibration.dialog
    assert dialog is not None and dialog.isVisible()
    levels = []  # every level the recorder sends the dialog's meter
    dialog.recorder.level.connect(levels.append)
    qtbot.waitUntil(lambda: dialog.capture.speech_s >= 3.0, timeout=20_000)
    assert "Speech so far" in dialog.speech.text()
    # The input level reached the meter: it shows the newest level, which had speech in it
    # at some point (the newest alone may fall in a pause between words).
    assert max(levels) > -60.0 and dialog.meter.level_db == max(-60.0, min(0.0, levels[-1]))
    qtbot.waitUntil(dialog.finish_button.isEnabled, timeout=15_000)
    dialog.finish_button.click()

    qtbot.waitUntil(lambda: badge.text.text().startswith("Calibrated to"), timeout=30_000)
    assert badge.text.text().startswith(f"Calibrated to {DEFAULT_INPUT}: ")
    saved = list((tmp_path / "profiles").glob("*.json"))
    assert len(saved) == 1
    assert load_profile(saved[0]).speech_seconds > 0
    assert not uses_training_statistics(window)
    assert badge.calibrate.text() == "Re-calibrate…" and badge.reset.isEnabled()
    qtbot.waitUntil(lambda: window.calibration.dialog is None, timeout=15_000)

    badge.reset.click()
    qtbot.waitUntil(lambda: badge.text.text() == NOT_CALIBRATED, timeout=20_000)
    assert not saved[0].exists()
    assert uses_training_statistics(window)
    assert not badge.reset.isEnabled()


def test_cancel_keeps_no_profile_and_resumes_listening(qtbot, make_window, speech_path,
                                                      file_stream_factory, tmp_path):
    factory = file_stream_factory(speech_path, speed=2.0)
    window = make_window(stream_factory=factory)
    window.start_listening()
    qtbot.waitUntil(lambda: len(factory.streams) == 1, timeout=15_000)
    window.actions_by_name["calibrate"].trigger()
    dialog = window.calibration.dialog
    assert not window.controls.listen.isChecked()  # listening pauses while calibrating
    qtbot.waitUntil(lambda: len(factory.streams) == 2, timeout=20_000)  # the dialog's input
    qtbot.waitUntil(lambda: dialog.capture.total_s > 0.5, timeout=20_000)
    dialog.reject()
    qtbot.waitUntil(lambda: window.calibration.dialog is None, timeout=15_000)
    qtbot.waitUntil(lambda: window.controls.listen.isChecked(), timeout=15_000)
    assert not (tmp_path / "profiles").exists() or not list((tmp_path / "profiles").iterdir())
    assert window.calibration.badge.text.text() == NOT_CALIBRATED


def test_saved_profile_is_applied_at_start(qtbot, make_window, checkpoint_path, speech_path,
                                           tmp_path):
    sha1 = Predictor.load(checkpoint_path).model_sha1()
    save_profile_of(checkpoint_path, speech_path,
                    profile_path(tmp_path / "profiles", DEFAULT_INPUT, sha1))
    window = make_window()
    badge = window.calibration.badge
    qtbot.waitUntil(lambda: badge.text.text().startswith("Calibrated to"), timeout=20_000)
    assert badge.text.text().startswith(f"Calibrated to {DEFAULT_INPUT}: ")
    assert not uses_training_statistics(window)


def test_profile_of_another_model_is_refused(qtbot, make_window, checkpoint_path,
                                             checkpoint_factory, speech_path, tmp_path):
    other = checkpoint_factory(tmp_path / "other" / "other.safetensors", seed=1)
    sha1 = Predictor.load(checkpoint_path).model_sha1()
    path = profile_path(tmp_path / "profiles", DEFAULT_INPUT, sha1)
    save_profile_of(other, speech_path, path)  # e.g. copied over from another model
    window = make_window()
    qtbot.waitUntil(lambda: "another model" in window.statusBar().currentMessage(),
                    timeout=20_000)
    assert window.calibration.badge.text.text() == NOT_CALIBRATED
    assert uses_training_statistics(window)
    assert path.exists()  # refused, not deleted


def test_a_model_trained_per_speaker_says_it_expects_calibration(qtbot, make_window,
                                                                 checkpoint_factory, tmp_path):
    """The badge reads the checkpoint's inference section (model.config.inference), not its
    training config: here the section says "speaker" and the train config "global"."""
    per_speaker = checkpoint_factory(tmp_path / "per_speaker" / "m.safetensors",
                                     train=TrainConfig(speaker_norm="global"))
    sidecar = per_speaker.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    doc["inference"]["speaker_norm"] = "speaker"
    sidecar.write_text(json.dumps(doc))
    window = make_window(model_path=str(per_speaker))
    badge = window.calibration.badge
    qtbot.waitUntil(lambda: badge.text.text() == EXPECTS_CALIBRATION, timeout=20_000)
    assert badge.text.property("warning") is True
    window.load_model(str(checkpoint_factory(tmp_path / "global" / "m.safetensors",
                                             train=TrainConfig())), "opened")
    qtbot.waitUntil(lambda: badge.text.text() == NOT_CALIBRATED, timeout=20_000)


def test_keep_adapting_is_sent_to_the_worker_shown_and_remembered(qtbot, make_window, settings):
    window = make_window()
    badge = window.calibration.badge
    assert not badge.adapting.isChecked()
    badge.adapting.setChecked(True)
    qtbot.waitUntil(lambda: window.inference.worker._adapting is not None, timeout=5_000)
    assert badge.text.text() == ADAPTING_FROM_NOTHING and settings.adapt_live
    assert badge_text(ActiveProfile("USB mic", 41.0, "/x.json"), adapting=True) == \
        "Calibrated to USB mic: 41 s of speech (adapting)"
    window.close()
    again = make_window()
    assert again.calibration.badge.adapting.isChecked()
    qtbot.waitUntil(lambda: again.inference.worker._adapting is not None, timeout=5_000)


def calibrate_for_3_s_of_speech(qtbot, window) -> None:
    """Click Calibrate, let the dialog hear 3 s of speech, Finish, and wait for the profile."""
    badge = window.calibration.badge
    badge.calibrate.click()
    dialog = window.calibration.dialog
    qtbot.waitUntil(lambda: dialog.capture.speech_s >= 3.0, timeout=20_000)
    qtbot.waitUntil(dialog.finish_button.isEnabled, timeout=15_000)
    dialog.finish_button.click()
    qtbot.waitUntil(lambda: window.calibration.dialog is None, timeout=30_000)


def test_a_replay_is_its_own_input_and_never_shares_a_microphones_profile(
        qtbot, make_window, checkpoint_path, speech_path, tmp_path):
    """Issue 23: with --replay the Input box names the replay, calibrating saves the profile
    under it, and neither the microphone's profile nor the replay's crosses over."""
    from ser_studio.app.live.replay import replay_factory

    folder, sha1 = tmp_path / "profiles", Predictor.load(checkpoint_path).model_sha1()
    mic = save_profile_of(checkpoint_path, speech_path, profile_path(folder, DEFAULT_INPUT, sha1))
    mic_bytes = mic.read_bytes()
    window = make_window(stream_factory=replay_factory(speech_path, speed=2.0))
    controls, badge = window.controls, window.calibration.badge
    assert [controls.device.itemText(i) for i in range(controls.device.count())] == \
        ["Replay: speech.wav"]
    assert window.status.device.toolTip() == "Input: Replay: speech.wav"
    calibrate_for_3_s_of_speech(qtbot, window)
    replay = profile_path(folder, "Replay: speech.wav", sha1)
    qtbot.waitUntil(lambda: window.calibration.active is not None
                    and window.calibration.active.path == str(replay), timeout=30_000)
    assert badge.text.text().startswith("Calibrated to Replay: speech.wav: ")
    assert mic.read_bytes() == mic_bytes  # the microphone's profile is untouched
    assert not uses_training_statistics(window)
    window.close()

    again = make_window()  # started without --replay: the microphone and its own profile
    qtbot.waitUntil(lambda: again.calibration.active is not None, timeout=20_000)
    assert again.calibration.active.path == str(mic)
    assert again.calibration.badge.text.text().startswith(f"Calibrated to {DEFAULT_INPUT}: ")
    assert again.controls.current_device_text() == DEFAULT_INPUT


def test_a_checkpoints_profile_is_applied_with_its_onnx_export(qtbot, make_window,
                                                               checkpoint_path, speech_path,
                                                               tmp_path):
    from ser_studio.model.exported.write import export_model

    exported = export_model(checkpoint_path, tmp_path / "exported.onnx").network
    sha1 = Predictor.load(checkpoint_path).model_sha1()
    saved = save_profile_of(checkpoint_path, speech_path,
                            profile_path(tmp_path / "profiles", DEFAULT_INPUT, sha1))
    window = make_window(model_path=str(exported))
    qtbot.waitUntil(lambda: window.calibration.active is not None, timeout=20_000)
    assert window.calibration.active.path == str(saved)
    assert window.model_info.path == str(exported)
    assert not uses_training_statistics(window)
