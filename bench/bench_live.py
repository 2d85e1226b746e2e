"""Measure the live path's cost: CPU per 5 s window every 0.5 s, older paths against today's.

    python -m bench.bench_live [--seconds 20] [--repeats 3] [--threads 1 2] [--app-seconds 20]
        [--paths old full torch new] [--model MODEL]

Paths (``--paths``, default all four):
- OLD, the code before streaming VAD: ``Predictor.predict(wav, vad=True)`` (silero-vad over the
  whole 5 s window at every hop) and silero again over the hop's 0.5 s, all on torch;
- FULL, the code before streaming features: today's worker with its feature cache off, so the
  frontend runs over the whole window at every speech hop (``Predictor.window_features``);
- NEW, today's InferenceWorker on the sliding-window engine (model.inference.window_stream): each
  hop's new samples go once through silero in streaming form (model.audio.speech_track), the
  network runs on speech windows only, and their
  features come from the stream's cache (model.features.live), each frame computed once; the
  network and the GE2E LSTM run on onnxruntime (``Predictor.load(runtime="auto")``,
  model.onnx.cache);
- TORCH, the NEW worker with ``runtime="torch"``: the code before model.onnx.cache.
All run through the worker's own ``_live`` (segments and result signals included) on the
default model (``Predictor.load()``) or ``--model`` (a checkpoint or a run's fold folder),
over an espeak-ng speech stream (sentences with short pauses) and a noise-only stream, window
by window as the recorder emits them.

Printed:
1. CPU ms per window (process CPU time, every torch thread counted) split by stage: ``vad``
   (silero), ``features`` (frontend and loudness), ``network``, ``other`` (the rest of the
   worker), and the slowest window (``worst``), as min/median/max over ``--repeats`` runs of
   each stream, for each torch thread count; then the NEW/OLD ratios (NEW at the worker's default
   thread count against OLD at torch's default) and NEW/FULL, NEW/TORCH, NEW/OLD at equal
   thread counts.
2. With ``--app-seconds`` > 0: the CPU the listening process uses (recorder thread + inference
   worker thread, no GUI painting) as % of one core, while a file is replayed in real time
   through the recorder's callback path, for speech and for quiet noise: with no model loaded
   (``idle``: the recorder and the worker's bookkeeping only), the OLD, TORCH and NEW workers,
   each at its own thread count (OLD: torch's default; TORCH and NEW: app/shell/torch_threads.py).
   Each case runs in its own subprocess (``--child``).
Run it with OMP_NUM_THREADS unset and with OMP_NUM_THREADS=1.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


STAGES = ("vad", "features", "network", "other")
PATHS = ("old", "full", "torch", "new")
TORCH_PATHS = ("old", "torch")  # paths whose predictor runs on torch only


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each stream")
    p.add_argument("--repeats", type=int, default=3, help="runs of each stream per path")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="torch intra-op thread counts to measure")
    p.add_argument("--app-seconds", type=float, default=20.0,
                   help="listening time per app CPU case (0: skip that part)")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS),
                   help="live paths to measure (see above)")
    p.add_argument("--model", default="", help="checkpoint to measure (default: the shipped one)")
    p.add_argument("--child", choices=("old", "torch", "new", "idle"), help=argparse.SUPPRESS)
    p.add_argument("--wav", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- the old path and the stage clock ------------------------------------------------------

def old_worker_class():
    """InferenceWorker with the live path as it was before streaming VAD (kept here to be
    measured): silero over the whole window inside predict, then again over the hop; torch
    threads left at the process default."""
    import torch

    from ser_studio.app.live import inference_worker as iw
    from ser_studio.model.audio.vad import speech_ratio
    from ser_studio.model.inference.window_stream import MIN_HOP_SPEECH, WindowStream

    class OldWindowStream(WindowStream):
        """The engine with the old gate: silero over the whole window inside predict, then
        over the hop."""

        def _gate(self, wav, ratio, started):
            return self.predictor.predict(wav, vad=True)

        def _hop_speech(self, fresh, end):
            return speech_ratio(fresh) >= MIN_HOP_SPEECH

    class OldInferenceWorker(iw.InferenceWorker):
        def __init__(self, threads: int | None = None, **kwargs):
            super().__init__(threads=threads or torch.get_num_threads(), **kwargs)

        def load_model(self, path):
            super().load_model(path)
            if self.predictor is not None:
                self._engine = OldWindowStream(self.predictor, vad=False)

    return OldInferenceWorker


class StageClock:
    """Process CPU seconds and calls per stage, summed over wrapped calls."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def reset(self) -> None:
        self.totals, self.counts = {}, {}

    def add(self, stage: str, seconds: float) -> None:
        self.totals[stage] = self.totals.get(stage, 0.0) + seconds
        self.counts[stage] = self.counts.get(stage, 0) + 1

    def wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.process_time() - started)
        timed.timed = True
        return timed


def instrument(predictor, clock: StageClock) -> None:
    """Time silero (old: model.audio.vad.speech_ratio; new: SpeechTrack.feed/ratio; wrapped
    once), the features and level, and the network, wherever the paths call them."""
    from ser_studio.model.audio import vad
    from ser_studio.model.audio.speech_track import SpeechTrack

    if not getattr(SpeechTrack.feed, "timed", False):
        vad.speech_ratio = clock.wrap("vad", vad.speech_ratio)
        SpeechTrack.feed = clock.wrap("vad", SpeechTrack.feed)
        SpeechTrack.ratio = clock.wrap("vad", SpeechTrack.ratio)
    predictor.window_features = clock.wrap("features", predictor.window_features)
    predictor.windows_features = clock.wrap("features", predictor.windows_features)
    predictor.level = clock.wrap("features", predictor.level)
    predictor.predict_features = clock.wrap("network", predictor.predict_features)
    return clock


# ---- audio ---------------------------------------------------------------------------------

def speech_stream(seconds: float, folder: Path) -> np.ndarray:
    """espeak-ng sentences with 0.4 s pauses, repeated to ``seconds``: (N,) float32 16 kHz."""
    from bench.bench_app_latency import spoken_sentences
    from ser_studio.model.constants import SAMPLE_RATE

    one = spoken_sentences(folder, 0.4)
    reps = int(np.ceil(seconds * SAMPLE_RATE / one.size))
    return np.tile(one, reps)[:int(seconds * SAMPLE_RATE)]


def noise_stream(seconds: float, level: float = 0.05, seed: int = 0) -> np.ndarray:
    """Pink noise at peak ``level`` (a fan, a room): (N,) float32 16 kHz."""
    from ser_studio.model.constants import SAMPLE_RATE

    white = np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, white.size // 2 + 2)),
                        white.size)
    return (level * pink / np.abs(pink).max()).astype(np.float32)


# ---- per-window CPU ------------------------------------------------------------------------

def torch_loader(path: str | None):
    """The app's model loader with ``runtime="torch"`` (the OLD and TORCH paths)."""
    from ser_studio.model.inference.predictor import Predictor

    return Predictor.load(path or None, runtime="torch")


def make_worker(kind: str, predictors: dict, threads: int):
    """A worker of path ``kind`` holding its predictor (``predictors["torch"]`` for the OLD and
    TORCH paths, else ``["auto"]``), driven in this thread (no QThread), torch on ``threads``
    threads."""
    from ser_studio.app.live.inference_worker import InferenceWorker

    cls = old_worker_class() if kind == "old" else InferenceWorker
    predictor = predictors["torch" if kind in TORCH_PATHS else "auto"]
    worker = cls(loader=lambda path: predictor, threads=threads)
    load_model(worker, kind)  # sets the threads in this thread
    return worker


def load_model(worker, kind: str) -> None:
    """(Re)load the worker's model (its loader returns the predictor it holds); FULL runs
    without the feature cache."""
    worker.load_model("")
    if kind == "full":
        worker._engine._features = None


def run_stream(worker, stream: np.ndarray, clock) -> dict[str, float]:
    """Feed ``stream`` window by window through ``worker`` as a new listening session (its
    models stay loaded, as in the app); CPU ms per window by stage."""
    from ser_studio.model.constants import LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES

    worker.end_segment()
    clock.reset()
    windows, wall, worst = 0, 0.0, 0.0
    for end in range(LIVE_HOP_SAMPLES, stream.size + 1, LIVE_HOP_SAMPLES):
        wav = stream[max(0, end - LIVE_BUFFER_SAMPLES):end].copy()
        started, wall0 = time.process_time(), time.perf_counter()
        worker._live(wav, end, time.monotonic())
        cpu = time.process_time() - started
        clock.add("total", cpu)
        worst = max(worst, cpu)
        wall += time.perf_counter() - wall0
        windows += 1
    out = {k: 1e3 * clock.totals.get(k, 0.0) / windows for k in (*STAGES[:-1], "total")}
    out["worst"] = 1e3 * worst
    out["other"] = out["total"] - sum(out.get(k, 0.0) for k in STAGES[:-1])
    out["wall"] = 1e3 * wall / windows
    out["speech_windows"] = int(clock.counts.get("network", 0))
    out["windows"] = windows
    return out


def summarise(runs: list[dict]) -> dict[str, tuple[float, float, float]]:
    """min/median/max over repeats of each per-window figure."""
    keys = [*STAGES, "total", "worst", "wall"]
    return {k: (min(r[k] for r in runs), statistics.median(r[k] for r in runs),
                max(r[k] for r in runs)) for k in keys}


def per_window(args, predictors: dict, streams: dict[str, np.ndarray]) -> dict:
    """{(stream, kind, threads): summary} for every case."""
    clock = StageClock()
    for predictor in predictors.values():
        instrument(predictor, clock)
    results = {}
    for threads in args.threads:
        for name, stream in streams.items():
            workers = {kind: make_worker(kind, predictors, threads) for kind in args.paths}
            runs = {kind: [] for kind in workers}
            for kind, worker in workers.items():
                load_model(worker, kind)  # this thread's torch threads, as the worker sets them
                run_stream(worker, stream[:96_000], clock)  # warm-up: loads silero, JIT runs
            for _ in range(args.repeats):  # interleaved: all paths see the same machine load
                for kind, worker in workers.items():
                    load_model(worker, kind)
                    runs[kind].append(run_stream(worker, stream, clock))
            for kind, done in runs.items():
                results[(name, kind, threads)] = (summarise(done), done[0]["windows"],
                                                  done[0]["speech_windows"])
    return results


def print_per_window(results: dict, default_threads: int, policy_threads: int) -> None:
    fmt = "{:6} {:4} {:>2} {:>4} {:>4} | " + " | ".join(["{:>17}"] * 7)
    print("\nCPU ms per live window (5 s window, 0.5 s hop), min / median / max over repeats")
    print(fmt.format("stream", "path", "th", "win", "sp", *STAGES, "total", "worst", "wall"))
    for (name, kind, threads), (summ, windows, sp) in results.items():
        cells = ["{:5.1f}/{:5.1f}/{:5.1f}".format(*summ[k])
                 for k in (*STAGES, "total", "worst", "wall")]
        print(fmt.format(name, kind, threads, windows, sp, *cells))
    print(f"\nNEW/OLD median CPU per window (NEW at {policy_threads} thread(s), the worker's "
          f"default; OLD at {default_threads}, torch's default here):")
    for name in dict.fromkeys(k[0] for k in results):
        old = results.get((name, "old", default_threads))
        new = results.get((name, "new", policy_threads))
        if old is None or new is None:
            continue
        parts = [f"{k} {new[0][k][1] / old[0][k][1]:.2f}x" for k in ("vad", "total", "wall")
                 if old[0][k][1] > 0]
        print(f"  {name}: " + ", ".join(parts))
    for threads in sorted({k[2] for k in results}):
        for name in dict.fromkeys(k[0] for k in results):
            new = results.get((name, "new", threads))
            for base in ("full", "torch", "old"):
                old = results.get((name, base, threads))
                if new is None or old is None:
                    continue
                parts = [f"{k} {new[0][k][1] / old[0][k][1]:.2f}x"
                         for k in ("features", "total", "worst") if old[0][k][1] > 0]
                print(f"  {name} at {threads} thread(s), NEW/{base.upper()}: " + ", ".join(parts))


# ---- app CPU while listening ---------------------------------------------------------------

def child(args) -> None:
    """Listen to ``args.wav`` replayed in real time for ``args.app_seconds``; print JSON."""
    import resource

    from PyQt5.QtCore import QCoreApplication, QEventLoop, Qt, QTimer

    from ser_studio.app.live.inference_thread import InferenceThread
    from ser_studio.app.live.inference_worker import InferenceWorker
    from ser_studio.app.live.recorder import Recorder
    from ser_studio.app.live.replay import replay_factory

    app = QCoreApplication([])
    loader = {"old": torch_loader, "torch": torch_loader}.get(args.child)
    cls = old_worker_class() if args.child == "old" else InferenceWorker
    worker = cls(loader=loader) if loader else cls()
    handle = InferenceThread(worker)
    results = []
    worker.result.connect(results.append, Qt.DirectConnection)
    loop = QEventLoop()
    if args.child != "idle":  # idle: no model, windows come straight back
        worker.modelLoaded.connect(loop.quit)
        worker.modelError.connect(lambda msg: sys.exit(msg))
        handle.load_model(args.model)
        loop.exec_()
    rec = Recorder(stream_factory=replay_factory(args.wav, loop=True))
    rec.window.connect(worker.submit, Qt.DirectConnection)
    rec.start()

    def wait(seconds: float) -> None:
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec_()

    wait(3.0)  # warm-up: buffer filling, first windows
    usage0, wall0, done0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), \
        len(results)
    wait(args.app_seconds)
    usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    window = results[done0:]
    rec.request_stop()
    rec.wait(5000)
    handle.shutdown(60_000)  # the old worker may be far behind
    print(json.dumps({"cpu_pct": 100 * cpu / (wall1 - wall0), "windows": len(window),
                      "speech_windows": sum(r.speech for r in window),
                      "stale": worker.stale_dropped, "worker_threads": worker.threads}))
    app.quit()


def app_cpu(args, files: dict[str, Path]) -> dict:
    """{(source, kind): child's JSON} for speech and quiet noise, old and new worker."""
    out = {}
    for source, path in files.items():
        for kind in ("idle", "old", "torch", "new"):
            cmd = [sys.executable, "-m", "bench.bench_live", "--child", kind, "--wav", str(path),
                   "--app-seconds", str(args.app_seconds), "--model", args.model]
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                                  cwd=Path(__file__).resolve().parents[1])
            if proc.returncode:
                print(f"child {kind} {source} failed:\n{proc.stderr[-2000:]}")
                continue
            out[(source, kind)] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def print_app(results: dict, seconds: float) -> None:
    print(f"\nListening process CPU (recorder + worker, no GUI), % of one core over {seconds:g} s"
          f" of real-time replay (idle: no model loaded); load average {os.getloadavg()[0]:.2f}")
    for (source, kind), r in results.items():
        print(f"  {source:7} {kind}: {r['cpu_pct']:5.1f} %  ({r['windows']} windows, "
              f"{r['speech_windows']} with speech, {r['stale']} stale, worker torch threads "
              f"{r['worker_threads']})")


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        child(args)
        return
    import soundfile as sf
    import torch

    from ser_studio.app.shell.torch_threads import inference_threads
    from ser_studio.model.constants import SAMPLE_RATE
    from ser_studio.model.inference.predictor import Predictor

    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, default threads {default_threads}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    predictors = {"auto": Predictor.load(args.model or None),
                  "torch": Predictor.load(args.model or None, runtime="torch")}
    print(f"model: {predictors['auto'].name}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        streams = {"speech": speech_stream(args.seconds, folder),
                   "noise": noise_stream(args.seconds)}
        results = per_window(args, predictors, streams)
        print_per_window(results, default_threads, inference_threads())
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.app_seconds > 0:
            files = {"speech": folder / "speech_stream.wav", "silence": folder / "quiet.wav"}
            sf.write(files["speech"], streams["speech"], SAMPLE_RATE)
            sf.write(files["silence"], noise_stream(args.seconds, level=0.002), SAMPLE_RATE)
            print_app(app_cpu(args, files), args.app_seconds)


if __name__ == "__main__":
    main()
