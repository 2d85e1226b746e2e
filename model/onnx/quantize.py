"""int8 dynamic quantisation of a graph's MatMul and Gemm weights (onnxruntime's quantiser).

Used by ``main.py export --int8`` (model.exported.write) and by the Whisper frontend's encoder
graph (model.features.whisper). Only MatMul and Gemm (QUANTIZED_OPS): quantising everything,
the convolutions of a HuBERT encoder included, leaves the pretrained HuBERT-base's features far
from fp32's (useless), and its integer convolutions are slow (bench/bench_onnx.py --all-ops;
figure in bench/results/docstring-history.md).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

QUANTIZED_OPS = ("MatMul", "Gemm")
_QUANTISER_PATH = os.path.join("onnxruntime", "quantization", "")  # its log records' files


def _not_quantiser_noise(record: logging.LogRecord) -> bool:
    """Drops what onnxruntime's quantiser logs on the root logger for every model: its INFO
    lines (a "Quantization parameters for tensor ... not specified" per activation, "Ignore
    MatMul due to non constant B" per attention product: about 30 for the shipped network) and
    its advice to run pre-processing first (for static quantisation of CNNs). Its other
    warnings and its errors pass."""
    if _QUANTISER_PATH not in record.pathname:
        return True
    return (record.levelno >= logging.WARNING
            and "pre-processing before quantization" not in record.getMessage())


def quantize(src: Path, dst: Path, per_channel: bool = False,
             exclude_prefix: str | None = None) -> None:
    """int8 dynamic quantisation of ``src``'s MatMul and Gemm weights into ``dst``: one scale
    per weight matrix, or per output column with ``per_channel``; nodes whose names start with
    ``exclude_prefix`` stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = []
    if exclude_prefix:
        import onnx

        excluded = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
                    if n.name.startswith(exclude_prefix)]
    root = logging.getLogger()
    root.addFilter(_not_quantiser_noise)
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=list(QUANTIZED_OPS),
                         weight_type=QuantType.QInt8, per_channel=per_channel,
                         nodes_to_exclude=excluded)
    finally:
        root.removeFilter(_not_quantiser_noise)
