"""Inference on onnxruntime for a torch checkpoint, with no explicit export.

On one CPU thread onnxruntime runs the shipped network (5 small recurrent networks over ~55
frames) in ~0.3x of torch's CPU time and the GE2E frontend's 3-layer LSTM in ~0.85x, with the
same results (class probabilities within 1e-7; LSTM outputs within 3e-6): bench/bench_live.py
(paths NEW against TORCH) and bench/bench_ge2e.py. So a Predictor loaded with
``runtime="auto"`` (the default) runs both there:

- the network is exported once (model.onnx_export) into the cache folder, named by the
  weights file's sha1, the torch version and this module's VERSION;
- the GE2E LSTM likewise, named by the pinned weights' sha256 (model.ge2e).

Every load checks the graph against torch on inputs of another shape (the network: class
probabilities and attention within model.onnx_export.PROB_TOLERANCE; the LSTM: outputs within
LSTM_TOLERANCE), a few ms. The cache is ``$SER_CACHE_DIR/onnx`` or the user cache folder's
``features/onnx``. When an export, a check or onnxruntime fails, the cached graph is removed,
the reason logged, and torch runs that part: the results are the same either way.
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

from model.files import atomic_write, default_cache_dir

log = logging.getLogger(__name__)

VERSION = 1
RUNTIMES = ("auto", "torch")
LSTM_TOLERANCE = 1e-4  # GE2E LSTM outputs lie in (-1, 1); the graph is within ~3e-6


class OnnxError(RuntimeError):
    """An export or check that failed: torch runs that part instead."""


def cache_folder() -> Path:
    return default_cache_dir() / "onnx"


def cached_graph(name: str, export: Callable[[Path], None], load: Callable[[Path], object]):
    """``load(path)`` of ``cache_folder()/name``, written by ``export(tmp)`` when it is not
    there yet; ``load`` checks the graph. OnnxError (the file removed) when any step fails."""
    path = cache_folder() / name
    try:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's advice on tracing
                atomic_write(path, export)
            log.info("exported %s for onnxruntime", path)
        return load(path)
    except Exception as exc:  # export, check or session: torch stays
        with contextlib.suppress(OSError):  # a read-only cache keeps its file
            path.unlink(missing_ok=True)
        raise OnnxError(f"{path.name} cannot run on onnxruntime ({exc})") from exc


def _tag() -> str:
    return f"v{VERSION}-torch{torch.__version__.split('+')[0]}"


def network_on_onnxruntime(network: nn.Module, cfg, weights_sha1: str, threads: int = 1):
    """An OnnxNetwork running ``network`` (torch, eval mode; ModelConfig ``cfg``) whose weights
    file has sha1 ``weights_sha1``, checked against it; OnnxError when it cannot be had."""
    from model.onnx_export import check_network, export_network
    from model.onnx_runtime import OnnxNetwork

    def load(path: Path) -> OnnxNetwork:
        runner = OnnxNetwork(path, cfg, threads=threads)
        check_network(network, cfg, path, runner.session)
        return runner

    return cached_graph(f"network-{weights_sha1}-{_tag()}.onnx",
                        lambda tmp: export_network(network, cfg, tmp), load)


class LstmGraph(nn.Module):
    """An nn.LSTM as a graph to export: mel (1, T, F) -> outputs (1, T, H)."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.lstm(mel)[0]


class OnnxLstm:
    """A batch-first nn.LSTM's call on onnxruntime: ``lstm(x (1, T, F)) -> (out (1, T, H),
    None)`` (no states are returned: callers run from zeros)."""

    def __init__(self, path: Path, threads: int = 1):
        from model.onnx_runtime import session

        self.path, self.session = path, session(path, threads)

    def __call__(self, x: torch.Tensor):
        (out,) = self.session.run(["states"], {"mel": np.ascontiguousarray(
            x.detach().float().numpy())})
        return torch.from_numpy(out), None


def _check_lstm(lstm: nn.LSTM, graph: OnnxLstm) -> float:
    x = torch.rand(1, 123, lstm.input_size, generator=torch.Generator().manual_seed(1)) * 4.0
    with torch.inference_mode():
        ref = lstm(x)[0]
    worst = float((graph(x)[0] - ref).abs().max())
    if not worst <= LSTM_TOLERANCE:
        raise OnnxError(f"the exported LSTM does not reproduce torch's (largest difference "
                        f"{worst:.2e}, tolerance {LSTM_TOLERANCE:g})")
    return worst


def lstm_on_onnxruntime(lstm: nn.LSTM, weights_id: str, threads: int = 1) -> OnnxLstm:
    """An OnnxLstm running ``lstm`` (eval mode, batch-first), cached as ``weights_id`` and
    checked against it; OnnxError when it cannot be had."""

    def export(tmp: Path) -> None:
        torch.onnx.export(LstmGraph(lstm), (torch.rand(1, 50, lstm.input_size),), str(tmp),
                          dynamo=False, opset_version=17, input_names=["mel"],
                          output_names=["states"],
                          dynamic_axes={"mel": {1: "frames"}, "states": {1: "frames"}})

    def load(path: Path) -> OnnxLstm:
        graph = OnnxLstm(path, threads)
        _check_lstm(lstm, graph)
        return graph

    return cached_graph(f"lstm-{weights_id}-{_tag()}.onnx", export, load)
