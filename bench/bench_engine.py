"""Live and file analysis through the one sliding-window engine: the same audio, the same
windows, the same probabilities.

    OMP_NUM_THREADS=1 python -m bench.bench_engine [--minutes 3] [--workdir DIR]

The recording is bench_inference's generated one (espeak-ng sentences, pauses, noise alone; made
on first use in ``--workdir``). It is analysed twice with the shipped model, at the live
recogniser's cadence (5 s windows every 0.5 s): as a file (``Predictor.predict_file``) and as a
live stream through the app's InferenceWorker (its ``_live``, driven in this thread, window by
window as the recorder emits them). Prints the windows compared, how many differ in their
speech verdict, ratio or label, the largest probability difference, and the CPU per window of
each. The file's CPU per audio second, memory and label agreement with the code before the
engine are measured by ``python -m bench.bench_inference --section files``.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_engine")


def compare(path: Path) -> dict:
    """Both analyses of ``path``: counts of differing windows and the CPU of each."""
    from ser_studio.app.live.inference_worker import InferenceWorker
    from ser_studio.model.audio.io import load_audio, window_spans
    from ser_studio.model.constants import (LIVE_BUFFER_SAMPLES, LIVE_BUFFER_SECONDS,
                                            LIVE_HOP_SAMPLES, LIVE_HOP_SECONDS)
    from ser_studio.model.inference.predictor import Predictor

    predictor = Predictor.load()
    cpu = time.process_time()
    filed = predictor.predict_file(path, window_s=LIVE_BUFFER_SECONDS, hop_s=LIVE_HOP_SECONDS)
    file_cpu = time.process_time() - cpu
    worker = InferenceWorker(loader=lambda _path: predictor, threads=1)
    worker.load_model("")
    results: list = []
    worker.result.connect(results.append)
    wav = load_audio(path)
    cpu = time.process_time()
    for start, end in window_spans(wav.size, LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES):
        worker._live(wav[start:end].copy(), end, time.monotonic())
    live_cpu = time.process_time() - cpu
    pairs = [(live, p) for live, (_, _, p) in zip(results, filed.windows)]
    return {
        "windows": len(filed.windows), "live windows": len(results),
        "speech windows": sum(p.speech for _, p in pairs),
        "verdict differs": sum(live.speech != p.speech for live, p in pairs),
        "ratio differs": sum(live.speech_ratio != p.speech_ratio for live, p in pairs),
        "label differs": sum((live.prediction.label != p.label) for live, p in pairs),
        "max |dp|": max(float(np.max(np.abs(live.raw_probs - p.probs))) for live, p in pairs),
        "file CPU ms per window": 1000 * file_cpu / len(filed.windows),
        "live CPU ms per window": 1000 * live_cpu / max(1, len(results)),
    }


def main(argv: list[str] | None = None) -> None:
    from bench.bench_inference import recording

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench_inference")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = recording(args.workdir, args.minutes, 16000)
    figures = compare(path)
    print(f"live and file analysis of {path.name}, 5 s windows every 0.5 s, shipped model")
    for name, value in figures.items():
        print(f"  {name:24} {value:.3g}" if isinstance(value, float) else
              f"  {name:24} {value}")


if __name__ == "__main__":
    main()
