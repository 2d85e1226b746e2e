"""Ablation table: the same speaker-independent folds for each variant, side by side.

Each variant is one ``python main.py train`` run (same corpus, recipe, folds and seed; only the
named switches differ), so the table is reproducible from the command line alone. The first
six variants are single networks (``--ensemble 1``) without the utterance-statistics branch
and without the recording-level augmentation, so each row isolates one part of the design.
The last three add, in turn, the statistics branch, the level augmentation and the ensemble
of 5 (the last row is the RAVDESS recipe of the model shipped until 2026-12-07, the default
``--recipe``):

    python -m bench.ablation --corpus ../shared/data/ravdess-dev \
        --recipe bench/results/highpass-2026-12-07/recipe_ravdess.json --out runs/ablation --jobs 2

Prints a markdown table of WA / UA / macro-F1 (mean +- std over folds) and writes it to
OUT/ablation.md. A variant whose run folder already holds metrics.json is not run again.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("ablation")

# name -> extra train options; all share the recipe and the corpus options
SINGLE = ["--ensemble", "1", "--no-stats-branch", "--no-level-augment"]
RAVDESS_RECIPE = "bench/results/highpass-2026-12-07/recipe_ravdess.json"
VARIANTS = {
    "baseline": ["--arch", "baseline", *SINGLE],
    "enhanced": ["--arch", "enhanced", *SINGLE],
    "enhanced, no AdaIN": ["--arch", "enhanced", "--no-adain", *SINGLE],
    "enhanced, no speaker adversary": ["--arch", "enhanced", "--no-adversary", *SINGLE],
    "enhanced, no self-attention": ["--arch", "enhanced", "--no-self-attention", *SINGLE],
    "enhanced, no augmentation": ["--arch", "enhanced", "--no-augment", *SINGLE],
    "baseline + statistics branch": ["--arch", "baseline", "--ensemble", "1",
                                     "--stats-branch", "--no-level-augment"],
    "baseline + statistics branch + level augmentation": ["--arch", "baseline", "--ensemble",
                                                          "1", "--stats-branch"],
    "baseline + statistics branch + level augmentation, ensemble of 5": [
        "--arch", "baseline", "--ensemble", "5", "--stats-branch"],
}
RAVDESS_FOUR = ["--map", "calm=neutral", "--classes", "angry", "happy", "neutral", "sad"]


def slug(name: str) -> str:
    """A folder name for a variant."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def run_variant(name: str, args: argparse.Namespace) -> dict:
    """Run one variant's cross-validation (unless already done); returns its metrics.json."""
    out = args.out / slug(name)
    metrics = out / "metrics.json"
    if not metrics.exists():
        cmd = [sys.executable, str(REPO / "main.py"), "train", "--corpus", str(args.corpus),
               "--config", str(args.recipe), "--folds", str(args.folds), "--no-final",
               "--out", str(out), *RAVDESS_FOUR, *VARIANTS[name]]
        if args.cache:
            cmd += ["--cache", str(args.cache)]
        log.info("running %s: %s", name, " ".join(cmd))
        with open(args.out / f"{slug(name)}.log", "w") as stderr:
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=stderr)
    return json.loads(metrics.read_text())


def table(results: dict[str, dict]) -> str:
    """Markdown table of WA / UA / macro-F1 mean +- std and the per-fold UA."""
    lines = ["| variant | WA | UA | macro-F1 | UA per fold |", "|---|---|---|---|---|"]
    for name, m in results.items():
        agg = m["aggregate"]
        cells = [f"{agg[k]['mean']:.3f} ± {agg[k]['std']:.3f}" for k in ("wa", "ua", "macro_f1")]
        folds = " / ".join(f"{v:.2f}" for v in agg["ua"]["values"])
        lines.append(f"| {name} | {' | '.join(cells)} | {folds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/ravdess-dev")
    parser.add_argument("--recipe", type=Path, default=REPO / RAVDESS_RECIPE)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "runs/ablation")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="variants run at once")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="a subset of variants")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = dict(zip(names, pool.map(lambda n: run_variant(n, args), names)))
    protocol = next(iter(done.values()))
    header = (f"Protocol: {protocol['protocol']}, {len(protocol['folds'])} folds, test speakers per "
              "fold: " + "; ".join(", ".join(f["test_speakers"]) for f in protocol["folds"]))
    text = header + "\n\n" + table(done) + "\n"
    (args.out / "ablation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
