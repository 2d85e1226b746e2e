"""How many torch intra-op threads the inference worker uses, and setting them in its thread.

``SER_INFERENCE_THREADS`` (a positive integer) overrides the default of one thread. One was
chosen by measurement (bench/bench_live.py, default model, 2-core machine): a live window costs
less CPU on one thread than on two and is no slower, and the app's other threads (GUI, recorder)
then keep a core. Torch keeps this count per thread once a thread has run torch (and hands the
last count set anywhere to threads that have not yet), so the worker sets it in its own thread
before each piece of work (``use_threads``) rather than once for the process at start-up.

Two workers (live windows, files) use torch at once. Changing the thread count while another
thread runs torch, or building two models at the same moment, crashed the process once (a
segmentation fault in CI), so ``use_threads`` is serialised and the app sets the count in the
GUI thread before any worker starts (workers then inherit it and never change it), and
``load_predictor`` builds one model at a time.
"""
from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

THREADS_ENV = "SER_INFERENCE_THREADS"
DEFAULT_THREADS = 1
_torch_lock = threading.Lock()


def inference_threads() -> int:
    """Torch intra-op threads for inference: $SER_INFERENCE_THREADS when it is a positive
    integer (a bad value is logged and ignored), else DEFAULT_THREADS."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return DEFAULT_THREADS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        log.warning("%s=%r is not a positive integer; using %d thread(s)", THREADS_ENV, text,
                    DEFAULT_THREADS)
        return DEFAULT_THREADS
    return value


def use_threads(threads: int) -> None:
    """Run torch on ``threads`` intra-op threads in the calling thread (no-op when it does)."""
    import torch

    with _torch_lock:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
            log.info("torch runs on %d intra-op thread(s) here", threads)


def load_predictor(path: str | None):
    """``Predictor.load(path)`` (None or "": the shipped model), one model at a time."""
    from ser_studio.model.inference.predictor import Predictor

    with _torch_lock:
        return Predictor.load(path or None)
