"""``python -m ser_studio.model.inference.export_main CHECKPOINT``: the child process that
model.inference.export_child starts to export a checkpoint's graphs for onnxruntime
(model.onnx.cache), so the process that predicts never builds the torch network."""
from __future__ import annotations

import logging
import sys

from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import CheckpointError

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    """``python -m ser_studio.model.inference.export_main CHECKPOINT``: load it on onnxruntime,
    exporting and checking its graphs into the cache. Exit 0 when it loaded (a part left on torch is
    logged), 2 when it cannot be loaded."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        print("usage: python -m ser_studio.model.inference.export_main CHECKPOINT", file=sys.stderr)
        return 2
    try:
        Predictor.load(argv[0], runtime="auto")
    except (CheckpointError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
