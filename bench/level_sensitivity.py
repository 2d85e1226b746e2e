"""How much a cross-validated model depends on the recording level.

Each fold checkpoint of a run folder (``main.py train --out RUN``) predicts its own test speakers'
clips, as recorded and scaled by each gain (a quieter or louder microphone). Prints UA and the
predicted-label counts per fold and gain. The speech gate is skipped (``vad=False``) so that
only the network's dependence on the level is measured.

    python bench/level_sensitivity.py --run runs/default_model \
        --corpus ../shared/data/ravdess-dev --gains 0 -6 -12 -24

The corpus options must be those the run was trained with (default: the shipped model's).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("level_sensitivity")


def fold_rows(run: Path, fold: dict, corpus, gains: list[float]) -> list[str]:
    """One printed line per gain for ``fold`` (an entry of the run's metrics.json)."""
    from model.audio import load_audio
    from model.inference import Predictor

    predictor = Predictor.load(run / fold["checkpoint"])
    test = [u for u in corpus.utterances if u.speaker in set(fold["test_speakers"])]
    wavs = [load_audio(u.path) for u in test]
    truth = [u.label for u in test]
    rows = []
    for db in gains:
        scale = 10.0 ** (db / 20.0)
        pred = [predictor.predict(np.clip(w * scale, -1.0, 1.0), vad=False).label
                for w in wavs]
        counts = ", ".join(f"{name} {pred.count(name)}" for name in predictor.labels)
        rows.append(f"fold {fold['fold']}  {db:+6.1f} dB  UA {balanced_accuracy_score(truth, pred):.3f}"
                    f"  predicted: {counts}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=REPO / "runs/default_model")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/ravdess-dev")
    parser.add_argument("--map", default="calm=neutral")
    parser.add_argument("--classes", nargs="+", default=["angry", "happy", "neutral", "sad"])
    parser.add_argument("--gains", nargs="+", type=float, default=[0.0, -6.0, -12.0, -24.0],
                        help="gains in dB applied to the clips (clipped to [-1, 1])")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from model.corpora import load_corpus, parse_label_map

    corpus = load_corpus(args.corpus, parse_label_map([args.map]), args.classes)
    summary = json.loads((args.run / "metrics.json").read_text())
    print(f"run: {args.run}; {len(summary['folds'])} folds; gains (dB): {args.gains}")
    for fold in summary["folds"]:
        for row in fold_rows(args.run, fold, corpus, args.gains):
            print(row, flush=True)


if __name__ == "__main__":
    main()
