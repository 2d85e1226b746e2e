"""An onnxruntime session for a graph file: the one place that opens one.

Every graph this project runs on onnxruntime (silero-vad's and speech_embedding's graphs, a
cached network or LSTM, an exported model) is opened here, on the CPU, with the same thread
settings. A graph onnxruntime cannot load raises ``OnnxGraphError`` (a ValueError) naming the
file; model.exported.runtime turns it into its OnnxModelError (a CheckpointError).
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_THREADS = 1


class OnnxGraphError(ValueError):
    """A graph file onnxruntime cannot load; the message names the file and the reason."""


def session(path: Path, threads: int = DEFAULT_THREADS, graph: bytes | None = None):
    """An onnxruntime CPU session on ``threads`` intra-op threads (one inter-op thread), of the
    graph file ``path`` or, given, of ``graph``: that file's graph rewritten in memory."""
    import onnxruntime as ort

    if threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    # Input lengths change from call to call, so memory patterns planned per shape are never
    # reused: they only hold memory, at no CPU saving (bench/results/docstring-history.md).
    options.enable_mem_pattern = False
    try:
        return ort.InferenceSession(graph if graph is not None else str(path),
                                    sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OnnxGraphError(f"{path}: onnxruntime cannot load it ({exc})") from exc
