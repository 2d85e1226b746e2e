"""``main.py profile FILE... --out P.json``: a speaker profile from one speaker's recordings
(model.adaptation.profile), for ``predict --profile`` and ``evaluate``-style adaptation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register the ``profile`` command."""
    parser = subparsers.add_parser(
        "profile", help="calibrate to a voice: a speaker profile from their recordings",
        description="Measure one speaker's own feature statistics (their speech only, found "
                    "by silero-vad; no labels) for a model, and write them as a profile "
                    "that `predict --profile` applies. About 20 s or more of normal speech "
                    "is a good start; the profile weighs more the more speech it saw.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="recordings of the one speaker")
    parser.add_argument("--out", required=True, type=Path, help="profile JSON to write")
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint or run folder (default: the shipped model)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ser_studio.model.adaptation.profile import make_profile
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.inference.predictor import Predictor

    try:
        predictor = Predictor.load(args.model)
        profile = make_profile(predictor, [load_audio(f) for f in args.files])
        profile.save(args.out)
    except (ValueError, OSError) as exc:  # AudioError, CheckpointError, ProfileError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"profile: {args.out} ({profile.speech_seconds:.1f} s of speech, for "
          f"{predictor.name})")
    return 0
