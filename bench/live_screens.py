"""Screenshots of the live view: the last-minute chart across Stop and Start, the attention
strip over a window whose speech is in its second half, and the window after a model failed to
load.

    QT_QPA_PLATFORM=offscreen python -m bench.live_screens OUT_DIR [--model CKPT]

Speech comes from espeak-ng (read back at 16 kHz). For the chart, the app listens to it through
the replay input (app/live/replay.py) in real time for about 45 s (listen, Stop, wait, Start,
listen), so the chart's times are wall-clock times. The attention strip is the model's own
prediction of a 5 s window (2.5 s of quiet noise, then speech) drawn by the live panel. Writes
live_chart_after_stop_start.png, attention_strip.png (attention_strip_before.png: the same window
drawn as before) and no_model.png to OUT_DIR.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


from ser_studio.model.audio.io import load_audio
from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger("live_screens")
TEXTS = ("Well, I suppose we could try it again tomorrow.",
         "This is wonderful news, thank you so much!",
         "I can't believe you did that again.")


def _pump(app, seconds: float, until=None) -> None:
    """Process Qt events for ``seconds`` (or until ``until()`` holds, at most that long)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        app.processEvents()
        time.sleep(0.02)


def speech(folder: Path, text: str, name: str) -> np.ndarray:
    """espeak-ng reading ``text``: (N,) float32 at 16 kHz."""
    path = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def replay_file(folder: Path) -> Path:
    """The sentences with 1.5 s of quiet room noise after each, at 16 kHz: what is replayed."""
    rng = np.random.default_rng(0)
    parts = []
    for i, text in enumerate(TEXTS):
        parts += [speech(folder, text, f"s{i}"),
                  0.003 * rng.standard_normal(int(1.5 * SAMPLE_RATE)).astype(np.float32)]
    path = folder / "replay.wav"
    sf.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path


def make_window(folder: Path, model: str | None, stream_factory=None, **kwargs):
    from ser_studio.app.history.history_store import HistoryStore
    from ser_studio.app.shell.main_window import MainWindow
    from ser_studio.app.shell.settings import AppSettings, ini_qsettings

    window = MainWindow(model_path=model, history=HistoryStore(folder / "history.sqlite3"),
                        settings=AppSettings(ini_qsettings(folder / "settings.ini")),
                        stream_factory=stream_factory, profiles_dir=folder / "profiles",
                        **kwargs)
    window.show_error = lambda title, text: log.info("%s: %s", title, text)
    window.resize(1280, 820)
    window.show()
    return window


def chart_after_stop_start(app, folder: Path, out: Path, model: str | None) -> None:
    """Listen 18 s, Stop, wait 8 s, Start, listen 16 s; grab the Live tab."""
    from ser_studio.app.live.replay import replay_factory

    window = make_window(folder / "chart", model, replay_factory(replay_file(folder), loop=True))
    _pump(app, 120, until=lambda: window.model_info is not None)
    for listen_s, pause_s in ((18, 8), (16, 0)):
        window.start_listening()
        _pump(app, listen_s)
        if pause_s:
            window.stop_listening()
            _pump(app, pause_s)
    window.tabs.widget(0).grab().save(str(out / "live_chart_after_stop_start.png"))
    window.stop_listening()
    _pump(app, 1)
    window.close()


def attention_strip(app, folder: Path, out: Path, model: str | None) -> None:
    """The live panel's waveform and attention of a 5 s window: 2.5 s of quiet noise, then
    2.5 s of speech; attention_strip_before.png draws it as before the strip was centred on
    each frame's audio (each frame's step started where its audio starts)."""
    import dataclasses

    from ser_studio.app.live.inference_worker import InferenceWorker
    from ser_studio.app.live.live_panel import LivePanel

    rng = np.random.default_rng(1)
    half = int(2.5 * SAMPLE_RATE)
    words = speech(folder, TEXTS[1], "window")[:half]
    wav = np.concatenate([0.003 * rng.standard_normal(half).astype(np.float32),
                          np.pad(words, (0, half - words.size))])
    worker = InferenceWorker(history=None)  # its live path, run here on the first window
    results = []
    worker.result.connect(results.append)
    worker.load_model(model or "")
    worker.submit(wav, wav.size)  # analysed at once: the worker lives in this thread here
    result = results[0]
    panel = LivePanel()
    panel.resize(1100, 640)
    panel.show()
    panel.set_listening(True)
    before = dataclasses.replace(result, attention_centre_s=0.5 / result.attention_rate)
    for shown, name in ((before, "attention_strip_before.png"), (result, "attention_strip.png")):
        panel.set_result(shown)
        _pump(app, 0.5)
        panel.wave_plot.grab().save(str(out / name))
    panel.close()


def no_model(app, folder: Path, out: Path) -> None:
    """The window after its model failed to load (no model before it)."""
    bad = folder / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    window = make_window(folder / "none", str(bad))
    _pump(app, 60, until=lambda: window.live_panel.headline.emotion.text() == "No model")
    _pump(app, 0.5)
    window.grab().save(str(out / "no_model.png"))
    window.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--model", help="checkpoint (default: the shipped model)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from PyQt5.QtWidgets import QApplication

    from ser_studio.app.shell.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for sub in ("chart", "none"):
            (folder / sub).mkdir()
        attention_strip(app, folder, args.out, args.model)
        no_model(app, folder, args.out)
        chart_after_stop_start(app, folder, args.out, args.model)
    log.info("screenshots in %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
