"""Command-line interface: ``python main.py <command> [options]``.

Each command lives in its own module exposing ``add_parser(subparsers)`` (which registers the
command and sets ``func``) and is listed in COMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ("corpus", "synth", "extract", "train", "evaluate", "predict", "export", "ship",
            "profile")


def build_parser() -> argparse.ArgumentParser:
    """The parser with one subcommand per module in COMMANDS."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Speech emotion recognition. With no command, the desktop app starts: "
                    "python main.py [--model CKPT] [--history DB_PATH] "
                    "[--device NAME_OR_INDEX] [--replay AUDIO_FILE]: the model to load (default: "
                    "the shipped one), the history database, the input device, or a file "
                    "to listen to instead of a microphone.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"ser_studio.model.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
