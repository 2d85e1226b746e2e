"""Candidate table of issue 20 item 5 (see README.md): ``python table.py [OUT] FE=LABEL ...``
reads run.sh's OUT folder (run-NAME/, eval-*.json), or without OUT the copies kept here
(runs/NAME/, evals/)."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
R = Path(sys.argv[1]) if len(sys.argv) > 1 and "=" not in sys.argv[1] else None
# today's frontend over R+N+K is the global-standardisation run of the standardisation study
KEPT = {"se": HERE.parent / "loco-norms-2026-12-07/run-global"}
CORPORA = ["ravdess-dev", "nemo-pl", "korean-emotts"]
SHORT = {"ravdess-dev": "R", "nemo-pl": "N", "korean-emotts": "K"}


def folds(run):
    p = (R / f"run-{run}" if R else KEPT.get(run, HERE / "runs" / run)) / "metrics.json"
    if not p.is_file():
        return {}
    return {f["held_out"]: f for f in json.loads(p.read_text())["folds"]}


def ev(name, adapt="none"):
    p = R / f"eval-{name}-{adapt}.json" if R else HERE / "evals" / f"eval-{name}-{adapt}.json"
    try:
        return json.loads(p.read_text())["ua"]
    except (OSError, ValueError, KeyError):
        return None


def ua(fold):
    return fold["metrics"]["ua"] if fold else None


def cross(fe):
    """{training set: {test corpus: UA}} for frontend key fe."""
    loco, rn, rk = folds(fe), folds(f"{fe}-RN"), folds(f"{fe}-RK")
    out = {}
    # R only: RN fold holding out N trains on R alone
    out["R"] = {"nemo-pl": ua(rn.get("nemo-pl")), "korean-emotts": ev(f"{fe}-R-on-korean-emotts")}
    out["K"] = {"ravdess-dev": ua(rk.get("ravdess-dev")), "nemo-pl": ev(f"{fe}-K-on-nemo-pl")}
    out["N"] = {"ravdess-dev": ua(rn.get("ravdess-dev")),
                "korean-emotts": ev(f"{fe}-N-on-korean-emotts")}
    out["R+N (LOCO within)"] = {"ravdess-dev": out["N"]["ravdess-dev"],
                                "nemo-pl": out["R"]["nemo-pl"],
                                "korean-emotts": ua(loco.get("korean-emotts"))}
    out["R+N+K (LOCO)"] = {c: ua(loco.get(c)) for c in CORPORA}
    out["R+N+K enrolment"] = {c: ev(f"{fe}-loco-{c}", "enrol") for c in CORPORA}
    unbalanced = folds(f"{fe}-none")
    if unbalanced:
        out["R+N+K (LOCO), no corpus balance"] = {c: ua(unbalanced.get(c)) for c in CORPORA}
    return out


def cell(v):
    return f"{v:.3f}" if v is not None else "–"


def main(frontends):
    print("| frontend | trained on | RAVDESS | nEMO | Korean | mean | worst |")
    print("|---|---|---|---|---|---|---|")
    for fe, label in frontends:
        for data, row in cross(fe).items():
            vals = [row.get(c) for c in CORPORA]
            got = [v for v in vals if v is not None]
            given = [c for c in CORPORA if c in row]
            full = len(got) == len(given) and got
            mean = cell(sum(got) / len(got)) if full else "–"
            worst = cell(min(got)) if full else "–"
            cells = [cell(row[c]) if c in row else "(trained)" for c in CORPORA]
            print(f"| {label} | {data} | " + " | ".join(cells) + f" | {mean} | {worst} |")


if __name__ == "__main__":
    main([tuple(a.split("=", 1)) for a in sys.argv[1:] if "=" in a])
