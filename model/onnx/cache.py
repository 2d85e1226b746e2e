"""Inference on onnxruntime for a torch checkpoint, with no explicit export.

On one CPU thread onnxruntime runs the shipped network (small recurrent networks over short
frame sequences) and the GE2E frontend's 3-layer LSTM in less CPU time than torch, with the
same results within the tolerances below (bench/bench_live.py, paths NEW against TORCH, and
bench/bench_ge2e.py; figures in bench/results/onnxruntime-2026-12-02/README.md). So a
Predictor loaded with ``runtime="auto"`` (the default) runs both there:

- the network is exported once (model.exported.write) into the cache folder, named by the
  weights file's sha1, a digest of its ModelConfig, the torch and onnxruntime versions and
  this module's VERSION;
- the GE2E LSTM likewise, named by the pinned weights' sha256 (model.features.ge2e).

An export is checked against torch on inputs of another shape (the network: class
probabilities and attention within model.exported.write.PROB_TOLERANCE; the LSTM: outputs within
LSTM_TOLERANCE) before it is kept, with a stamp (``NAME.sha1``) holding the graph file's sha1,
as ``main.py export`` checks and records its graphs. A later load that finds the graph and its
stamp in agreement uses the graph without building the torch network at all; a graph without
a stamp, or whose bytes changed, is exported again. The cache is ``$SER_CACHE_DIR/onnx`` or
the user cache folder's ``features/onnx``. When an export, a check or onnxruntime fails, the
graph is removed, the reason logged, and torch runs that part: the results are the same
either way.

A checkpoint whose network graph is not in the cache is exported by a child process
(``python -m ser_studio.model.inference.export_main CHECKPOINT``, which loads it as
``Predictor.load`` does and so exports and checks every graph it runs), and the loading process
then finds the graphs checked: it never builds the torch network, traces it or runs the check,
so its peak memory is the same as with the graphs cached; the child costs a few seconds, once
(figures: bench/results/memory-2026-12-06/README.md). When the child fails (logged with its
last lines of stderr), or with SER_EXPORT_IN_PROCESS=1 (the tests set it, as they load many
small checkpoints), the loading process exports itself.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ser_studio.model.files import atomic_write, default_cache_dir, file_sha1

log = logging.getLogger(__name__)

VERSION = 2
RUNTIMES = ("auto", "torch")
IN_PROCESS_ENV = "SER_EXPORT_IN_PROCESS"   # "1": export in the loading process, no child
CHILD_TIMEOUT_S = 900
LSTM_TOLERANCE = 1e-4  # GE2E LSTM outputs lie in (-1, 1); the graph is well within this


class OnnxError(RuntimeError):
    """An export or check that failed: torch runs that part instead."""


def cache_folder() -> Path:
    return default_cache_dir() / "onnx"


def version_tag() -> str:
    """What a cached graph's name ends with: this module's VERSION and the torch and onnxruntime
    versions that exported it."""
    import onnxruntime

    return f"v{VERSION}-torch{torch.__version__.split('+')[0]}-ort{onnxruntime.__version__}"


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha1")


def checked_graph(name: str) -> Path | None:
    """``cache_folder()/name`` when it was exported and checked and is unchanged since."""
    path = cache_folder() / name
    try:
        return path if _stamp(path).read_text().strip() == file_sha1(path) else None
    except OSError:
        return None


def forget(path: Path) -> None:
    for stale in (path, _stamp(path)):
        with contextlib.suppress(OSError):  # a read-only cache keeps its files
            stale.unlink(missing_ok=True)


def cached_graph(name: str, export: Callable[[Path], None], load: Callable[[Path], object]):
    """``load(path)`` of ``cache_folder()/name``, first written by ``export(tmp)`` (which
    checks the graph against torch) and stamped when it is not there checked. OnnxError (the
    files removed) when any step fails."""
    path = cache_folder() / name
    try:
        if checked_graph(name) is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's advice on tracing
                atomic_write(path, export)
            atomic_write(_stamp(path), lambda tmp: tmp.write_text(file_sha1(path) + "\n"))
            log.info("exported %s for onnxruntime", path)
        return load(path)
    except Exception as exc:  # export, check or session: torch stays
        forget(path)
        raise OnnxError(f"{path.name} cannot run on onnxruntime ({exc})") from exc



class LstmGraph(nn.Module):
    """An nn.LSTM as a graph to export: mel (B, T, F) -> outputs (B, T, H)."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.lstm(mel)[0]


class OnnxLstm:
    """A batch-first nn.LSTM's call on onnxruntime: ``lstm(x (B, T, F)) -> (out (B, T, H),
    None)`` (no states are returned: callers run from zeros). A batch of sequences gives each
    the outputs it gets alone, for less CPU each."""

    def __init__(self, path: Path, threads: int = 1):
        from ser_studio.model.onnx.session import session

        self.path, self.session = path, session(path, threads)

    def __call__(self, x: torch.Tensor):
        (out,) = self.session.run(["states"], {"mel": np.ascontiguousarray(
            x.detach().float().numpy())})
        return torch.from_numpy(out), None


def check_lstm(lstm: nn.LSTM, graph: OnnxLstm) -> float:
    """Largest difference of ``graph``'s outputs from ``lstm``'s on a batch of 3 sequences of
    123 frames (another shape than the export's); OnnxError above LSTM_TOLERANCE."""
    x = torch.rand(3, 123, lstm.input_size, generator=torch.Generator().manual_seed(1)) * 4.0
    with torch.inference_mode():
        ref = lstm(x)[0]
    worst = float((graph(x)[0] - ref).abs().max())
    if not worst <= LSTM_TOLERANCE:
        raise OnnxError(f"the exported LSTM does not reproduce torch's (largest difference "
                        f"{worst:.2e}, tolerance {LSTM_TOLERANCE:g})")
    return worst


def lstm_on_onnxruntime(lstm: nn.LSTM, weights_id: str, threads: int = 1) -> OnnxLstm:
    """An OnnxLstm running ``lstm`` (eval mode, batch-first), cached as ``weights_id``,
    exported and checked against it unless the cache holds it checked; OnnxError when it
    cannot be had."""

    def export(tmp: Path) -> None:
        torch.onnx.export(LstmGraph(lstm), (torch.rand(1, 50, lstm.input_size),), str(tmp),
                          dynamo=False, opset_version=17, input_names=["mel"],
                          output_names=["states"],
                          dynamic_axes={"mel": {0: "batch", 1: "frames"},
                                        "states": {0: "batch", 1: "frames"}})
        check_lstm(lstm, OnnxLstm(tmp))

    return cached_graph(f"lstm-batch-{weights_id}-{version_tag()}.onnx", export,
                        lambda path: OnnxLstm(path, threads))
