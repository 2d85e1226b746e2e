"""Speaker adaptation measured on a cross-validated run: every fold model scores its own test
speakers with the training data's standardisation ("plain"), with each speaker's own
statistics from all their recordings ("speaker", unlabelled), and from their first 10 s and
30 s of speech only, those recordings not scored ("enrol 10 s", "enrol 30 s").

    python bench/speaker_adaptation.py --run runs/default_model [--json OUT]

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


def fold_manifest(corpus, speakers, folder: Path) -> Path:
    path = folder / f"test_{'_'.join(sorted(speakers))}.csv"
    path.write_text("path,label,speaker,gender\n" + "".join(
        f"{u.path},{u.label},{u.speaker},{u.gender}\n" for u in corpus.utterances
        if u.speaker in speakers))
    return path


def main() -> None:
    from model.cli.evaluate import evaluate
    from robustness import add_run_arguments, run_corpus

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    corpus = run_corpus(args)
    folds = json.loads((args.run / "metrics.json").read_text())["folds"]
    rows = {name: [] for name, _, _ in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            manifest = fold_manifest(corpus, set(fold["test_speakers"]), Path(tmp))
            for name, adapt, seconds in MODES:
                ns = argparse.Namespace(model=args.run / fold["checkpoint"], corpus=manifest,
                                        map=None, classes=None, cache=None, batch_size=32,
                                        json=True, no_progress=True, adapt=adapt,
                                        enrol_seconds=seconds)
                m = evaluate(ns)
                rows[name].append({"wa": m["wa"], "ua": m["ua"], "n": m["n"],
                                   "protocol": m["protocol"]})
    print("| protocol | WA | UA | UA per fold | clips scored |\n|---|---|---|---|---|")
    for name, per_fold in rows.items():
        print(f"| {name} | {np.mean([r['wa'] for r in per_fold]):.3f} | "
              f"{np.mean([r['ua'] for r in per_fold]):.3f} ± "
              f"{np.std([r['ua'] for r in per_fold]):.3f} | "
              f"{' / '.join(format(r['ua'], '.2f') for r in per_fold)} | "
              f"{sum(r['n'] for r in per_fold)} |")
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
