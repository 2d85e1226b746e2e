"""Measure the desktop app while it listens: inference latency per window and GUI stalls.

    python -m bench.bench_app_latency [--seconds 20] [--source virtual-mic|replay]

The real main window runs (offscreen unless --show) with the shipped default model (or, with
--model random, random weights of the heavier enhanced defaults, ModelConfig()), listening to
espeak-ng speech with pauses, either through a private PulseAudio null sink whose monitor is
the default source ("virtual-mic", the default when pulseaudio and paplay exist) or replayed
through the recorder's callback path ("replay").

Printed:
- inference latency per window: the worker's LiveResult.latency_s (VAD + features + network
  for one window, in the worker thread), over all windows and over speech windows;
- capture-to-result age: from the recorder emitting a window to the worker's result;
- the longest GUI event-loop stall: a 10 ms QTimer on the GUI thread records the gap between
  its ticks; a stall is the gap beyond the 10 ms interval.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


SENTENCES = [
    "I can't believe you did that again, this is completely unacceptable.",
    "This is wonderful news, thank you so much, I am so happy for you!",
    "Well, I suppose we could try it again tomorrow morning.",
    "I miss the old days, everything feels so empty now.",
]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="listening time measured")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds ignored at the start")
    p.add_argument("--source", choices=("virtual-mic", "replay"), default=None)
    p.add_argument("--show", action="store_true", help="use the real display (not offscreen)")
    p.add_argument("--model", default="default",
                   help="checkpoint to run: 'default' (the shipped model), 'random' (random "
                        "weights of the heavier ModelConfig() enhanced defaults) or a path")
    return p.parse_args(argv)


def spoken_sentences(folder: Path, pause_s: float) -> np.ndarray:
    """The SENTENCES spoken by espeak-ng, each followed by ``pause_s`` of silence: (N,)
    float32 at 16 kHz (wav files of the sentences are left in ``folder``)."""
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.constants import SAMPLE_RATE

    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed for speech (the VAD rejects synthetic tones)")
    parts = []
    for k, text in enumerate(SENTENCES):
        path = folder / f"s{k}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        parts += [load_audio(path), np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)]
    return np.concatenate(parts)


def make_speech(folder: Path) -> Path:
    """espeak-ng sentences separated by 1.5 s pauses, as one 16 kHz wav."""
    import soundfile as sf

    from ser_studio.model.constants import SAMPLE_RATE

    out = folder / "speech.wav"
    sf.write(out, spoken_sentences(folder, 1.5), SAMPLE_RATE)
    return out


def make_checkpoint(folder: Path) -> Path:
    """Random weights, ModelConfig() defaults (enhanced), log-mel frontend, 4 classes."""
    import torch

    from ser_studio.model.config.schema import FrontendConfig, ModelConfig
    from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
    from ser_studio.model.networks.registry import build_network

    torch.manual_seed(0)
    cfg = ModelConfig()
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg, train=None,
                      labels=["angry", "happy", "neutral", "sad"][:cfg.n_classes],
                      norm_mean=[-6.0] * cfg.input_dim, norm_std=[3.0] * cfg.input_dim,
                      state_dict=build_network(cfg).state_dict())
    return save_checkpoint(ckpt, folder / "bench_model.safetensors")


class VirtualMic:
    """A private PulseAudio daemon (null sink "vmic", default source its monitor) and a
    thread that keeps playing a wav into it."""

    def __init__(self, wav: Path):
        self.wav = wav
        self.runtime = tempfile.mkdtemp(prefix="pulse-bench-")
        os.environ["PULSE_RUNTIME_PATH"] = self.runtime
        self.env = dict(os.environ)
        self._stop = threading.Event()

    def __enter__(self):
        subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1",
                        "--load=module-null-sink sink_name=vmic",
                        "--load=module-native-protocol-unix"], env=self.env, check=True,
                       capture_output=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("pulseaudio does not answer")
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-sink", "vmic"], env=self.env, check=True)
        subprocess.run(["pactl", "set-default-source", "vmic.monitor"], env=self.env, check=True)
        from ser_studio.app.live.devices import rescan

        rescan()
        threading.Thread(target=self._play, daemon=True).start()
        return self

    def _play(self):
        while not self._stop.is_set():
            subprocess.run(["paplay", "--device=vmic", str(self.wav)], env=self.env)

    def __exit__(self, *exc):
        self._stop.set()
        subprocess.run(["pulseaudio", "-k"], env=self.env, capture_output=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


def make_window(checkpoint: Path, speech: Path, folder: Path, replay: bool):
    """The real main window (temporary history and settings), shown."""
    from PyQt5.QtWidgets import QApplication

    from ser_studio.app.history.history_store import HistoryStore
    from ser_studio.app.live.replay import replay_factory
    from ser_studio.app.shell.main_window import MainWindow
    from ser_studio.app.shell.settings import AppSettings, ini_qsettings
    from ser_studio.app.shell.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    apply_theme(app)
    window = MainWindow(model_path=str(checkpoint), history=HistoryStore(folder / "h.sqlite3"),
                        settings=AppSettings(ini_qsettings(folder / "settings.ini")),
                        stream_factory=replay_factory(speech, loop=True) if replay else None)
    window.resize(1280, 820)
    window.show()
    return app, window


def run_window(args, checkpoint: Path, speech: Path, folder: Path, replay: bool) -> dict:
    """Listen for warmup + seconds; returns the raw measurements."""
    import torch
    from PyQt5.QtCore import Qt, QTimer

    app, window = make_window(checkpoint, speech, folder, replay)
    m = {"results": [], "gaps": [], "measuring": False, "errors": []}
    window.inference.worker.result.connect(  # runs in the worker thread (direct connection)
        lambda r: m.setdefault("worker_threads", torch.get_num_threads()), Qt.DirectConnection)
    window.inference.worker.result.connect(
        lambda r: m["measuring"] and m["results"].append(r))
    window.listening.error.connect(m["errors"].append)
    last = [time.perf_counter()]

    def tick():  # a 10 ms timer on the GUI thread: its gaps are the event loop's stalls
        now = time.perf_counter()
        if m["measuring"]:
            m["gaps"].append(now - last[0])
        last[0] = now

    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(tick)

    def begin():
        m.update(measuring=True, t0=time.perf_counter())
        last[0] = m["t0"]

    def finish():
        m.update(elapsed=time.perf_counter() - m["t0"], measuring=False,
                 paints=window.live_panel.paint_count,
                 stats=window.status.drop_counts()[:2],
                 stale=window.inference.worker.stale_dropped,
                 history_rows=window.history.count())
        window.close()
        app.quit()

    def start_when_loaded():
        if window.model_info is None:
            QTimer.singleShot(50, start_when_loaded)
            return
        window.start_listening()
        ticker.start()
        QTimer.singleShot(int(args.warmup * 1000), begin)
        QTimer.singleShot(int((args.warmup + args.seconds) * 1000), finish)

    QTimer.singleShot(0, start_when_loaded)
    app.exec_()
    return m


def _ms(values) -> str:
    v = np.asarray(values, dtype=float) * 1000
    if v.size == 0:
        return "n/a"
    return (f"mean {v.mean():6.1f}  median {np.median(v):6.1f}  p95 "
            f"{np.percentile(v, 95):6.1f}  max {v.max():6.1f} ms  (n={v.size})")


def report(m: dict, source: str) -> None:
    results = m["results"]
    speech = [r for r in results if r.speech]
    gaps = np.asarray(m["gaps"])
    stalls = np.clip(gaps - 0.010, 0, None)
    print(f"source: {source}; listened {m['elapsed']:.1f} s; model: {m['model']}; "
          "window 5 s, hop 0.5 s")
    print(f"torch intra-op threads in the inference worker: {m.get('worker_threads')}; "
          f"CPU cores: {os.cpu_count()}")
    print(f"windows analysed: {len(results)} ({len(speech)} with speech); stale windows "
          f"dropped: {m['stale']}; device overflows / ring overruns: {m['stats']}")
    print(f"inference latency per window, all:    {_ms([r.latency_s for r in results])}")
    print(f"inference latency per window, speech: {_ms([r.latency_s for r in speech])}")
    print(f"capture-to-result age, all:           {_ms([r.age_s for r in results])}")
    print(f"GUI event loop: {gaps.size} ticks of a 10 ms timer; longest gap "
          f"{gaps.max() * 1000:.1f} ms (stall {stalls.max() * 1000:.1f} ms beyond the "
          f"interval); p99 gap {np.percentile(gaps, 99) * 1000:.1f} ms; median gap "
          f"{np.median(gaps) * 1000:.1f} ms")
    print(f"live panel full repaints: {m['paints']} ({m['paints'] / m['elapsed']:.1f}/s; level "
          f"meter repaints not counted); history rows written: {m['history_rows']}")
    if m["errors"]:
        print("device errors:", *m["errors"], sep="\n  ")


def breakdown(checkpoint: Path, speech: Path, n: int = 10) -> None:
    """Where one window's time goes, measured outside the app on the same windows."""
    from ser_studio.model.audio import vad
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.constants import LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES
    from ser_studio.model.inference.predictor import Predictor

    predictor = Predictor.load(checkpoint)
    wav = load_audio(speech)
    starts = range(0, wav.size - LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES)
    windows = [wav[s:s + LIVE_BUFFER_SAMPLES] for s in list(starts)[:n]]
    timings = {"silero-vad on the 5 s window": [], "features + network": [],
               "silero-vad on the 0.5 s hop": []}
    for w in windows[:2]:  # warm-up: first calls load silero and settle torch
        predictor.predict(w, vad=True)
    for w in windows:
        t0 = time.perf_counter()
        vad.speech_ratio(w)
        t1 = time.perf_counter()
        predictor.predict(w, vad=False)
        t2 = time.perf_counter()
        vad.speech_ratio(w[-LIVE_HOP_SAMPLES:])
        t3 = time.perf_counter()
        for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2)):
            timings[key].append(value)
    print("breakdown of one window, measured before the app starts (same windows, this "
          "thread):")
    for key, values in timings.items():
        print(f"  {key:30s} {_ms(values)}")


def main(argv=None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if not args.show:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    has_pulse = all(shutil.which(b) for b in ("pulseaudio", "pactl", "paplay"))
    source = args.source or ("virtual-mic" if has_pulse else "replay")
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        folder = Path(tmp)
        speech = make_speech(folder)
        checkpoint = choose_checkpoint(args.model, folder)
        breakdown(checkpoint, speech)  # first, in a fresh process
        if source == "virtual-mic":
            with VirtualMic(speech):
                m = run_window(args, checkpoint, speech, folder, replay=False)
        else:
            m = run_window(args, checkpoint, speech, folder, replay=True)
    m["model"] = (f"{checkpoint.name} (random weights, ModelConfig() enhanced defaults)"
                  if args.model == "random" else str(checkpoint))
    report(m, source)
    return 0


def choose_checkpoint(spec: str, folder: Path) -> Path:
    """The shipped default model, a random-weights enhanced model, or a given checkpoint."""
    if spec == "random":
        return make_checkpoint(folder)
    if spec == "default":
        from ser_studio.model.inference.predictor import default_model_path

        return default_model_path()
    return Path(spec)


if __name__ == "__main__":
    sys.exit(main())
