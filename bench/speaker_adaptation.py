"""Speaker adaptation measured on a cross-validated run: every fold model scores its own test
speakers with the training data's standardisation ("plain"), with each speaker's own
statistics from all their recordings ("speaker", unlabelled), and from their first 10 s and
30 s of speech only, those recordings not scored ("enrol 10 s", "enrol 30 s").

    python -m bench.speaker_adaptation --run runs/default_model [--json OUT]
    python -m bench.speaker_adaptation --run RUN --conditions [NAME ...] [--json OUT]

With --conditions (no names: all 15 of bench/robustness.py) every protocol is measured under
each recording condition, the profile made from the same condition's audio (as a user
calibrating with their own microphone and room would); rows are conditions, columns protocols,
then the mean and worst UA over the conditions.

Each protocol is its own line; the figures are means over folds (as the CV figures are).
The corpus options must be those the run was trained with (default: the shipped model's).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

MODES = (("plain", "none", 0.0), ("speaker", "speaker", 0.0), ("enrol 10 s", "enrol", 10.0),
         ("enrol 30 s", "enrol", 30.0))


def fold_manifest(corpus, speakers, folder: Path, fold: int) -> Path:
    """A manifest of the fold's test speakers' utterances, as ``evaluate`` reads it; named by
    the fold (a run on several corpora names its speakers "CORPUS/ID")."""
    path = folder / f"test_fold{fold}.csv"
    path.write_text("path,label,speaker,gender\n" + "".join(
        f"{u.path},{u.label},{u.speaker},{u.gender}\n" for u in corpus.utterances
        if u.speaker in speakers))
    return path


def clean_rows(args, corpus, folds) -> dict[str, list[dict]]:
    """Protocol -> per-fold {"wa", "ua", "n", "protocol"}, through `evaluate` itself."""
    from ser_studio.model.cli.evaluate import evaluate

    rows = {name: [] for name, _, _ in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            manifest = fold_manifest(corpus, set(fold["test_speakers"]), Path(tmp), fold["fold"])
            for name, adapt, seconds in MODES:
                ns = argparse.Namespace(model=args.run / fold["checkpoint"], corpus=manifest,
                                        map=None, classes=None, cache=args.cache, batch_size=32,
                                        json=True, no_progress=True, adapt=adapt,
                                        enrol_seconds=seconds)
                m = evaluate(ns)
                rows[name].append({"wa": m["wa"], "ua": m["ua"], "n": m["n"],
                                   "protocol": m["protocol"]})
    return rows


def _score_mode(predictor, test, wavs, feats, adapt: str, seconds: float) -> dict:
    """compute_metrics of one protocol on one fold's (rendered) test clips."""
    from ser_studio.model.adaptation.profile import adapted_probs
    from ser_studio.model.evaluation.metrics import compute_metrics

    truth, predicted = [], []
    if adapt == "none":
        probs = predictor.probs_of_features(feats)
        truth, predicted = [u.label for u in test], [predictor.labels[k] for k in probs.argmax(1)]
        return compute_metrics(truth, predicted, predictor.labels)
    for speaker in dict.fromkeys(u.speaker for u in test):
        idx = [i for i, u in enumerate(test) if u.speaker == speaker]
        first, probs = adapted_probs(predictor, [feats[i] for i in idx], [wavs[i] for i in idx],
                                     adapt, seconds)
        truth += [test[i].label for i in idx[first:]]
        predicted += [predictor.labels[k] for k in np.argmax(probs, axis=1)]
    return compute_metrics(truth, predicted, predictor.labels)


def condition_rows(args, corpus, folds, conditions) -> dict[str, dict[str, list[float]]]:
    """condition -> protocol -> per-fold UA."""
    from ser_studio.model.inference.predictor import Predictor
    from bench.robustness import condition_renders

    table: dict[str, dict[str, list[float]]] = {}
    for fold in folds:
        predictor = Predictor.load(args.run / fold["checkpoint"])
        test = [u for u in corpus.utterances if u.speaker in set(fold["test_speakers"])]
        for name, wavs, feats in condition_renders(predictor, fold, test, conditions):
            row = table.setdefault(name, {m: [] for m, _, _ in MODES})
            for mode, adapt, seconds in MODES:
                row[mode].append(_score_mode(predictor, test, wavs, feats, adapt, seconds)["ua"])
            logging.getLogger("speaker_adaptation").warning(
                "fold %s, %s: %s", fold["fold"], name,
                ", ".join(f"{m} {row[m][-1]:.3f}" for m, _, _ in MODES))
    return table


def print_clean(rows: dict[str, list[dict]]) -> None:
    print("| protocol | WA | UA | UA per fold | clips scored |\n|---|---|---|---|---|")
    for name, per_fold in rows.items():
        print(f"| {name} | {np.mean([r['wa'] for r in per_fold]):.3f} | "
              f"{np.mean([r['ua'] for r in per_fold]):.3f} ± "
              f"{np.std([r['ua'] for r in per_fold]):.3f} | "
              f"{' / '.join(format(r['ua'], '.2f') for r in per_fold)} | "
              f"{sum(r['n'] for r in per_fold)} |")


def print_conditions(table: dict[str, dict[str, list[float]]]) -> None:
    modes = [m for m, _, _ in MODES]
    print("| condition | " + " | ".join(f"UA {m}" for m in modes) + " |")
    print("|---|" + "---|" * len(modes))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(row[m]):.3f}" for m in modes) + " |")
    means = {m: [np.mean(row[m]) for row in table.values()] for m in modes}
    print("| **mean over conditions** | " + " | ".join(f"{np.mean(means[m]):.3f}"
                                                      for m in modes) + " |")
    print("| **worst condition** | " + " | ".join(f"{np.min(means[m]):.3f}" for m in modes)
          + " |")


def main(argv: list[str] | None = None) -> None:
    from ser_studio.model.augmentation.conditions import CONDITIONS
    from bench.robustness import add_run_arguments, run_corpus, run_folds

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--conditions", nargs="*", default=None,
                        help="measure under these recording conditions (no names: all 13)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache", type=Path, help="feature cache folder (default: user cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpus = run_corpus(args)
    _, folds = run_folds(args.run, None)
    if args.conditions is None:
        rows = clean_rows(args, corpus, folds)
        print_clean(rows)
        doc = {"run": str(args.run), "rows": rows}
    else:
        table = condition_rows(args, corpus, folds, args.conditions or list(CONDITIONS))
        print_conditions(table)
        doc = {"run": str(args.run), "conditions": table}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
