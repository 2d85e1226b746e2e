import json
from pathlib import Path
R = Path("/tmp/loco")
CORPORA = ["ravdess-dev", "nemo-pl", "korean-emotts"]
rows = []
def run_fig(norm, key):
    m = json.loads((R / f"run-{norm}/metrics.json").read_text())
    return {f["held_out"]: f[key]["ua"] for f in m["folds"] if key in f}
def eval_fig(norm, adapt):
    out = {}
    for c in CORPORA:
        p = R / f"eval-{norm}-{c}-{adapt}.json"
        try:
            out[c] = json.loads(p.read_text())["ua"]
        except (OSError, ValueError, KeyError):
            pass
    return out
plan = [("global", "plain (training statistics)", run_fig("global", "metrics")),
        ("global", "speaker-adapted, all their audio", eval_fig("global", "speaker")),
        ("global", "enrolment, first 10 s of speech", eval_fig("global", "enrol")),
        ("corpus", "corpus-adapted, all its test audio", run_fig("corpus", "metrics")),
        ("corpus", "plain (training statistics)", run_fig("corpus", "uncalibrated_metrics")),
        ("corpus", "speaker-adapted, all their audio", eval_fig("corpus", "speaker")),
        ("corpus", "enrolment, first 10 s of speech", eval_fig("corpus", "enrol")),
        ("speaker", "speaker-adapted, all their audio", run_fig("speaker", "metrics")),
        ("speaker", "plain (training statistics)", run_fig("speaker", "uncalibrated_metrics")),
        ("speaker", "enrolment, first 10 s of speech", eval_fig("speaker", "enrol"))]
print("| training standardisation | test protocol | RAVDESS | nEMO | Korean | mean | worst |")
print("|---|---|---|---|---|---|---|")
for norm, proto, fig in plan:
    vals = [fig.get(c) for c in CORPORA]
    cells = [f"{v:.3f}" if v is not None else "–" for v in vals]
    got = [v for v in vals if v is not None]
    mean = f"{sum(got)/len(got):.3f}" if len(got) == 3 else "–"
    worst = f"{min(got):.3f}" if len(got) == 3 else "–"
    print(f"| {norm} | {proto} | " + " | ".join(cells) + f" | {mean} | {worst} |")
