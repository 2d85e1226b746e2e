"""``main.py synth OUT``: write the synthetic IEMOCAP-layout corpus into OUT."""
from __future__ import annotations

import argparse
import sys

from ser_studio.model.corpora.record import CorpusError
from ser_studio.model.corpora.synth import ENGINES, SynthSpec, write_synthetic_iemocap


def add_parser(subparsers) -> None:
    """Register the ``synth`` command."""
    defaults = SynthSpec()
    parser = subparsers.add_parser(
        "synth",
        help="write a small synthetic corpus in the IEMOCAP layout",
        description=(
            "Write a synthetic emotional speech corpus in the IEMOCAP full-release layout "
            "(SessionN/dialog/EmoEvaluation, SessionN/sentences/wav), two speakers per session, "
            "angry/happy(+exc)/neutral/sad plus dropped fru/xxx utterances. Speech comes from "
            "espeak-ng when installed, else from synthetic voiced signals. Rerunning into the "
            "same folder with the same options skips what is already there."
        ),
    )
    parser.add_argument("out", metavar="OUT", help="folder to write (new or empty, or a "
                                                   "synthetic corpus made with the same options)")
    parser.add_argument("--per-speaker", type=int, default=defaults.per_speaker_per_emotion,
                        metavar="N",
                        help="utterances per speaker and emotion (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed (default %(default)s)")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine,
                        help="speech engine (default %(default)s: espeak-ng if installed)")
    parser.add_argument("--sessions", type=int, default=defaults.sessions,
                        help="SessionN folders, two speakers each (default %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the corpus and print its root; exit code 2 with a message on stderr on failure."""
    try:
        spec = SynthSpec(per_speaker_per_emotion=args.per_speaker, seed=args.seed,
                         engine=args.engine, sessions=args.sessions)
        root = write_synthetic_iemocap(args.out, spec)
    except (CorpusError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(root.resolve())
    return 0
