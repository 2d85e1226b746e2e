"""The recorder thread, fed by an injected stream replaying a real file through the callback."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from ser_studio.app.live.devices import DeviceError
from ser_studio.app.live.recorder import Recorder, level_dbfs
from ser_studio.model.constants import SAMPLE_RATE


def _collect(recorder):
    windows, levels, errors, stats = [], [], [], []
    recorder.window.connect(lambda w, end: windows.append((w, end)))
    recorder.level.connect(levels.append)
    recorder.error.connect(errors.append)
    recorder.stats.connect(lambda o, lost: stats.append((o, lost)))
    return windows, levels, errors, stats


def test_windows_equal_the_file_samples(qtbot, tone_path_16k, file_stream_factory):
    source, rate = sf.read(str(tone_path_16k), dtype="float32")
    assert rate == SAMPLE_RATE
    factory = file_stream_factory(tone_path_16k, speed=3.0)
    rec = Recorder(window_s=1.0, hop_s=0.25, stream_factory=factory)
    windows, levels, errors, _ = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=10_000):
        rec.start()
        qtbot.waitUntil(lambda: rec.ring.total_written >= source.size, timeout=8_000)
        qtbot.waitUntil(lambda: bool(windows) and windows[-1][1] > source.size - rec.hop_samples,
                        timeout=2_000)
        rec.request_stop()
    assert not errors
    assert len(windows) >= 6
    for wav, end in windows:
        assert wav.dtype == np.float32 and 0 < wav.size <= SAMPLE_RATE
        np.testing.assert_array_equal(wav, source[end - wav.size:end])
    ends = [end for _, end in windows]
    assert ends == sorted(ends) and all(b - a >= rec.hop_samples for a, b in zip(ends, ends[1:]))
    assert windows[-1][0].size == SAMPLE_RATE  # full once a second has been heard
    assert levels and max(levels) > -20.0  # the tone is loud
    assert factory.streams[0].active is False  # stream closed when the thread ended


def test_device_rate_is_resampled_to_16k(qtbot, tmp_path, file_stream_factory):
    rng = np.random.default_rng(3)
    src = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44_100 * 2) / 44_100)
           + 0.01 * rng.standard_normal(44_100 * 2)).astype(np.float32)
    path = tmp_path / "cd_rate.wav"
    sf.write(path, src, 44_100, subtype="FLOAT")
    rec = Recorder(window_s=2.0, hop_s=0.5, stream_factory=file_stream_factory(
        path, speed=4.0, block=1024))
    windows, _, errors, _ = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=10_000):
        rec.start()
        qtbot.waitUntil(lambda: rec.ring.total_written >= 2 * SAMPLE_RATE - 400, timeout=8_000)
        rec.request_stop()
    assert not errors and windows
    wav, end = windows[-1]
    expected = soxr.resample(src, 44_100, SAMPLE_RATE)
    assert expected.size - 2 * rec.hop_samples < end <= expected.size
    # Streaming and one-shot resampling agree away from the edges.
    mid = slice(2000, wav.size - 2000)
    np.testing.assert_allclose(wav[mid], expected[end - wav.size:end][mid], atol=2e-3)


def test_overflows_are_counted_and_reported(qtbot, tone_path_16k, file_stream_factory):
    rec = Recorder(window_s=1.0, hop_s=0.5, stream_factory=file_stream_factory(
        tone_path_16k, speed=4.0, overflow_every=5))
    _, _, errors, stats = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=10_000):
        rec.start()
        qtbot.waitUntil(lambda: rec.device_overflows >= 3, timeout=8_000)
        qtbot.waitUntil(lambda: bool(stats) and stats[-1][0] >= 3, timeout=2_000)
        rec.request_stop()
    assert not errors
    assert stats[-1][0] == rec.device_overflows >= 3


def test_device_open_failure_gives_an_error_signal(qtbot):
    def broken(device, callback):
        raise DeviceError("cannot open input device 'USB Mic': Device unavailable")

    rec = Recorder(device=7, device_label="USB Mic", stream_factory=broken)
    _, _, errors, _ = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=5_000):
        rec.start()
    assert len(errors) == 1 and "USB Mic" in errors[0] and "another" in errors[0]


def test_device_that_disappears_gives_an_error_signal(qtbot, tone_path_16k,
                                                      file_stream_factory):
    rec = Recorder(device_label="Headset", window_s=1.0, hop_s=0.5,
                   stream_factory=file_stream_factory(tone_path_16k, vanish_after=10))
    windows, _, errors, _ = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=5_000):
        rec.start()
    assert len(errors) == 1 and "Headset" in errors[0] and "stopped" in errors[0]
    assert windows  # it worked until the device went away


def test_a_pause_in_the_input_is_reported_but_not_fatal(qtbot, tone_path_16k,
                                                        file_stream_factory, monkeypatch):
    monkeypatch.setattr("ser_studio.app.live.recorder.STALL_S", 0.3)
    rec = Recorder(window_s=1.0, hop_s=0.5, stream_factory=file_stream_factory(
        tone_path_16k, speed=2.0, pause=(5, 1.0)))
    _, _, errors, _ = _collect(rec)
    stalls = []
    rec.stalled.connect(stalls.append)
    with qtbot.waitSignal(rec.finished, timeout=10_000):
        rec.start()
        qtbot.waitUntil(lambda: stalls == [True, False], timeout=5_000)
        rec.request_stop()
    assert not errors


def test_replaying_a_bad_file_is_a_device_error_naming_it(qtbot, tmp_path):
    from ser_studio.app.live.replay import replay_factory

    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"definitely not audio")
    rec = Recorder(stream_factory=replay_factory(bad))
    _, _, errors, _ = _collect(rec)
    with qtbot.waitSignal(rec.finished, timeout=5_000):
        rec.start()
    assert len(errors) == 1 and str(bad) in errors[0]


def test_invalid_timing_is_refused():
    with pytest.raises(ValueError, match="hop"):
        Recorder(window_s=1.0, hop_s=2.0)


def test_level_dbfs():
    assert level_dbfs(np.zeros(100, dtype=np.float32)) == -100.0
    assert level_dbfs(np.ones(100, dtype=np.float32)) == pytest.approx(0.0, abs=1e-6)
    assert level_dbfs(np.full(100, 0.1, dtype=np.float32)) == pytest.approx(-20.0, abs=1e-4)
