"""Cost of the GE2E frontend's 3-layer LSTM (model.features.ge2e) on one core: torch fp32 against
onnxruntime fp32 (model.onnx.cache, as ``Predictor.load`` runs it: one intra-op thread) and
torch dynamic int8
(quantize_dynamic on nn.LSTM; measured only, not shipped). Prints numbers; asserts nothing.

Inputs are GE2E mel frames of a synthetic voiced signal: (1, 424, 40) as a live window runs
(model.features.live, ~4.2 s of a 5 s window) and (1, 350, 40) as a whole 3.5 s clip. Variants
are interleaved within each repeat, so a busy machine slows them alike; the table gives
min / median / max ms, the median's ratio to torch fp32 and the max and mean abs difference
of the outputs from torch fp32's (the outputs lie in (-1, 1)).

Usage: OMP_NUM_THREADS=1 python -m bench.bench_ge2e [--repeats N]
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.features.ge2e import GE2EFrontend, ge2e_mel
from ser_studio.model.onnx.cache import LstmGraph


def voiced(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 25)) * (0.6 + 0.4 * np.sin(6 * np.pi * t))
    return (0.1 * wav + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frontend = GE2EFrontend()
    lstm = frontend.torch_lstm
    frontend.use_onnxruntime()  # as Predictor.load(runtime="auto") runs it (model.onnx.cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # the root module is never swapped: quantise the LSTM as a child
        int8 = torch.ao.quantization.quantize_dynamic(LstmGraph(lstm), {nn.LSTM},
                                                      dtype=torch.qint8)
    assert type(int8.lstm) is not nn.LSTM, "quantize_dynamic left the LSTM in fp32"

    def run_torch(model, mel):
        with torch.inference_mode():
            return model(torch.from_numpy(mel)[None])[0].numpy()

    variants = {"torch fp32": lambda mel: run_torch(LstmGraph(lstm), mel),
                "onnxruntime fp32": lambda mel: run_torch(lambda x: frontend.lstm(x)[0], mel),
                "torch int8 (dynamic)": lambda mel: run_torch(int8, mel)}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats}")
    for name, frames in (("live window", 424), ("whole clip", 350)):
        mel = ge2e_mel(voiced(frames / 100 + 0.1, seed=frames))[:frames]
        ref = variants["torch fp32"](mel)
        diffs = {k: np.abs(f(mel) - ref) for k, f in variants.items()}
        times = {k: [] for k in variants}
        for _ in range(3):  # warm-up
            for f in variants.values():
                f(mel)
        for _ in range(args.repeats):
            for k, f in variants.items():
                t0 = time.perf_counter()
                f(mel)
                times[k].append(1e3 * (time.perf_counter() - t0))
        base = statistics.median(times["torch fp32"])
        print(f"\n{name}: mel {tuple(mel[None].shape)}")
        print(f"{'variant':22s} {'min':>7s} {'median':>7s} {'max':>7s} {'ratio':>6s} "
              f"{'max |diff|':>11s} {'mean |diff|':>11s}")
        for k, ts in times.items():
            med = statistics.median(ts)
            print(f"{k:22s} {min(ts):7.2f} {med:7.2f} {max(ts):7.2f} {med / base:6.2f} "
                  f"{diffs[k].max():11.2e} {diffs[k].mean():11.2e}")


if __name__ == "__main__":
    main()
