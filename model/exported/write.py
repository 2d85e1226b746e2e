"""Exporting a checkpoint to ONNX, for inference with onnxruntime (model.exported.runtime).

``export_model(CKPT, "OUT.onnx", int8=False)`` writes:

- ``OUT.onnx``: the network (any arch, ensemble and stats branch; it is one module). Inputs
  ``features`` (B, T, D), or (B, L, T, D) for encoder layer stacks, standardised, and
  ``lengths`` (B,) int64; outputs ``logits`` (B, C), ``attention`` (B, T') and
  ``frame_lengths`` (B,) int64. Batch and time axes are dynamic; padded frames are masked as in
  torch (the recurrent layers become ONNX GRUs with per-sequence lengths).
- ``OUT.encoder.onnx`` for a ``hubert`` frontend: the speech encoder, ``input_values`` (1, N)
  -> ``last_hidden_state`` (1, T, D), or ``hidden_states`` (L, 1, T, D) for layer_mode
  "weighted".
- ``OUT.json``: labels, normalisation statistics, the frontend, model and train configs, the
  checkpoint's inference section (model.config.inference: the Predictor crops to its
  crop_seconds), the encoder's geometry, the source checkpoint's weights sha1 and the sha1 of
  every ONNX file written.

The graphs are traced (torch.onnx's TorchScript exporter, opset OPSET) from inputs with unequal
lengths, so the packed (masked) recurrent path is the one recorded; each fp32 graph is then run
by onnxruntime on inputs of another shape and compared with torch before anything is written.

``int8=True`` quantises weights to int8 with onnxruntime's dynamic quantisation, restricted to
MatMul and Gemm (QUANTIZED_OPS): quantising everything, the convolutions of a HuBERT encoder
included, leaves the pretrained HuBERT-base's features far from fp32's (useless), and its
integer convolutions are slow (bench/bench_onnx.py --all-ops; figure in
bench/results/docstring-history.md). The recurrent layers stay fp32 (dynamic quantisation has
no GRU kernel).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ser_studio.model.config.schema import config_to_dict
from ser_studio.model.exported.runtime import (ENCODER_INPUT, FORMAT, INPUTS, OUTPUTS, SUFFIX,
                                               VERSION, OnnxNetwork, encoder_path, network_name,
                                               sidecar_path)
from ser_studio.model.files import atomic_write, file_sha1
from ser_studio.model.networks.checkpoint import (Checkpoint, checkpoint_paths, load_checkpoint,
                                                  resolve_model_path)
from ser_studio.model.networks.registry import build_network
from ser_studio.model.onnx.cache import cached_graph
from ser_studio.model.onnx.quantize import QUANTIZED_OPS, quantize
from ser_studio.model.onnx.session import session

log = logging.getLogger(__name__)

OPSET = 17
PROB_TOLERANCE = 1e-4       # fp32 graph vs torch: class probabilities and attention
ENCODER_TOLERANCE = 1e-3    # fp32 encoder vs torch: max error relative to the largest feature


class ExportError(RuntimeError):
    """A model that cannot be exported, or whose exported graph does not reproduce it."""


@dataclass(frozen=True)
class ExportResult:
    """The files written: network graph, encoder graph (None without one) and sidecar."""

    network: Path
    encoder: Path | None
    sidecar: Path
    int8: bool


class _NetworkGraph(nn.Module):
    """The network with tuple outputs: (features, lengths) -> (logits, attention,
    frame_lengths)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.network(features, lengths)
        return out.logits, out.attention, out.frame_lengths


class _EncoderGraph(nn.Module):
    """A Hugging Face speech encoder: input_values (1, N) -> (1, T, D) last hidden state, or
    (L, 1, T, D) all hidden states when ``all_layers``."""

    def __init__(self, model: nn.Module, all_layers: bool):
        super().__init__()
        self.model, self.all_layers = model, all_layers

    def forward(self, input_values: Tensor) -> Tensor:
        out = self.model(input_values, output_hidden_states=self.all_layers)
        if self.all_layers:
            return torch.stack(out.hidden_states, dim=0)
        return out.last_hidden_state


def _floor_divide(g, a, b):
    """Python's ``//`` on sizes as a true floor. The exporter's own symbolic truncates, which
    turns pool_frames' ceiling division ``-(-T // k)`` into a floor (one frame short)."""
    kinds = {getattr(v.type(), "scalarType", lambda: None)() for v in (a, b)}
    types = torch.onnx.TensorProtoDataType
    if kinds & {"Float", "Double", "Half", "BFloat16"}:   # float32 graphs only
        a, b = (g.op("Cast", v, to_i=types.FLOAT) for v in (a, b))
        return g.op("Floor", g.op("Div", a, b))
    a, b = (g.op("Cast", v, to_i=types.DOUBLE) for v in (a, b))
    return g.op("Cast", g.op("Floor", g.op("Div", a, b)), to_i=types.INT64)


NATIVE_NOISE = "Warning: The shape inference of prim::Pa"  # PackPadded / PadPacked


@contextlib.contextmanager
def _native_noise_dropped():
    """The exporter's C++ warnings about packed sequences (written straight to file descriptor
    2, several per recurrent layer; the graph is checked against torch anyway) dropped;
    anything else written to stderr meanwhile is passed on when the export ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(True)
                    if NATIVE_NOISE not in line]
            if kept:
                os.write(2, "".join(kept).encode())


@contextlib.contextmanager
def _exporting():
    """Floor division fixed, and the tracer's expected warnings (frozen shape checks, the
    exporter's deprecation notice, its C++ notes on packed sequences) kept out of the log, for
    the duration of one export."""
    names = ("aten::floordiv", "aten::floor_divide")
    for name in names:
        torch.onnx.register_custom_op_symbolic(name, _floor_divide, OPSET)
    try:
        with warnings.catch_warnings(), _native_noise_dropped():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name in names:
            torch.onnx.unregister_custom_op_symbolic(name, OPSET)


def example_inputs(cfg, steps: int, lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random standardised features for ``cfg`` (a ModelConfig): x (B, T, D) or (B, L, T, D)
    with B = len(lengths), T = steps, padded frames zero; lengths (B,) int64."""
    gen = torch.Generator().manual_seed(seed)
    layers = (cfg.input_layers,) if cfg.input_layers > 1 else ()
    x = torch.randn(len(lengths), *layers, steps, cfg.input_dim, generator=gen)
    for row, length in enumerate(lengths):
        x[row, ..., length:, :] = 0.0
    return x, torch.tensor(lengths, dtype=torch.long)


def _trace_inputs(cfg) -> tuple[Tensor, Tensor]:
    """Unequal lengths, so the traced recurrent layers take the packed (masked) path."""
    steps = 12 * cfg.frame_pool + 1
    return example_inputs(cfg, steps, [steps, steps // 2, cfg.frame_pool + 1])


def export_network(network: nn.Module, cfg, path: Path) -> float:
    """Write ``network`` (eval mode, built from ModelConfig ``cfg``) to ``path`` as ONNX and
    check the graph against torch; returns check_network's largest difference."""
    graph = _NetworkGraph(network).eval()
    time_axis = 2 if cfg.input_layers > 1 else 1
    dynamic = {"features": {0: "batch", time_axis: "time"}, "lengths": {0: "batch"},
               "logits": {0: "batch"}, "attention": {0: "batch", 1: "frames"},
               "frame_lengths": {0: "batch"}}
    with _exporting():  # grad on: no_grad would trace MultiheadAttention's fused kernel
        torch.onnx.export(graph, _trace_inputs(cfg), str(path), dynamo=False,
                          opset_version=OPSET, input_names=list(INPUTS),
                          output_names=list(OUTPUTS), dynamic_axes=dynamic)
    return check_network(network, cfg, path)


def check_network(network: nn.Module, cfg, path: Path) -> float:
    """Largest difference of class probabilities and attention between ``network`` and the
    graph at ``path`` on a batch of another shape; ExportError above PROB_TOLERANCE."""
    steps = 17 * cfg.frame_pool + 3
    x, lengths = example_inputs(cfg, steps, [steps - 5, steps, 1, 2 * cfg.frame_pool], seed=1)
    with torch.no_grad():
        ref = network(x, lengths)
    logits, attention, frames = session(path).run(
        list(OUTPUTS), {"features": x.numpy(), "lengths": lengths.numpy()})
    if attention.shape != tuple(ref.attention.shape):
        raise ExportError(f"the exported graph gives attention of shape {attention.shape}, "
                          f"torch {tuple(ref.attention.shape)}")
    probs = torch.softmax(torch.from_numpy(logits), -1)
    worst = max(float((probs - torch.softmax(ref.logits, -1)).abs().max()),
                float((torch.from_numpy(attention) - ref.attention).abs().max()))
    if worst > PROB_TOLERANCE or not np.array_equal(frames, ref.frame_lengths.numpy()):
        raise ExportError(f"the exported graph does not reproduce the network (largest "
                          f"difference {worst:.2e}, tolerance {PROB_TOLERANCE:g})")
    return worst


def export_encoder(frontend, path: Path) -> tuple[str, float]:
    """Write an HFEncoderFrontend's encoder to ``path`` and check it against torch; returns
    the graph's output name ("last_hidden_state" or "hidden_states") and check_encoder's
    relative error."""
    all_layers = frontend.layers > 1
    output = "hidden_states" if all_layers else "last_hidden_state"
    graph = _EncoderGraph(frontend.model, all_layers).eval()
    axes = {ENCODER_INPUT: {1: "samples"},
            output: {2: "frames"} if all_layers else {1: "frames"}}
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    with _exporting():
        torch.onnx.export(graph, (wav,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[ENCODER_INPUT], output_names=[output],
                          dynamic_axes=axes)
    return output, check_encoder(graph, path, output)


def check_encoder(graph: nn.Module, path: Path, output: str) -> float:
    """Largest error of the encoder graph relative to torch's largest feature, on a signal of
    another length; ExportError above ENCODER_TOLERANCE."""
    wav = torch.randn(1, 21111, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        ref = graph(wav).numpy()
    (got,) = session(path).run([output], {ENCODER_INPUT: wav.numpy()})
    error = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)) \
        if got.shape == ref.shape else float("inf")
    if error > ENCODER_TOLERANCE:
        raise ExportError(f"the exported encoder does not reproduce torch (relative error "
                          f"{error:.2e}, tolerance {ENCODER_TOLERANCE:g})")
    return error


def _write_graph(target: Path, export, int8: bool):
    """Run ``export(tmp)`` (which writes and checks an fp32 graph), quantise it when ``int8``,
    and move the result to ``target`` atomically; returns what ``export`` returned."""
    result = []

    def write(tmp: Path) -> None:
        if not int8:
            result.append(export(tmp))
            return
        fp32 = tmp.with_name(tmp.name + ".fp32")
        try:
            result.append(export(fp32))
            quantize(fp32, tmp)
        finally:
            fp32.unlink(missing_ok=True)

    try:
        atomic_write(target, write)
    except ExportError as exc:
        raise ExportError(f"{target}: {exc}") from exc
    return result[0]


def _encoder_part(cfg):
    """The torch HFEncoderFrontend of a frontend config's ``hubert`` part (loads it)."""
    from ser_studio.model.features.hubert import HFEncoderFrontend

    return HFEncoderFrontend(dataclasses.replace(cfg, name="hubert", band_norm="none"))


def _encoder_entry(frontend, path: Path, output: str) -> dict:
    return {"sha1": file_sha1(path), "output": output,
            "stride": frontend.stride, "receptive": frontend.receptive,
            "do_normalize": frontend.do_normalize, "dim": frontend.dim,
            "layers": frontend.layers, "frame_rate": frontend.frame_rate,
            "chunk_hop": frontend.chunk_hop, "fingerprint": frontend.fingerprint()}


def _sidecar(ckpt: Checkpoint, source: Path, network: Path, encoder: dict | None,
             int8: bool) -> dict:
    return {
        "format": FORMAT, "version": VERSION,
        "network": {"sha1": file_sha1(network)}, "encoder": encoder,
        "int8": int8, "quantized_ops": list(QUANTIZED_OPS) if int8 else [], "opset": OPSET,
        "source": {"checkpoint": str(source), "weights_sha1": file_sha1(source)},
        "frontend": config_to_dict(ckpt.frontend), "model": config_to_dict(ckpt.model),
        "train": config_to_dict(ckpt.train) if ckpt.train is not None else None,
        "inference": config_to_dict(ckpt.inference),
        "labels": list(ckpt.labels), "speakers": list(ckpt.speakers),
        "norm_mean": list(ckpt.norm_mean), "norm_std": list(ckpt.norm_std),
        "metrics": ckpt.metrics, "languages": dict(ckpt.languages),
    }


def _check_target(out: Path) -> Path:
    """The sidecar path for ``out``; refuses a name whose sidecar would overwrite a
    checkpoint's description (X.onnx next to X.safetensors)."""
    if out.suffix != SUFFIX:
        raise ExportError(f"{out}: the exported model's name must end in {SUFFIX}")
    sidecar = sidecar_path(out)
    if sidecar.is_file():
        try:
            found = json.loads(sidecar.read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            found = None
        if found != FORMAT:
            raise ExportError(f"{sidecar}: exists and is not an exported-model description "
                              f"(format {found!r}); choose another name for {out.name}")
    return sidecar


def export_model(checkpoint: str | Path, out: str | Path, *, int8: bool = False) -> ExportResult:
    """Export a checkpoint (X.safetensors, X.json, X or a run folder) to ``out`` (OUT.onnx)
    with its sidecar and, for an encoder frontend, OUT.encoder.onnx (see the module docstring).

    Raises CheckpointError for a bad checkpoint, FrontendUnavailable when its encoder cannot be
    loaded, ExportError when the graph cannot be written or does not reproduce torch.
    """
    out = Path(out)
    sidecar = _check_target(out)
    checkpoint = resolve_model_path(checkpoint)  # a run folder: its model.safetensors
    ckpt = load_checkpoint(checkpoint)
    source, _ = checkpoint_paths(checkpoint)
    network = build_network(ckpt.model)
    network.load_state_dict(ckpt.state_dict, strict=True)
    network.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    encoder = None
    if "hubert" in ckpt.frontend.name.split("+"):
        frontend = _encoder_part(ckpt.frontend)
        enc_path = encoder_path(out)
        output, error = _write_graph(enc_path, lambda tmp: export_encoder(frontend, tmp), int8)
        log.info("%s: the fp32 encoder matches torch (relative error %.1e)", enc_path.name,
                 error)
        encoder = _encoder_entry(frontend, enc_path, output)
    worst = _write_graph(out, lambda tmp: export_network(network, ckpt.model, tmp), int8)
    log.info("%s: the fp32 graph matches torch (largest difference %.1e)", out.name, worst)
    doc = _sidecar(ckpt, source, out, encoder, int8)
    text = json.dumps(doc, indent=2) + "\n"
    atomic_write(sidecar, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info("exported %s to %s%s (+ %s)", source, out, " (int8)" if int8 else "",
             sidecar.name)
    return ExportResult(network=out, encoder=encoder_path(out) if encoder else None,
                        sidecar=sidecar, int8=int8)


def network_on_onnxruntime(network: nn.Module, cfg, weights_sha1: str, threads: int = 1):
    """An OnnxNetwork running ``network`` (torch, eval mode; ModelConfig ``cfg``) whose weights
    file has sha1 ``weights_sha1``, exported and checked against it unless the cache holds it
    checked; OnnxError when it cannot be had."""
    return cached_graph(network_name(weights_sha1, cfg),
                        lambda tmp: export_network(network, cfg, tmp),
                        lambda path: OnnxNetwork(path, cfg, threads=threads))
