"""Every widget renders real content: live panel, level meter, file panel, controls, About."""
from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtGui import QColor

from ser_studio.app.files.file_panel import FilePanel
from ser_studio.app.live.controls import Controls
from ser_studio.app.live.level_meter import LevelMeter
from ser_studio.app.live.live_panel import LivePanel, envelope
from ser_studio.app.shell.about import AboutDialog, model_card_markdown
from ser_studio.app.shell.model_info import ModelInfo
from ser_studio.app.shell.theme import emotion_colour
from ser_studio.model.audio.io import load_audio
from ser_studio.model.constants import SAMPLE_RATE


def _colours(widget) -> set[int]:
    """Distinct colours (coarsely quantised) in a grab of ``widget``."""
    img = widget.grab().toImage()
    step = 4
    return {img.pixel(x, y) & 0xF0F0F0 for x in range(0, img.width(), step)
            for y in range(0, img.height(), step)}


def _has_colour(widget, colour: QColor, tol: int = 24) -> bool:
    img = widget.grab().toImage()
    for x in range(0, img.width(), 2):
        for y in range(0, img.height(), 2):
            c = QColor(img.pixel(x, y))
            if (abs(c.red() - colour.red()) < tol and abs(c.green() - colour.green()) < tol
                    and abs(c.blue() - colour.blue()) < tol):
                return True
    return False


class FakeClock:
    """Stands in for time.monotonic: the test moves ``now`` (seconds)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def speech(speech_path):
    return load_audio(speech_path)


def test_live_panel_shows_emotion_bars_timeline_wave_and_attention(qtbot, speech,
                                                                   make_live_result):
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    hop, window = SAMPLE_RATE // 2, 5 * SAMPLE_RATE
    results = [make_live_result(speech[max(0, end - window):end], end)
               for end in range(hop, speech.size + 1, hop)]
    panel.clock = clock = FakeClock()
    for r in results:
        clock.now += hop / SAMPLE_RATE
        panel.set_result(r)
    panel.set_listening(True)
    panel.set_level(-18.0)
    count = panel.paint_count
    qtbot.waitUntil(lambda: panel.paint_count > count, timeout=2000)
    last = results[-1]
    assert last.label is not None
    assert panel.headline.emotion.text() == last.label.capitalize()
    assert panel.headline.confidence.text() == f"{last.confidence:.0%}"
    np.testing.assert_allclose(panel.bars.opts["height"], last.probs, rtol=1e-6)
    xs, ys = panel.timeline_curves[last.label].getData()
    assert len(xs) == len(results) and xs[-1] == 0.0 and xs[0] < -3.0
    wx, wy = panel.wave_curve.getData()
    assert wx.size > 1000 and np.ptp(wy) > 0.5
    ax, ay = panel.attention_curve.getData()
    assert ax.size == last.attention.size + 1
    assert panel.meter.level_db == -18.0
    assert _has_colour(panel, emotion_colour(last.label, last.labels.index(last.label)))
    assert len(_colours(panel)) > 20


def test_live_panel_no_speech_and_hidden_panel_skips_painting(qtbot, make_live_result):
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    silence = np.zeros(5 * SAMPLE_RATE, dtype=np.float32)
    panel.set_listening(True)
    panel.set_result(make_live_result(silence))
    qtbot.waitUntil(lambda: panel.headline.emotion.text() == "No speech", timeout=2000)
    assert panel.bars_note.textItem.toPlainText() == "no speech"
    panel.hide()
    count = panel.paint_count
    panel.set_result(make_live_result(silence, end=2 * silence.size))
    qtbot.wait(200)
    assert panel.paint_count == count  # hidden: nothing painted
    panel.show()
    qtbot.waitUntil(lambda: panel.paint_count > count, timeout=2000)
    panel.set_listening(False)
    qtbot.waitUntil(lambda: panel.headline.status.text().startswith("Stopped"), timeout=2000)


def _timeline(panel, qtbot, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The drawn (x, y) of one label's last-minute curve after the next paint."""
    panel._dirty = True
    count = panel.paint_count
    qtbot.waitUntil(lambda: panel.paint_count > count, timeout=2000)
    return panel.timeline_curves[label].getData()


def test_last_minute_chart_keeps_wall_clock_time_across_stop_start_and_restarts(
        qtbot, speech, make_live_result):
    """Stop, 20 s idle, Start: the stream's sample counter starts at 0 again, yet the old
    points stay 20 s to the left with the line broken between; a restart without a stop
    (calibration, a new device) breaks the line too."""
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.clock = clock = FakeClock()
    hop, window = SAMPLE_RATE // 2, 3 * SAMPLE_RATE
    wav = speech[:window]
    first = [make_live_result(wav, end) for end in range(window, window + 8 * hop, hop)]
    label = first[0].labels[0]

    def feed(results, listening=True):
        panel.set_listening(listening)
        for r in results:
            clock.now += hop / SAMPLE_RATE
            panel.set_result(r)

    feed(first)
    panel.set_listening(False)
    clock.now += 20.0
    feed([make_live_result(wav, end) for end in range(window, window + 4 * hop, hop)])
    x, y = _timeline(panel, qtbot, label)
    drawn = np.isfinite(y)
    assert drawn.sum() == 12 and x[-1] == 0.0
    assert np.all(np.diff(x) >= 0)  # time only goes forward
    assert x[drawn][7] == pytest.approx(-(20.0 + 4 * 0.5))  # the old last point: 22 s ago
    assert not drawn[8]  # the line breaks where listening stopped
    feed([make_live_result(wav, window)])  # restarted (sample counter back) while listening
    x, y = _timeline(panel, qtbot, label)
    assert np.all(np.diff(x) >= 0) and not np.isfinite(y[-2]) and np.isfinite(y[-1])
    clock.now += 61.0
    feed([make_live_result(wav, window + hop)])
    x, y = _timeline(panel, qtbot, label)
    assert np.isfinite(y).sum() == 1  # older than a minute: gone


def test_attention_strip_sits_over_the_audio_each_frame_read(qtbot, speech, make_live_result):
    """A frame's weight is drawn centred on the middle of the audio it was computed from
    (offset + attention_centre_s + j / rate), so the strip reaches the window's end and its
    peak sits over the speech, not ~0.4 s before it."""
    import dataclasses

    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    duration, rate, centre, offset = 5.0, 12.5, 0.39, 0.03
    frames, peak = 53, 40
    attention = np.full(frames, 0.1 / (frames - 1))
    attention[peak] = 0.9
    base = make_live_result(speech[:int(duration * SAMPLE_RATE)])
    prediction = dataclasses.replace(base.prediction, attention=attention,
                                     attention_rate=rate, attention_offset_s=offset)
    r = dataclasses.replace(base, prediction=prediction, attention_centre_s=centre)
    panel.set_listening(True)
    panel.set_result(r)
    count = panel.paint_count
    qtbot.waitUntil(lambda: panel.paint_count > count, timeout=2000)
    edges, heights = panel.attention_curve.getData()
    assert edges.size == frames + 1
    top = int(np.argmax(heights))
    assert top == peak
    assert (edges[top] + edges[top + 1]) / 2 == pytest.approx(
        offset + centre + peak / rate - duration)
    assert edges[-1] == pytest.approx(offset + centre + (frames - 0.5) / rate - duration)
    assert -0.4 < edges[-1] <= 0.0  # reaches the window's end, not 0.8 s before it


def test_envelope_keeps_extremes():
    wav = np.zeros(100_000, dtype=np.float32)
    wav[5_000], wav[70_000] = 0.9, -0.8
    x, y = envelope(wav, bins=500)
    assert x.size == y.size == 1000
    assert y.max() == pytest.approx(0.9) and y.min() == pytest.approx(-0.8)
    assert np.all(np.diff(x) >= 0)


def test_level_meter_holds_its_peak(qtbot):
    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.show()
    meter.set_level(-6.0)
    meter.set_level(-40.0)
    assert meter.level_db == -40.0 and meter.peak_db == -6.0
    meter.set_level(-200.0)
    assert meter.level_db == -60.0
    meter.resize(300, 26)
    assert len(_colours(meter)) > 4


def test_file_panel_shows_result_timeline_and_error(qtbot, predictor, speech_path, tmp_path):
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 650)
    panel.show()
    panel.set_labels(predictor.labels)
    result = predictor.predict_file(speech_path)
    panel.add_result(result)
    bad = str(tmp_path / "missing.wav")
    panel.add_error(bad, f"{bad}: file not found")
    assert panel.table.rowCount() == 2
    assert panel.table.item(0, 2).text() == result.overall.label.capitalize()
    assert panel.table.item(1, 4).text() == f"{bad}: file not found"
    panel.table.selectRow(0)
    np.testing.assert_allclose(panel.bars.opts["height"], result.overall.probs, rtol=1e-6)
    curves = panel.timeline_plot.listDataItems()
    assert len(curves) == len(predictor.labels)
    assert curves[0].getData()[0].size == len(result.windows)
    assert len(_colours(panel)) > 20
    panel.table.selectRow(1)
    assert "missing.wav" in panel.timeline_plot.plotItem.titleLabel.text


def test_controls_list_devices_and_report_choices(qtbot):
    controls = Controls()
    qtbot.addWidget(controls)
    with qtbot.waitSignal(controls.devicesListed, timeout=10_000):
        controls.refresh_devices()
    assert controls.device.itemText(0) == "System default input"
    assert controls.device.count() == 1 + len(controls.devices)
    with qtbot.waitSignal(controls.listenToggled) as toggled:
        controls.listen.click()
    assert toggled.args == [True] and controls.listen.text() == "Stop listening"
    assert not controls.refresh.isEnabled()  # no rescan while a stream is open
    with qtbot.waitSignal(controls.hopChanged):
        controls.hop.setValue(1.0)
    controls.window.setValue(1.0)
    controls.hop.setValue(2.0)  # a hop longer than the window drags the window along
    assert controls.window.value() == 2.0
    with qtbot.waitSignal(controls.openModelRequested):
        controls.model.activated.emit(controls.model.count() - 1)
    controls.set_model_path("/models/mine.safetensors")
    assert controls.model.currentText() == "mine"
    with qtbot.waitSignal(controls.modelChosen) as chosen:
        controls.model.activated.emit(0)
    assert chosen.args == [""]
    controls.resize(1200, 50)
    assert len(_colours(controls)) > 8


def test_about_shows_model_card_or_model_facts(qtbot, tmp_path, checkpoint_path):
    import json

    facts = json.loads(checkpoint_path.with_suffix(".json").read_text())
    info = ModelInfo(name="random_model (enhanced, logmel)", path=str(checkpoint_path),
                     labels=facts["labels"], facts=facts)
    text = model_card_markdown(info, card=tmp_path / "absent.md")
    assert "random_model" in text and "angry, happy, neutral, sad" in text
    assert "0.250 ± 0.000" in text and "norm_mean" not in text
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Default model\n\nTrained on IEMOCAP sessions 1-5.\n")
    dialog = AboutDialog(info, card=card)
    qtbot.addWidget(dialog)
    dialog.show()
    shown = dialog.browser.toPlainText()
    assert "Trained on IEMOCAP" in shown and "random_model" in shown
    assert shown.startswith("Languages: Its training languages are not recorded")


def test_about_names_the_languages_first_most_heard_first(tmp_path, checkpoint_path):
    import json

    facts = json.loads(checkpoint_path.with_suffix(".json").read_text())
    facts.update(languages={"English": 576, "Polish": 3076, "Korean": 300}, shipped=True)
    info = ModelInfo(name="default_model", path=str(checkpoint_path), labels=facts["labels"],
                     facts=facts)
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Default model\n")
    text = model_card_markdown(info, card=card)
    assert text == ("**Languages:** Trained on Polish (3076 clips), English (576) and Korean "
                    "(300) speech.\n\n# Default model\n")
    facts["languages"] = {"English": 576}
    assert model_card_markdown(info, card=card).startswith(
        "**Languages:** Trained on English (576 clips) speech only.")


def test_live_panel_says_when_the_input_clips_or_is_too_quiet(qtbot, speech, make_live_result):
    """The status line and the meter name the level problem with the measured value."""
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_listening(True)
    window = speech[:5 * SAMPLE_RATE]
    clipped = np.clip(window / np.max(np.abs(window)) * 10.0, -1.0, 1.0).astype(np.float32)
    panel.set_result(make_live_result(clipped))
    qtbot.waitUntil(lambda: "clipping" in panel.headline.status.text(), timeout=2000)
    assert "dBFS" in panel.headline.status.text() and "clipping" in panel.meter.warning
    quiet = (window / np.max(np.abs(window)) * 10 ** (-62 / 20)).astype(np.float32)
    panel.set_result(make_live_result(quiet, end=2 * quiet.size))
    qtbot.waitUntil(lambda: "very quiet" in panel.headline.status.text(), timeout=2000)
    assert "LUFS" in panel.meter.warning
    normal = (window / np.max(np.abs(window)) * 0.3).astype(np.float32)
    panel.set_result(make_live_result(normal, end=3 * normal.size))
    qtbot.waitUntil(lambda: panel.meter.warning == "", timeout=2000)
    assert "⚠" not in panel.headline.status.text()


def test_file_panel_plots_a_no_speech_file_without_numpy_warnings(qtbot, predictor, tmp_path):
    import warnings

    import soundfile as sf

    silent = tmp_path / "room.wav"
    rng = np.random.default_rng(0)
    sf.write(silent, (0.001 * rng.standard_normal(8 * 16000)).astype(np.float32), 16000)
    result = predictor.predict_file(silent)
    assert not any(p.speech for *_, p in result.windows)
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 650)
    panel.show()
    panel.set_labels(predictor.labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel.add_result(result)
        panel.table.selectRow(0)
        panel.grab()
    assert [str(w.message) for w in caught] == []
    assert "no speech in any window" in panel.timeline_plot.plotItem.titleLabel.text


def test_a_stopped_live_panel_paints_no_more(qtbot, speech, make_live_result):
    """stop() (the window closing) ends the display timer: results that still arrive are not
    painted."""
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.show()
    wav = speech[:3 * SAMPLE_RATE]
    count = panel.paint_count
    panel.set_result(make_live_result(wav, end=wav.size))
    qtbot.waitUntil(lambda: panel.paint_count > count, timeout=2000)
    panel.stop()
    count = panel.paint_count
    panel.set_result(make_live_result(wav, end=2 * wav.size))
    qtbot.wait(300)  # about ten display ticks
    assert panel.paint_count == count


def test_status_fields_count_dropped_blocks_and_stale_windows(qtbot):
    from PyQt5.QtWidgets import QStatusBar

    from ser_studio.app.shell.status_bar import StatusFields

    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = StatusFields(bar)
    status.set_blocks_lost(2, 1)
    status.set_stale(4)
    assert status.dropped.text() == "Dropped: 3 blocks · 4 windows"
    status.set_blocks_lost(5, 1)  # a later count replaces the earlier one
    assert status.drop_counts() == (5, 1, 4)
    assert status.dropped.text() == "Dropped: 6 blocks · 4 windows"
    assert "5 device overflows, 1 buffer overruns, 4 stale" in status.dropped.toolTip()
    status.show_device("USB Headset Mic " + "x" * 200)
    assert status.device.toolTip().endswith("x" * 200)
    assert len(status.device.text()) < len(status.device.toolTip())  # elided


def test_file_panel_shades_each_speech_segment_in_its_labels_colour(qtbot):
    """Two segments (happy at 2 s for 3 s, sad at 9 s for 1.5 s) become two bands behind the
    curves, spanning their speech, tinted by their labels, named in their tooltips; another
    file's selection clears them."""
    from pathlib import Path

    from ser_studio.model.inference.prediction import FileResult, Prediction
    from ser_studio.model.inference.segments import FinishedSegment

    labels = ["angry", "happy", "neutral", "sad"]
    probs = np.array([0.1, 0.6, 0.2, 0.1], np.float32)
    window = Prediction(label="happy", probs=probs, attention=np.zeros(0), attention_rate=1.0,
                        speech=True, speech_ratio=0.8, latency_s=0.0)
    segments = [FinishedSegment("happy", dict(zip(labels, [0.1, 0.7, 0.1, 0.1])), 3.0, 3,
                                None, start_s=2.0),
                FinishedSegment("sad", dict(zip(labels, [0.1, 0.1, 0.2, 0.6])), 1.5, 2,
                                None, start_s=9.0)]
    result = FileResult(path=Path("two.wav"), duration_s=12.0, overall=window,
                        windows=[(float(s), s + 3.0, window) for s in range(10)],
                        segments=segments)
    panel = FilePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_labels(labels)
    panel.add_result(result, labels)
    panel.add_error("bad.wav", "bad.wav: not audio")
    panel.table.selectRow(0)
    bands = panel.segment_bands
    assert [b.getRegion() for b in bands] == [(2.0, 5.0), (9.0, 10.5)]
    assert all(b in panel.timeline_plot.items() for b in bands)
    happy, sad = (b.brush.color() for b in bands)
    assert happy.rgb() == QColor(emotion_colour("happy", 1)).rgb() and happy.alpha() == 40
    assert sad.rgb() == QColor(emotion_colour("sad", 3)).rgb()
    assert bands[1].toolTip().startswith("sad 60%")
    assert "2 speech segments shaded" in panel.timeline_plot.plotItem.titleLabel.text
    panel.table.selectRow(1)
    assert panel.segment_bands == [] and not any(b in panel.timeline_plot.items() for b in bands)
