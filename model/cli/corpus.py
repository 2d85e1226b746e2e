"""``main.py corpus PATH``: what the corpus reader finds at PATH (human summary or JSON)."""
from __future__ import annotations

import argparse
import json
import sys

from ser_studio.model.corpora.checks import audio_warnings
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.labels import parse_classes, parse_label_map
from ser_studio.model.corpora.record import CorpusError


def add_parser(subparsers) -> None:
    """Register the ``corpus`` command."""
    parser = subparsers.add_parser(
        "corpus",
        help="show what a corpus folder or manifest holds",
        description=(
            "Read a corpus and report utterances, labels, speakers, sessions and genders. "
            "PATH is an IEMOCAP folder (holding Session1..Session5), a folder of RAVDESS-named "
            "audio files, or a CSV manifest path,label,speaker[,gender,session,language]."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="corpus folder or .csv manifest")
    parser.add_argument(
        "--map", dest="label_map", action="append", metavar="A=B[,C=D...]",
        help="label map applied before class selection, e.g. calm=neutral,exc=happy "
             "(keys: corpus codes or label names; may be repeated)",
    )
    parser.add_argument(
        "--classes", nargs="+", metavar="LABEL",
        help="labels to keep after mapping (default: IEMOCAP angry happy neutral sad; "
             "other corpora every label)",
    )
    parser.add_argument("--drop-conflicting", action="store_true",
                        help="leave out files listed under two labels (default: an error)")
    parser.add_argument("--no-audio-check", action="store_true",
                        help="do not read every clip to find silent, too short or undecodable "
                             "ones")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run)


def format_summary(summary: dict) -> str:
    """The human-readable report of ``Corpus.summary()``."""
    def line(name: str, counts: dict) -> str:
        body = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
        return f"{name} ({len(counts)}): {body}"

    lines = [
        f"{summary['kind']} corpus at {summary['root']}",
        f"utterances: {summary['utterances']}",
        line("labels", summary["labels"]),
        line("speakers", summary["speakers"]),
        line("sessions", summary["sessions"]),
        line("genders", summary["genders"]),
        line("languages", summary.get("languages", {})),
    ]
    if summary.get("dropped"):
        lines.append(line("dropped (other labels)", summary["dropped"]))
    if summary.get("missing_audio"):
        lines.append(f"skipped for missing audio: {summary['missing_audio']}")
    for warning in summary.get("warnings", []):
        first = ", ".join(warning["examples"])
        lines.append(f"warning: {warning['message']}" + (f" (first: {first})" if first else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the corpus summary; exit code 2 with a message on stderr for unusable input."""
    try:
        label_map = parse_label_map(args.label_map)
        corpus = load_corpus(args.path, label_map=label_map,
                             classes=parse_classes(args.classes),
                             drop_conflicts=args.drop_conflicting)
    except (CorpusError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = corpus.summary()
    if not args.no_audio_check:
        summary["warnings"] += [w.to_dict() for w in audio_warnings(corpus.utterances)]
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return 0
