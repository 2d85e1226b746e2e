"""Moving a loaded Predictor's parts onto onnxruntime (``Predictor.load`` with runtime "auto"):
its network, and each frontend part that can run there (the GE2E LSTM, the Whisper encoder),
through graphs exported and checked against torch (model.onnx.cache). A part that cannot be
moved stays on torch, with a warning.
"""
from __future__ import annotations

import dataclasses
import logging

import torch

from ser_studio.model.features.base import frontend_parts
from ser_studio.model.onnx.cache import OnnxError

log = logging.getLogger(__name__)


def move_to_onnxruntime(predictor, threads: int) -> None:
    """Run ``predictor``'s network (unless it already does) and its frontend parts that have
    ``use_onnxruntime`` on onnxruntime with ``threads`` intra-op threads."""
    from ser_studio.model.exported.write import network_on_onnxruntime

    moved = []
    try:
        if isinstance(predictor.network, torch.nn.Module):
            predictor.network = network_on_onnxruntime(
                predictor.network, predictor.checkpoint.model, predictor.model_sha1(), threads)
        # the graph holds the weights: the checkpoint's copy would only take memory
        predictor.checkpoint = dataclasses.replace(predictor.checkpoint, state_dict={})
        moved.append("network")
    except OnnxError as exc:
        log.warning("%s: %s; torch runs it", predictor.checkpoint_path, exc)
    for part in frontend_parts(predictor.frontend)[1]:
        if hasattr(part, "use_onnxruntime"):
            try:
                part.use_onnxruntime(threads)
                moved.append(f"{part.config.name} frontend")
            except OnnxError as exc:
                log.warning("%s: %s; torch runs it", part.config.name, exc)
    if moved:
        log.info("%s runs on onnxruntime: %s", predictor.name, ", ".join(moved))
