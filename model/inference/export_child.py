"""Exporting a checkpoint's graphs for onnxruntime in a child process (model.onnx.cache), so
the process that predicts never builds the torch network or holds the exporter. The child is
``python -m ser_studio.model.inference.export_main CHECKPOINT``; it is named here, not imported.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ser_studio.model.onnx.cache import CHILD_TIMEOUT_S, IN_PROCESS_ENV

log = logging.getLogger(__name__)


def export_in_child(checkpoint: str | Path) -> bool:
    """Export and check every graph ``checkpoint`` runs on onnxruntime in a child process (see
    model.onnx.cache). Returns whether the child succeeded; False without one when
    IN_PROCESS_ENV is "1". A failure is logged with the child's last lines of stderr."""
    if os.environ.get(IN_PROCESS_ENV) == "1":
        return False
    started = time.perf_counter()
    command = [sys.executable, "-m", "ser_studio.model.inference.export_main",
               str(checkpoint)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                              env={**os.environ, IN_PROCESS_ENV: "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s: exporting in a child process failed (%s); exporting here", checkpoint,
                    exc)
        return False
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        log.warning("%s: exporting in a child process failed (exit %d: %s); exporting here",
                    checkpoint, done.returncode, tail)
        return False
    log.info("%s: graphs exported for onnxruntime in a child process (%.1f s)", checkpoint,
             time.perf_counter() - started)
    return True
