"""``python main.py evaluate``: score a trained model on a labelled corpus.

Every utterance goes through the model (features from the feature cache, standardised and
centre-cropped by model.inference.predictor.Predictor exactly as the trainer evaluates). No VAD
gate: every corpus utterance is labelled speech. Prints WA, UA, macro-F1, per-class figures, the
confusion matrix and per-speaker/gender/session figures; ``--json`` prints one JSON object
instead: the keys of model.evaluation.metrics.compute_metrics (wa, ua, macro_f1, n, labels,
confusion, per_class, per_speaker, per_gender, per_session, *_spread) plus "model" and "corpus"
paths ("corpora" [{name, path}] and "per_corpus" {name: {wa, ua, macro_f1, n, confusion}}
with several ``--corpus``). Errors (bad checkpoint, corpus, labels the model does not know, unreadable audio) go to
stderr with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from ser_studio.model.corpora.corpus import Corpus
from ser_studio.model.corpora.multi import CorpusSet, load_corpora
from ser_studio.model.corpora.labels import parse_classes
from ser_studio.model.corpora.record import CorpusError
from ser_studio.model.files import default_cache_dir

if TYPE_CHECKING:  # torch, scikit-learn and the encoders load only when the command runs
    from ser_studio.model.features.cache import FeatureCache
    from ser_studio.model.inference.predictor import Predictor

log = logging.getLogger(__name__)

CHUNK_FILES = 256  # features held in memory at once
ADAPT_MODES = ("none", "speaker", "enrol")
PROTOCOLS = {
    "none": "plain: the training data's standardisation",
    "speaker": "speaker-adapted, unlabelled: each speaker standardised by statistics of all "
               "their own recordings' speech (no labels)",
    "enrol": "enrolment, unlabelled: each speaker standardised by statistics of their first "
             "{s:g} s of speech (no labels); only their remaining recordings are scored",
}


def add_parser(subparsers) -> None:
    """Register the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate", help="score a model on a labelled corpus",
        description="Predict every utterance of a corpus with a trained model and print WA, "
                    "UA, macro-F1, the confusion matrix and per-speaker figures.")
    parser.add_argument("--model", type=Path, default=None,
                        help="checkpoint (X.safetensors or X.json), a run folder, or an exported "
                             "X.onnx (main.py export); default: the shipped model")
    parser.add_argument("--corpus", required=True, type=Path, action="append",
                        help="IEMOCAP folder, RAVDESS folder or CSV manifest; repeat for "
                             "several corpora (figures per corpus as well as pooled)")
    parser.add_argument("--map", action="append", default=None, metavar="A=B,...",
                        help="label map, e.g. calm=neutral,exc=happy (with several corpora "
                             "NAME:A=B,... maps corpus NAME only)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help="labels to keep (space or comma separated)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="feature cache folder (default: $SER_CACHE_DIR or "
                             f"{default_cache_dir()})")
    parser.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    parser.add_argument("--adapt", choices=ADAPT_MODES, default="none",
                        help="speaker: normalise each speaker by statistics of their own audio "
                             "(no labels); enrol: the same from their first --enrol-seconds of "
                             "speech only, those recordings not scored (what a live user who "
                             "calibrates gets)")
    parser.add_argument("--enrol-seconds", type=float, default=10.0, metavar="S",
                        help="speech per speaker used for --adapt enrol (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def check_labels(corpus: Corpus | CorpusSet, labels: list[str], model_path: Path) -> None:
    """Raise CorpusError when the corpus (each of several) holds labels the model cannot
    predict, naming that corpus."""
    for part in getattr(corpus, "parts", (corpus,)):
        _check_part_labels(part, labels, model_path)


def _check_part_labels(corpus: Corpus, labels: list[str], model_path: Path) -> None:
    unknown = [name for name in corpus.labels if name not in labels]
    if unknown:
        raise CorpusError(
            f"{corpus.root}: labels {unknown} are not known to the model {model_path} "
            f"(its labels: {labels}); keep the model's classes with --classes "
            f"{' '.join(labels)} or merge labels with --map, e.g. --map calm=neutral")


def predict_corpus(predictor: Predictor, cache: FeatureCache, corpus: Corpus | CorpusSet,
                   batch_size: int, progress: bool) -> list[str]:
    """Predicted label of every utterance of ``corpus``, in its order."""
    import numpy as np

    paths = [u.path for u in corpus.utterances]
    cache.fill(paths, progress=progress)
    predicted: list[str] = []
    for start in range(0, len(paths), CHUNK_FILES):
        feats = [cache.get(p) for p in paths[start:start + CHUNK_FILES]]
        probs = predictor.probs_of_features(feats, batch_size=batch_size)
        predicted += [predictor.labels[i] for i in np.argmax(probs, axis=1)]
    return predicted


def _by_speaker(utts) -> dict[str, list]:
    groups: dict[str, list] = {}
    for utt in utts:
        groups.setdefault(utt.speaker, []).append(utt)
    return groups


def predict_adapted(predictor, cache, corpus, mode: str, enrol_s: float,
                    batch_size: int) -> tuple[list, list[str]]:
    """(scored utterances, their predicted labels) with each speaker's own statistics
    (``mode`` "speaker" or "enrol"; model.adaptation.profile.adapted_probs); labels are never
    read."""
    import numpy as np

    from ser_studio.model.adaptation.profile import adapted_probs
    from ser_studio.model.audio.io import load_audio

    cache.fill([u.path for u in corpus.utterances], progress=False)
    scored, predicted = [], []
    for utts in _by_speaker(corpus.utterances).values():
        first, probs = adapted_probs(predictor, [cache.get(u.path) for u in utts],
                                     [load_audio(u.path) for u in utts], mode, enrol_s,
                                     batch_size)
        predicted += [predictor.labels[i] for i in np.argmax(probs, axis=1)]
        scored += utts[first:]
    return scored, predicted


def evaluate(args: argparse.Namespace) -> dict:
    """The metrics dict of the command (raises the errors run() reports)."""
    from ser_studio.model.evaluation.metrics import compute_metrics
    from ser_studio.model.features.cache import FeatureCache
    from ser_studio.model.inference.predictor import Predictor

    predictor = Predictor.load(args.model)
    corpus = load_corpora(args.corpus, label_map=args.map,
                          classes=parse_classes(args.classes))
    if not corpus.utterances:
        raise CorpusError(f"{args.corpus}: no utterances to evaluate")
    check_labels(corpus, predictor.labels, predictor.checkpoint_path)
    cache = FeatureCache(predictor.frontend, args.cache)
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    adapt = getattr(args, "adapt", "none")
    if adapt == "none":
        utts = corpus.utterances
        predicted = predict_corpus(predictor, cache, corpus, args.batch_size, progress)
    else:
        utts, predicted = predict_adapted(predictor, cache, corpus, adapt,
                                          args.enrol_seconds, args.batch_size)
    metrics = compute_metrics([u.label for u in utts], predicted, predictor.labels,
                              speakers=[u.speaker for u in utts],
                              genders=[u.gender for u in utts],
                              sessions=[u.session for u in utts],
                              corpora=[u.corpus for u in utts] if len(corpus.parts) > 1
                              else None)
    protocol = PROTOCOLS[adapt].format(s=getattr(args, "enrol_seconds", 0.0))
    where = {"corpus": str(corpus.root)} if len(corpus.parts) == 1 else {
        "corpus": " + ".join(str(r) for r in corpus.roots),
        "corpora": [{"name": n, "path": str(p.root)} for n, p in zip(corpus.names,
                                                                      corpus.parts)]}
    return {**metrics, "model": str(predictor.checkpoint_path), "model_name": predictor.name,
            **where, "protocol": protocol}


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; 0 on success, 2 on an error (message on stderr)."""
    from ser_studio.model.features.base import FrontendUnavailable

    try:
        metrics = evaluate(args)
    except (CorpusError, FrontendUnavailable, ValueError, OSError) as exc:  # CheckpointError
        # is a ValueError
        # ValueError includes AudioError and the cache's FillError, which lists every bad file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_metrics(metrics))
    return 0


def _pct(x: float | None) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def _groups(metrics: dict, kind: str) -> list[str]:
    groups = metrics.get(f"per_{kind}") or {}
    if not groups:
        return []
    width = max(len(kind), *(len(n) for n in groups))
    lines = ["", f"{kind:<{width}}      n  acc %   F1 %"]
    lines += [f"{name:<{width}} {g['n']:6d}  {_pct(g['accuracy'])}  {_pct(g['f1'])}"
              for name, g in groups.items()]
    spread = metrics[f"{kind}_spread"]
    lines.append(f"spread across {kind}s (std): accuracy {_pct(spread['accuracy_std']).strip()}, "
                 f"F1 {_pct(spread['f1_std']).strip()}")
    return lines


def format_metrics(m: dict) -> str:
    """Human-readable tables of an evaluate result."""
    labels = m["labels"]
    width = max(8, *(len(x) for x in labels))
    lines = [f"model  {m['model']}", f"corpus {m['corpus']}",
             f"protocol: {m.get('protocol', PROTOCOLS['none'])}",
             f"WA {_pct(m['wa']).strip()} %   UA {_pct(m['ua']).strip()} %   "
             f"macro-F1 {_pct(m['macro_f1']).strip()} %   (n={m['n']})", "",
             f"{'class':<{width}}  recall %   F1 %      n"]
    for name in labels:
        c = m["per_class"][name]
        lines.append(f"{name:<{width}}     {_pct(c['recall'])}  {_pct(c['f1'])}  {c['support']:5d}")
    lines += ["", "confusion (rows true, columns predicted)",
              " " * width + "".join(f" {x[:width]:>{width}}" for x in labels)]
    for name, row in zip(labels, m["confusion"]):
        lines.append(f"{name:<{width}}" + "".join(f" {v:>{width}d}" for v in row))
    lines += _corpora(m)
    for kind in ("speaker", "gender", "session"):
        lines += _groups(m, kind)
    return "\n".join(lines)


def _corpora(m: dict) -> list[str]:
    """Per-corpus WA/UA rows of an evaluation on several corpora, and their mean."""
    corpora = m.get("per_corpus") or {}
    if not corpora:
        return []
    width = max(6, *(len(n) for n in corpora))
    lines = ["", f"{'corpus':<{width}}      n   WA %   UA %"]
    lines += [f"{name:<{width}} {c['n']:6d}  {_pct(c['wa'])}  {_pct(c['ua'])}"
              for name, c in corpora.items()]
    wa = sum(c["wa"] for c in corpora.values()) / len(corpora)
    ua = sum(c["ua"] for c in corpora.values()) / len(corpora)
    lines.append(f"{'mean':<{width}} {'':>6}  {_pct(wa)}  {_pct(ua)}   (each corpus once)")
    return lines
