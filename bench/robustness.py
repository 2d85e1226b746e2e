"""Robustness of a cross-validated run: every fold model scores its own test speakers under the
15 recording conditions of model.augmentation.conditions (as recorded, level changes, normalisation,
noise, babble from other test speakers, a room, a phone line, a low-pass, a codec, clipping, a DC
offset, mains hum).

    python -m bench.robustness --run runs/default_model [--json runs/default_model/robustness.json]
        [--compare runs/old_recipe/robustness.json]

``--ray ADDRESS`` (as on ``train``; model.cluster.options) scores each fold as a Ray task; the
workers read the run folder and the corpus by the paths given here (a shared mount).

A long run can be scored fold by fold while it trains (a fold is read from its
fold_K/model.json until the run's metrics.json exists): ``--folds 1 --save-folds DIR`` writes
DIR/fold_1.json, and ``--merge DIR/fold_*.json`` summarises saved folds without scoring again.

For each condition it prints WA, UA and macro-F1 (mean over folds, as the CV figures are) and
the predicted-class distribution over all test clips, then the mean and the worst UA over the
conditions. Renders are deterministic (seeded by fold, clip and condition). Scoring is the
trainer's test path: the Predictor's frontend (loudness normaliser included when the model has
it), centre crop of eval_max_seconds, no speech gate, batched. The corpus options must be those
the run was trained with (default: the shipped model's); a run on several corpora takes each
with its own ``--corpus`` in the run's order, and every condition then also gives each corpus's
UA (its test clips of all folds scored on their own). ``--score-corpus NAME`` scores only the
test clips of corpus NAME (a run on several corpora scored on one corpus's folds, e.g. RAVDESS's
actors, at a fraction of the cost); a fold without test clips of it is left out.
"""
from __future__ import annotations

import argparse
import json
import logging
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared/data/ravdess-dev"
log = logging.getLogger("robustness")


def _others(wavs: list[np.ndarray], speakers: list[str], i: int) -> list[np.ndarray]:
    return [w for w, s in zip(wavs, speakers) if s != speakers[i]]


def condition_renders(predictor, fold: dict, test: list, conditions: list[str]):
    """Per condition: (name, rendered test waveforms (N,), their features (T, D)), the renders
    seeded by fold, clip and condition (babble from the fold's other test speakers)."""
    from ser_studio.model.audio.io import load_audio
    from ser_studio.model.augmentation.conditions import render

    wavs = [load_audio(u.path) for u in test]
    speakers = [u.speaker for u in test]
    for name in conditions:
        rendered = [render(name, wav, seed=zlib.crc32(f"{fold['fold']}/{i}/{name}".encode()),
                           others=_others(wavs, speakers, i)) for i, wav in enumerate(wavs)]
        yield name, rendered, [predictor.frontend(w) for w in rendered]


def fold_test(fold: dict, corpus, only_corpus: str | None = None) -> list:
    """The fold's test utterances in ``corpus`` (of corpus ``only_corpus`` alone when given);
    SystemExit when none of its test speakers is in the corpus at all."""
    test = [u for u in corpus.utterances if u.speaker in set(fold["test_speakers"])]
    if not test:
        raise SystemExit(f"fold {fold['fold']}: none of its test speakers is in the corpus "
                         "given; pass the --corpus options (in order) and --map/--classes the "
                         "run was trained with")
    return [u for u in test if only_corpus is None or u.corpus == only_corpus]


def score_fold(run: Path, fold: dict, corpus, conditions: list[str],
               only_corpus: str | None = None) -> dict:
    """{condition: {"metrics": compute_metrics(...), "predicted": [labels]}} for one fold (its
    test clips of corpus ``only_corpus`` alone when given)."""
    from ser_studio.model.evaluation.metrics import compute_metrics
    from ser_studio.model.inference.predictor import Predictor

    predictor = Predictor.load(run / fold["checkpoint"])
    test = fold_test(fold, corpus, only_corpus)
    truth = [u.label for u in test]
    several = len(getattr(corpus, "parts", ())) > 1 and only_corpus is None
    corpora = [u.corpus for u in test] if several else None
    result = {}
    for name, _, feats in condition_renders(predictor, fold, test, conditions):
        probs = predictor.probs_of_features(feats)
        predicted = [predictor.labels[k] for k in probs.argmax(1)]
        result[name] = {"metrics": compute_metrics(truth, predicted, predictor.labels,
                                                   corpora=corpora),
                        "predicted": predicted}
        log.info("fold %s, %s: UA %.3f", fold["fold"], name, result[name]["metrics"]["ua"])
    return result


def run_folds(run: Path, only: list[int] | None) -> tuple[list[str], list[dict]]:
    """(labels, fold entries) of a run: from its metrics.json, or, while it still trains,
    from the finished folds' fold_K/model.json."""
    if (run / "metrics.json").is_file():
        summary = json.loads((run / "metrics.json").read_text())
        labels, folds = summary["labels"], summary["folds"]
    else:
        docs = [json.loads(p.read_text()) for p in sorted(run.glob("fold_*/model.json"))]
        labels, folds = (docs[0]["labels"] if docs else []), [d["metrics"] for d in docs]
    return labels, [f for f in folds if not only or f["fold"] in only]


def summarise(per_fold: list[dict], labels: list[str]) -> dict:
    """Mean WA/UA/macro-F1 over folds and pooled predicted-class shares per condition (with
    several corpora, each corpus's UA over its test clips of all folds), and the mean and
    worst UA over conditions."""
    from ser_studio.model.evaluation.metrics import corpus_table

    table = {}
    for name in per_fold[0]:
        rows = [f[name] for f in per_fold]
        predicted = [p for r in rows for p in r["predicted"]]
        table[name] = {
            **{k: float(np.mean([r["metrics"][k] for r in rows])) for k in ("wa", "ua",
                                                                           "macro_f1")},
            "ua_per_fold": [r["metrics"]["ua"] for r in rows],
            "predicted_share": {c: predicted.count(c) / len(predicted) for c in labels},
        }
        corpora = corpus_table([r["metrics"] for r in rows])
        if corpora is not None:  # several corpora: each scored on its own, never only pooled
            table[name]["ua_per_corpus"] = {n: c["ua"] for n, c in corpora["corpora"].items()}
    uas = {name: row["ua"] for name, row in table.items()}
    worst = min(uas, key=uas.get)
    return {"conditions": table, "mean_ua": float(np.mean(list(uas.values()))),
            "worst_ua": uas[worst], "worst_condition": worst}


def format_table(summary: dict, labels: list[str]) -> str:
    """The printed table (markdown), then mean and worst UA."""
    head = "| condition | WA | UA | macro-F1 | predicted (" + " / ".join(labels) + ") |"
    corpora = list(next(iter(summary["conditions"].values())).get("ua_per_corpus") or {})
    head += "".join(f" UA {n} |" for n in corpora)
    lines = [head, "|---|---|---|---|---|" + "---|" * len(corpora)]
    for name, row in summary["conditions"].items():
        share = " / ".join(f"{100 * row['predicted_share'][c]:.0f}" for c in labels)
        lines.append(f"| {name} | {row['wa']:.3f} | {row['ua']:.3f} | {row['macro_f1']:.3f} "
                     f"| {share} % |" + "".join(f" {row['ua_per_corpus'].get(n, 0.0):.3f} |"
                                                for n in corpora))
    lines.append(f"\nmean UA over {len(summary['conditions'])} conditions: "
                 f"{summary['mean_ua']:.3f}; worst: {summary['worst_ua']:.3f} "
                 f"({summary['worst_condition']})")
    return "\n".join(lines)


def format_comparison(before: dict, after: dict) -> str:
    """UA per condition of two runs side by side (markdown): before, after, change."""
    lines = ["| condition | UA before | UA after | change |", "|---|---|---|---|"]
    for name, row in after["conditions"].items():
        old = before["conditions"].get(name, {}).get("ua")
        was = f"{old:.3f}" if old is not None else "—"
        change = f"{row['ua'] - old:+.3f}" if old is not None else "—"
        lines.append(f"| {name} | {was} | {row['ua']:.3f} | {change} |")
    lines.append(f"| **mean over conditions** | {before['mean_ua']:.3f} | {after['mean_ua']:.3f} "
                 f"| {after['mean_ua'] - before['mean_ua']:+.3f} |")
    lines.append(f"| **worst condition** | {before['worst_ua']:.3f} | {after['worst_ua']:.3f} "
                 f"| {after['worst_ua'] - before['worst_ua']:+.3f} |")
    return "\n".join(lines)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--run and the corpus options it was trained with (default: the shipped model's)."""
    parser.add_argument("--run", type=Path, default=REPO / "runs/default_model")
    parser.add_argument("--corpus", type=Path, action="append",
                        help="the run's corpus; repeat for a run on several, in the run's "
                             f"order (default: {DEFAULT_CORPUS})")
    parser.add_argument("--map", default="calm=neutral")
    parser.add_argument("--classes", nargs="+", default=["angry", "happy", "neutral", "sad"])


def run_corpus(args: argparse.Namespace):
    """The corpus (model.corpora.multi.CorpusSet: one or several) of ``add_run_arguments``'
    options."""
    from ser_studio.model.corpora.multi import load_corpora

    return load_corpora(args.corpus or [DEFAULT_CORPUS], [args.map],
                        args.classes)


def _score_task(report, run: Path, fold: dict, corpus, conditions: list[str],
                only_corpus: str | None) -> dict:
    """``score_fold`` as a Ray task (model.cluster.tasks: ``report`` is unused)."""
    return score_fold(run, fold, corpus, conditions, only_corpus)


def score_on_ray(args: argparse.Namespace, folds: list[dict], corpus) -> list[dict]:
    """Each fold's ``score_fold`` as a Ray task on the cluster ``args.ray`` names, in fold
    order."""
    import sys

    from ser_studio.model.cluster.options import cluster

    with cluster(args.ray, args.ray_cpus, args.ray_retries, args.ray_memory) as (info, pool):
        import ray

        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # no bench/ there
        log.warning("scoring %d folds on Ray cluster %s", len(folds), info.describe())
        refs = [pool.submit(f["fold"], _score_task, args.run, f, corpus, args.conditions,
                            args.score_corpus) for f in folds]
        return pool.wait(refs, lambda key, item: None)


def _folds_testing(folds: list[dict], corpus, name: str) -> list[dict]:
    """The folds that test clips of corpus ``name``; SystemExit naming the run's corpora when
    it is not one of them."""
    names = list(getattr(corpus, "names", ()))
    if name not in names:
        raise SystemExit(f"--score-corpus {name}: not a corpus of the run; its corpora: "
                         f"{', '.join(names)}")
    kept = []
    for fold in folds:
        if fold_test(fold, corpus, name):
            kept.append(fold)
        else:
            log.warning("fold %s tests no clip of %s: left out", fold["fold"], name)
    return kept


def _save_fold(folder: Path, fold: dict, labels: list[str], result: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"fold_{fold['fold']}.json").write_text(json.dumps(
        {"fold": fold["fold"], "labels": labels, "result": result}) + "\n")


def main(argv: list[str] | None = None) -> None:
    from ser_studio.model.augmentation.conditions import CONDITIONS
    from ser_studio.model.cluster.options import add_ray_options, wants_ray

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS),
                        help="a subset of the conditions (default: all)")
    parser.add_argument("--folds", type=int, nargs="+", help="score only these folds")
    parser.add_argument("--score-corpus", metavar="NAME",
                        help="score only the test clips of this corpus of the run's")
    parser.add_argument("--save-folds", type=Path, metavar="DIR",
                        help="write each scored fold's raw result to DIR/fold_K.json")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="FOLD_JSON",
                        help="summarise folds saved with --save-folds instead of scoring")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--compare", type=Path, metavar="JSON",
                        help="another run's --json output: print UA side by side")
    add_ray_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.merge:
        saved = [json.loads(path.read_text()) for path in args.merge]
        labels, per_fold = saved[0]["labels"], [f["result"] for f in saved]
    else:
        corpus = run_corpus(args)
        labels, folds = run_folds(args.run, args.folds)
        if args.score_corpus:
            folds = _folds_testing(folds, corpus, args.score_corpus)
        per_fold = score_on_ray(args, folds, corpus) if wants_ray(args.ray) else []
        for k, fold in enumerate(folds):
            if k == len(per_fold):
                per_fold.append(score_fold(args.run, fold, corpus, args.conditions,
                                           args.score_corpus))
            if args.save_folds:
                _save_fold(args.save_folds, fold, labels, per_fold[k])
    summary = summarise(per_fold, labels)
    scored = f" of {args.score_corpus}" if args.score_corpus else ""
    print(f"run: {args.run}; {len(per_fold)} folds, each on its own test speakers{scored}")
    print(format_table(summary, labels))
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), **summary}, indent=2) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        print(f"\nbefore: {before['run']}; after: {args.run}")
        print(format_comparison(before, summary))


if __name__ == "__main__":
    main()
