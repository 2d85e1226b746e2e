"""How far the streaming live features (model.features.live) move the class probabilities from
the full recomputation of every window, on real speech.

    OMP_NUM_THREADS=1 python -m bench.live_agreement [--corpus ../shared/data/ravdess-dev]
        [--streams 2] [--seconds 60] [--regain 0.5 1 inf]

Streams: RAVDESS clips of several actors (a different actor for each clip, emotions mixed)
joined with 0.3 s pauses of faint noise, ``--seconds`` long each. ``natural``: as recorded;
``-20 dB steps``: every other stretch of three clips 20 dB quieter. Windows of 5 s every 0.5 s
(the live recogniser's), each through the shipped model twice: the full path
(``Predictor.window_features`` without a cache) and the streaming path (one LiveFeatures per
stream for each ``--regain`` threshold, model.features.live). Prints label agreement and |dp|
(the largest class probability difference of a window; mean and max over windows), windows
computed whole (fresh) and windows that computed held embeddings again (regained), and the
feature CPU per window of both paths (process time; a busy machine inflates both). Windows
shorter than 1 s are left out. A run of the defaults takes ~10 minutes of one core.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np


REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/ravdess-dev")
    p.add_argument("--streams", type=int, default=2, help="streams per condition")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each stream")
    p.add_argument("--regain", type=float, nargs="+", default=[0.5, 1.0, float("inf")],
                   help="LiveFeatures regain_db thresholds to measure")
    return p.parse_args(argv)


def make_stream(corpus: Path, seconds: float, seed: int, quiet_steps: bool) -> np.ndarray:
    """Clips of rotating actors with 0.3 s pauses, (N,) float32 at 16 kHz."""
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.constants import SAMPLE_RATE

    rng = np.random.default_rng(seed)
    with open(corpus / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_actor: dict[str, list[dict]] = {}
    for row in rows:
        by_actor.setdefault(row["actor"], []).append(row)
    actors = sorted(by_actor, key=lambda a: rng.random())
    parts, total, i = [], 0, 0
    while total < seconds * SAMPLE_RATE:
        row = by_actor[actors[i % len(actors)]][int(rng.integers(60))]
        clip = load_audio(corpus / row["path"])
        if quiet_steps and (i // 3) % 2 == 1:
            clip = clip * np.float32(0.1)
        pause = (1e-4 * rng.standard_normal(int(0.3 * SAMPLE_RATE))).astype(np.float32)
        parts += [clip, pause]
        total += clip.size + pause.size
        i += 1
    return np.concatenate(parts)[:int(seconds * SAMPLE_RATE)]


def windows(stream: np.ndarray):
    from ser_studio.model.constants import LIVE_BUFFER_SAMPLES, LIVE_HOP_SAMPLES, SAMPLE_RATE

    for end in range(LIVE_HOP_SAMPLES, stream.size + 1, LIVE_HOP_SAMPLES):
        wav = stream[max(0, end - LIVE_BUFFER_SAMPLES):end]
        if wav.size >= SAMPLE_RATE:
            yield wav, end


def run(predictor, stream: np.ndarray, live) -> tuple[np.ndarray, float]:
    """Probabilities (W, C) of every window and feature CPU ms per window."""
    probs, cpu = [], 0.0
    for wav, end in windows(stream):
        started = time.process_time()
        feats, _, _ = predictor.window_features(wav, live=live, end=end)
        cpu += time.process_time() - started
        probs.append(predictor.predict_features(feats)[0])
    return np.stack(probs), 1e3 * cpu / len(probs)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from ser_studio.model.inference.predictor import Predictor

    torch.set_num_threads(1)
    predictor = Predictor.load()
    print(f"model: {predictor.name}; corpus {args.corpus}")
    print(f"{'stream':>16} {'regain':>6} {'win':>4} {'agree':>6} {'mean|dp|':>8} "
          f"{'max|dp|':>7} {'fresh/regained':>14} {'feat ms full/stream':>20}", flush=True)
    for condition in ("natural", "-20 dB steps"):
        totals: dict[float, list] = {regain: [] for regain in args.regain}
        for n in range(args.streams):
            stream = make_stream(args.corpus, args.seconds, seed=n,
                                 quiet_steps=condition != "natural")
            full, full_ms = run(predictor, stream, None)
            for regain in args.regain:
                live = predictor.live_stream(regain_db=regain)
                got, live_ms = run(predictor, stream, live)
                dp = np.abs(got - full).max(axis=1)
                agree = np.mean(got.argmax(1) == full.argmax(1))
                totals[regain].append((agree, dp))
                print(f"{condition + ' ' + str(n):>16} {regain:>6g} {len(dp):>4} "
                      f"{agree:>6.3f} "
                      f"{dp.mean():>8.4f} {dp.max():>7.3f} {live.refills:>6}/{live.regained:<7} "
                      f"{full_ms:>9.1f}/{live_ms:<9.1f}", flush=True)
        for regain, runs in totals.items():
            dp = np.concatenate([d for _, d in runs])
            agree = statistics.fmean(a for a, _ in runs)
            print(f"{condition + ' all':>16} {regain:>6g} {len(dp):>4} {agree:>6.3f} "
                  f"{dp.mean():>8.4f} {dp.max():>7.3f}", flush=True)


if __name__ == "__main__":
    main()
