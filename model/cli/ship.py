"""``main.py ship MODEL``: make a trained model the package's default model."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register the ``ship`` command."""
    parser = subparsers.add_parser(
        "ship", help="make a trained model the default model",
        description="Copy MODEL (X.safetensors, X.json or a run folder with model.safetensors) "
                    "to the package's assets/default_model.safetensors (+ .json), marked as "
                    "the shipped model. Update assets/MODEL_CARD.md to match.")
    parser.add_argument("model", metavar="MODEL", help="checkpoint or run folder")
    parser.add_argument("--to", type=Path, help="target X.safetensors (default: the "
                                                "package's default model)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ser_studio.model.inference.predictor import default_model_path
    from ser_studio.model.networks.checkpoint import CheckpointError, ship_checkpoint

    try:
        target = ship_checkpoint(args.model, args.to or default_model_path())
    except (CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"default model: {target}")
    return 0
