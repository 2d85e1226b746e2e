"""CPU cost of the whisper frontends (model.features.whisper) per 5 s window on one thread:
whisper-base to block 4 and whisper-tiny.en to block 2 (their defaults), each on torch fp32
and on onnxruntime with int8 MatMuls (``use_onnxruntime``, as ``Predictor.load`` runs it; the
first call exports the graph into the cache and is not timed). Prints numbers; asserts
nothing.

The input is 5 s of a synthetic voiced signal (the live window, bench/bench_live.py); a call
is the whole frontend without the input stage: log-mel, conv stem, blocks 1..K (the log-mel
alone is timed too). Variants are
interleaved within each repeat, so a busy machine slows them alike; the table gives process
CPU ms (min / median / max over the repeats), the median wall ms, and the mean and worst
per-frame cosine of each variant's states with torch fp32's.

Usage: python -m bench.bench_whisper [--repeats N]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
import torch

from ser_studio.model.config.schema import FrontendConfig
from ser_studio.model.constants import LIVE_BUFFER_SAMPLES, SAMPLE_RATE
from ser_studio.model.features.whisper import MODELS, WhisperFrontend, frame_cosines
from ser_studio.model.features.whisper_encoder import whisper_log_mel


def voiced(samples: int, seed: int) -> np.ndarray:
    """(samples,) float32: a gliding harmonic voice, pulsed at 3 Hz, in a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 25)) * (0.6 + 0.4 * np.sin(6 * np.pi * t))
    return (0.1 * wav + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def timed(call, wav: np.ndarray) -> tuple[float, float]:
    """(process CPU ms, wall ms) of one ``call(wav)``."""
    cpu, wall = time.process_time(), time.perf_counter()
    call(wav)
    return 1e3 * (time.process_time() - cpu), 1e3 * (time.perf_counter() - wall)


def variants() -> dict[str, WhisperFrontend]:
    """"MODEL bK runtime" -> a frontend, torch fp32 and onnxruntime int8 for each model."""
    out = {}
    for name in MODELS:
        torch_fe = WhisperFrontend(FrontendConfig(name=name))
        ort_fe = WhisperFrontend(FrontendConfig(name=name))
        ort_fe.use_onnxruntime(threads=1)  # exports on the first run: not timed
        out[f"{name} b{torch_fe.block} torch fp32"] = torch_fe
        out[f"{name} b{ort_fe.block} onnxruntime int8"] = ort_fe
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    frontends = variants()
    wav = voiced(LIVE_BUFFER_SAMPLES, seed=5)
    states = {k: f(wav) for k, f in frontends.items()}  # also the warm-up
    cpu = {k: [] for k in frontends}
    wall = {k: [] for k in frontends}
    mel_cpu = []
    for _ in range(args.repeats):
        for k, f in frontends.items():
            c, w = timed(f, wav)
            cpu[k].append(c)
            wall[k].append(w)
        mel_cpu.append(timed(lambda x: whisper_log_mel(x, 80), wav)[0])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats "
          f"{args.repeats}, window {LIVE_BUFFER_SAMPLES / SAMPLE_RATE:g} s")
    print(f"| {'variant':38s} | CPU ms min | median | max | wall ms median | cosine mean | "
          "worst |")
    print("|---|---|---|---|---|---|---|")
    for k in frontends:
        ref = states[k.replace("onnxruntime int8", "torch fp32")]
        cos = frame_cosines(states[k], ref)
        print(f"| {k:38s} | {min(cpu[k]):6.1f} | {statistics.median(cpu[k]):6.1f} | "
              f"{max(cpu[k]):6.1f} | {statistics.median(wall[k]):6.1f} | "
              f"{float(cos.mean()):.4f} | {float(cos.min()):.4f} |")
    print(f"\nof which the log-mel (80 bands, torch): CPU ms median "
          f"{statistics.median(mel_cpu):.1f}")


if __name__ == "__main__":
    main()
