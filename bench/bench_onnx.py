"""Inference cost of one 5 s window: torch against onnxruntime, fp32 against int8 (prints
numbers; asserts nothing).

(a) HuBERT-base: a randomly initialised encoder of the real size (HubertConfig() defaults: 12
    layers, 768 wide, ~94 M parameters) saved with save_pretrained, run through the frontend
    (model.features.hubert) as fp32 eager torch, torch dynamic int8 (quantize_dynamic on Linear),
    onnxruntime fp32 and onnxruntime int8 (MatMul/Gemm only, as ``export --int8`` writes it),
    the ONNX files written by model.exported.write like ``main.py export``. ``--all-ops`` adds
    onnxruntime's default quantisation of every op (convolutions included): on the
    pretrained HuBERT-base it left a cosine of 0.68; on random weights it shows the cost of
    integer convolutions.
(b) The shipped model (assets/default_model.safetensors): Predictor.predict of the window
    (log-mel, loudness, network; no VAD) with torch, onnx fp32 and onnx int8.

One intra-op thread everywhere (run with OMP_NUM_THREADS=1). Variants are interleaved within
each repeat, so a busy machine slows them alike; the table gives min / median / max ms, the
median's ratio to fp32 eager and the cosine similarity of the output (features for (a), class
probabilities for (b)) to fp32 eager's. Target: HuBERT-base onnx int8 <= 0.55x fp32 eager.

Usage: OMP_NUM_THREADS=1 python -m bench.bench_onnx [--repeats N] [--all-ops] [--skip-hubert]
"""
from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ser_studio.model.config.schema import FrontendConfig, ModelConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.exported.runtime import OnnxEncoder, load_onnx_model
from ser_studio.model.exported.write import export_model
from ser_studio.model.features.registry import build_frontend
from ser_studio.model.inference.predictor import Predictor, default_model_path
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network

REPO = Path(__file__).resolve().parents[1]

WINDOW_SECONDS = 5.0
TARGET = 0.55


def window(seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """A deterministic voiced-like test signal (N,) float32 at 16 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * (160 + 60 * np.sin(2 * t)) * t)
    return (wav + 0.03 * rng.standard_normal(t.shape)).astype(np.float32)


def interleaved(variants: dict[str, Callable[[], np.ndarray]],
                repeats: int) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Seconds per call of each variant (one warm-up call, then ``repeats`` rounds in which
    every variant runs once) and each variant's output."""
    outputs = {name: fn() for name, fn in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def table(title: str, times: dict[str, list[float]], outputs: dict[str, np.ndarray]) -> None:
    """Print min / median / max ms, the ratio of medians to the first variant (the fp32
    eager reference) and the cosine similarity of each output to its output."""
    names = list(times)
    base = statistics.median(times[names[0]])
    print(f"\n{title}\n")
    print(f"| variant | min ms | median ms | max ms | x {names[0]} | cosine to {names[0]} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        ms = [1000 * t for t in times[name]]
        print(f"| {name} | {min(ms):.0f} | {statistics.median(ms):.0f} | {max(ms):.0f} | "
              f"{statistics.median(times[name]) / base:.2f} | "
              f"{cosine(outputs[name], outputs[names[0]]):.4f} |")


def hubert_checkpoint(folder: Path) -> tuple[Path, FrontendConfig]:
    """A checkpoint on a random HuBERT-base saved in ``folder`` (a tiny head: the encoder is
    what is measured) and its frontend config."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(folder / "hubert-base")
    frontend = FrontendConfig(name="hubert", encoder=str(folder / "hubert-base"),
                              loudness="none")
    cfg = ModelConfig(arch="stats_linear", input_dim=768, n_classes=4)
    ckpt = Checkpoint(frontend=frontend, model=cfg, train=None, labels=["a", "b", "c", "d"],
                      state_dict=build_network(cfg).state_dict())
    return save_checkpoint(ckpt, folder / "model.safetensors"), frontend


def bench_hubert(repeats: int, all_ops: bool) -> None:
    from onnxruntime.quantization import quantize_dynamic

    wav = window()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpt, frontend = hubert_checkpoint(folder)
        started = time.perf_counter()
        fp32 = export_model(ckpt, folder / "fp32.onnx")
        int8 = export_model(ckpt, folder / "int8.onnx", int8=True)
        print(f"HuBERT-base export, fp32 then int8: {time.perf_counter() - started:.0f} s; "
              f"encoder files {fp32.encoder.stat().st_size / 2**20:.0f} MiB (fp32), "
              f"{int8.encoder.stat().st_size / 2**20:.0f} MiB (int8)")
        eager = build_frontend(frontend)
        dynamic = copy.copy(eager)
        dynamic.model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(eager.model), {torch.nn.Linear}, dtype=torch.qint8)
        variants = {"fp32 eager (torch)": eager, "torch dynamic int8 (Linear)": dynamic,
                    "onnxruntime fp32": load_onnx_model(fp32.network)[1],
                    "onnxruntime int8 (MatMul/Gemm)": load_onnx_model(int8.network)[1]}
        if all_ops:
            everything = folder / "all.encoder.onnx"
            quantize_dynamic(str(fp32.encoder), str(everything))
            variants["onnxruntime int8 (all ops)"] = copy.copy(variants["onnxruntime fp32"])
            variants["onnxruntime int8 (all ops)"].model = OnnxEncoder(everything,
                                                                      "last_hidden_state")
        times, outputs = interleaved(
            {name: (lambda f=f: f(wav).numpy()) for name, f in variants.items()}, repeats)
    table(f"(a) HuBERT-base encoder, one {WINDOW_SECONDS:g} s window, 1 thread, "
          f"{repeats} interleaved repeats", times, outputs)
    ratio = (statistics.median(times["onnxruntime int8 (MatMul/Gemm)"])
             / statistics.median(times["fp32 eager (torch)"]))
    print(f"\nonnxruntime int8 / fp32 eager = {ratio:.2f} (target <= {TARGET}): "
          f"{'met' if ratio <= TARGET else 'NOT met'}")


def bench_default(repeats: int) -> None:
    path = default_model_path()
    wav = window()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_model(path, Path(tmp) / "default.onnx")
        int8 = export_model(path, Path(tmp) / "default8.onnx", int8=True)
        predictors = {"torch": Predictor.load(path), "onnxruntime fp32": Predictor.load(
            fp32.network), "onnxruntime int8 (MatMul/Gemm)": Predictor.load(int8.network)}
        times, outputs = interleaved(
            {name: (lambda p=p: p.predict(wav, vad=False).probs)
             for name, p in predictors.items()}, repeats)
    name = predictors["torch"].name
    table(f"(b) shipped model {name}: predict() of one {WINDOW_SECONDS:g} s window (log-mel, "
          f"loudness, network; no VAD), 1 thread, {repeats} interleaved repeats", times, outputs)
    for label, p in predictors.items():
        delta = np.abs(outputs[label] - outputs["torch"]).max()
        print(f"{label}: label {p.labels[int(np.argmax(outputs[label]))]}, "
              f"max |p - p_torch| = {delta:.1e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--all-ops", action="store_true",
                        help="also time onnxruntime's default int8 quantisation of every op")
    parser.add_argument("--skip-hubert", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    if not args.skip_hubert:
        bench_hubert(args.repeats, args.all_ops)
    bench_default(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
