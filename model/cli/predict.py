"""``python main.py predict FILE...``: the emotion of each audio file.

For each file: the overall label and class probabilities, and, for a file longer than one
window, the label of every window (3 s every 1 s by default) and the speech segments (what was
said between pauses, model.inference.segments: where each starts, how long, its label). Silence or noise (silero-vad)
prints "no speech detected" instead of an emotion; ``--no-vad`` forces a prediction.

``--json`` prints JSON Lines: one object per file, in the order given, written as soon as the
file is done: {"path", "duration_s", "label" (null: no speech), "speech", "speech_ratio"
(null with --no-vad), "probs": {label: p}, "latency_s", "windows": [{"start_s", "end_s",
"label", "speech", "speech_ratio", "probs", "latency_s"}, ...], "segments": [{"start_s",
"duration_s", "label", "probs", "windows"}, ...], "profile": {"path",
"speech_seconds"} of the speaker profile applied (null without --profile)} ("windows" always
holds at least one entry). With ``--profile`` the human output starts with a line saying that
the profile was applied. A file that cannot be read gives {"path", "error"} on stdout and the
error on stderr; the other files are still processed and the exit code is 1. A model that
cannot be loaded is exit code 2.

A file longer than PROGRESS_MIN_SECONDS shows a progress bar (tqdm) on stderr while it is
analysed, also with ``--json`` (stdout holds only the JSON); ``--no-progress`` hides it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from ser_studio.model.audio.loudness import level_warning
from ser_studio.model.constants import (HOP_SECONDS, MIN_HOP_SECONDS, MIN_UTTERANCE_SECONDS,
                                        WINDOW_SECONDS)

if TYPE_CHECKING:  # torch and the networks load only when the command runs
    from ser_studio.model.inference.prediction import FileResult, Prediction

log = logging.getLogger(__name__)

NO_SPEECH = "no speech detected"
PROGRESS_MIN_SECONDS = 30.0  # shorter files are done before a bar would tell anything


def add_parser(subparsers) -> None:
    """Register the ``predict`` command."""
    parser = subparsers.add_parser(
        "predict", help="emotion of audio files",
        description="Predict the emotion of each audio file (and of each window of a long "
                    "one). Files without speech say so instead of forcing an emotion.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files")
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint (X.safetensors or X.json), a run folder, or an exported "
                             "X.onnx (main.py export); default: the shipped model")
    parser.add_argument("--window", type=float, default=WINDOW_SECONDS, metavar="S",
                        help=f"timeline window in seconds (default {WINDOW_SECONDS:g}, at "
                             f"least {MIN_UTTERANCE_SECONDS:g})")
    parser.add_argument("--hop", type=float, default=HOP_SECONDS, metavar="S",
                        help=f"timeline hop in seconds (default {HOP_SECONDS:g}, at least "
                             f"{MIN_HOP_SECONDS:g})")
    parser.add_argument("--profile", type=Path, default=None, metavar="P.json",
                        help="the speaker's profile (`main.py profile`): standardise with "
                             "their own statistics")
    parser.add_argument("--no-vad", action="store_true",
                        help="skip the speech detector (always predict an emotion)")
    parser.add_argument("--json", action="store_true",
                        help="JSON Lines: one object per file on stdout")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar on stderr for long files")
    parser.set_defaults(func=run)


def _label_text(pred: Prediction, labels: list[str]) -> str:
    if pred.label is None:
        return NO_SPEECH
    best = float(pred.probs[labels.index(pred.label)])
    others = ", ".join(f"{name} {100 * p:.0f}%" for name, p in zip(labels, pred.probs))
    return f"{pred.label} {100 * best:.0f}%  ({others})"


def _speech_text(pred: Prediction) -> str:
    return "" if math.isnan(pred.speech_ratio) else f", speech {100 * pred.speech_ratio:.0f}%"


def _level_text(pred: Prediction) -> str:
    level = pred.level
    if level is None or not math.isfinite(level.loudness_lufs):
        return ""
    return f", {level.loudness_lufs:.0f} LUFS, gain {level.gain_db:+.0f} dB"


def format_result(result: FileResult, labels: list[str]) -> str:
    """Human-readable lines of one file's result (windows only when there are several)."""
    overall = result.overall
    lines = [f"{result.path}: {_label_text(overall, labels)}  "
             f"[{result.duration_s:.1f} s{_speech_text(overall)}{_level_text(overall)}]"]
    warning = level_warning(overall.level) if overall.level is not None else ""
    if warning:
        lines.append(f"  warning: {warning}")
    if len(result.windows) > 1:
        lines += [f"  {start:6.1f}-{end:6.1f} s  {_label_text(pred, labels)}"
                  for start, end, pred in result.windows]
        lines += ["  speech segments:"] + [
            f"  {seg.start_s:6.1f} s, {seg.duration_s:4.1f} s long  {seg.label} "
            f"{seg.probs[seg.label]:.0%}" for seg in result.segments] if result.segments else []
    return "\n".join(lines)


class _ProgressBar:
    """A predict_file ``progress(done_s, total_s)`` callback drawing a tqdm bar on stderr, for
    files longer than PROGRESS_MIN_SECONDS; a context manager that closes the bar."""

    def __init__(self, name: str, *, enabled: bool = True) -> None:
        self._name = name
        self._enabled = enabled
        self._bar = None

    def __call__(self, done_s: float, total_s: float) -> None:
        if not self._enabled or total_s <= PROGRESS_MIN_SECONDS:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=round(total_s, 1), desc=self._name, unit="s", leave=False,
                             file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                             "{n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")
        self._bar.update(round(done_s, 1) - self._bar.n)

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *_exc) -> None:
        if self._bar is not None:
            self._bar.close()


def _hint_calibration(predictor) -> None:
    """On stderr: a model trained per speaker is being used without a profile."""
    from ser_studio.model.adaptation.profile import CALIBRATION_HINT, expects_calibration

    if expects_calibration(predictor.checkpoint.inference):
        print(f"note: {CALIBRATION_HINT}", file=sys.stderr)


def _apply_profile(predictor, path: Path) -> dict:
    """Standardise with the speaker profile at ``path``; its {"path", "speech_seconds"} for the
    output. ProfileError (a ValueError) naming the file when it does not fit the model."""
    from ser_studio.model.adaptation.profile import load_profile

    profile = load_profile(path)
    predictor.use_profile(profile, source=path)
    return {"path": str(path), "speech_seconds": profile.speech_seconds}


def run(args: argparse.Namespace) -> int:
    """Predict every file; 0 when all succeeded, 1 when any file failed, 2 without a model."""
    from ser_studio.model.features.base import FrontendUnavailable
    from ser_studio.model.inference.prediction import file_result_to_dict
    from ser_studio.model.inference.predictor import Predictor

    from ser_studio.model.inference.timeline import check_timeline

    try:  # before the model loads: these are the options' errors, not a file's
        check_timeline(args.window, args.hop, names=("--window", "--hop"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    applied = None  # the profile in use, as the output reports it
    try:
        predictor = Predictor.load(args.model)
        if args.profile is not None:
            applied = _apply_profile(predictor, args.profile)
        else:
            _hint_calibration(predictor)
    except (FrontendUnavailable, ValueError, OSError) as exc:  # CheckpointError, ProfileError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if applied is not None and not args.json:
        print(f"speaker profile applied: {applied['path']} "
              f"({applied['speech_seconds']:.1f} s of speech)", flush=True)
    failed = 0
    for path in args.files:
        try:
            with _ProgressBar(Path(path).name, enabled=not args.no_progress) as bar:
                result = predictor.predict_file(path, window_s=args.window, hop_s=args.hop,
                                                vad=not args.no_vad, progress=bar)
        except (ValueError, OSError, RuntimeError) as exc:  # AudioError is a ValueError
            failed += 1
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            print(f"error: {message}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": str(path), "error": message}), flush=True)
            continue
        if args.json:
            doc = file_result_to_dict(result, predictor.labels)
            print(json.dumps({**doc, "profile": applied}), flush=True)
        else:
            print(format_result(result, predictor.labels), flush=True)
    return 1 if failed else 0
