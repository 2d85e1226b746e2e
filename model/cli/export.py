"""``python main.py export --model CKPT --onnx OUT.onnx [--int8]``: a checkpoint as ONNX.

Writes OUT.onnx (the network), OUT.json (what a Predictor needs besides it) and, for a HuBERT
frontend, OUT.encoder.onnx (model.exported.write). ``--model OUT.onnx`` then runs it on
onnxruntime in ``predict``, ``evaluate`` and the app. Errors go to stderr with exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    """Register the ``export`` command."""
    parser = subparsers.add_parser(
        "export", help="export a checkpoint to ONNX (onnxruntime inference)",
        description="Export a checkpoint's network (and its speech encoder, for a HuBERT "
                    "frontend) to ONNX, with a JSON sidecar. Each graph is checked against "
                    "torch before it is written. Use the result with --model OUT.onnx.")
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint (X.safetensors or X.json) or a run folder (default: "
                             "the shipped model)")
    parser.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx",
                        help="the network graph to write (OUT.json and, for HuBERT, "
                             "OUT.encoder.onnx are written next to it)")
    parser.add_argument("--int8", action="store_true",
                        help="quantise MatMul/Gemm weights to int8 (smaller and faster; "
                             "probabilities change slightly)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; prints the files written. 0 on success, 2 on any error."""
    from ser_studio.model.exported.write import ExportError, export_model
    from ser_studio.model.features.base import FrontendUnavailable
    from ser_studio.model.inference.predictor import default_model_path

    source = args.model if args.model is not None else default_model_path()
    try:
        result = export_model(source, args.onnx, int8=args.int8)
    except (ExportError, FrontendUnavailable, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # CheckpointError is a ValueError
        return 2
    for path in (result.network, result.encoder, result.sidecar):
        if path is not None:
            print(path)
    return 0
