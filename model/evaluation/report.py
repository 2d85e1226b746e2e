"""``report.md`` of a cross-validation run folder.

The run summary (what the trainer writes to ``metrics.json`` and passes to
:func:`write_report`) is a JSON-able dict with this layout; keys marked optional may be absent::

    {
      "protocol": "leave-one-session-out" | "grouped-k-fold" | "leave-one-speaker-out"
                  | "leave-one-corpus-out",
      "corpus": {"path": str, "summary": Corpus.summary(),      # kind, utterances, labels, ...
                 "corpora": [{"name", "path"}, ...]},            # optional: several corpora
                                                                 # (path: the roots joined by
                                                                 # " + ")
      "configs": {"frontend": config_to_dict(FrontendConfig),
                  "model": config_to_dict(ModelConfig),          # of the final / last fold model
                  "train": config_to_dict(TrainConfig)},
      "labels": [str, ...],                                      # optional; else aggregate's
      "folds": [                                                 # finished folds only, in order
        {"fold": int,                                            # as in fold_<k>/ and events
         "test_speakers": [str, ...], "val_speakers": [str, ...],
         "train_speakers": [str, ...],
         "test_sessions": [str, ...],                            # optional (leave-one-session-out)
         "metrics": compute_metrics(...) on the fold's test speakers (with speakers, genders,
                    sessions),
         "best_epoch": int,                                      # epoch restored by early stopping
                                                                 # (an ensemble: the members' median)
         "member_best_epochs": [int, ...],                       # optional (ensembles)
         "member_val_speakers": [[str, ...], ...],               # optional (ensembles)
         "checkpoint": "fold_<k>/model.safetensors",             # relative to the run folder
         "history": [epoch rows, ...]},                          # optional (plots' history rows)
         "uncalibrated_metrics": compute_metrics(...),           # optional: speaker_norm
                                                                 # "speaker", tested with the
                                                                 # global statistics
        ...
      ],
      "folds_planned": [{"fold", "test_speakers", "val_speakers", "train_speakers"}, ...],
                                                                 # optional: every fold of the
                                                                 # protocol (a cancelled run
                                                                 # lists the ones not run)
      "aggregate": aggregate_folds([f["metrics"] for f in folds]) or None when no fold finished,
                                                                 # several corpora: with
                                                                 # per_corpus and corpus_mean
      "uncalibrated_aggregate": aggregate_folds of the folds' "uncalibrated_metrics",
                                                                 # optional: per-speaker
                                                                 # standardisation only (the
                                                                 # test without a profile)
      "plots": {"curves_fold<k>": "curves_fold<k>.png", "per_speaker": "per_speaker.png",
                "confusion": "confusion.png"},                   # name -> path relative to run dir
      "final_model": "model.safetensors" | None,                 # relative; None: not trained
      "cancelled": bool,
      "elapsed_s": float,                                        # optional
      "created": str,                                            # optional, ISO 8601 time
    }

Standard deviations are over folds with ddof=0 (see model.evaluation.metrics).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

REPORT_NAME = "report.md"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _pm(figure: dict | None) -> str:
    """"mean ± std" in percent of a {"mean", "std"} dict."""
    if not figure or figure.get("mean") is None:
        return "n/a"
    return f"{_pct(figure['mean'])} ± {_pct(figure['std'])}"


def _names(names: Sequence[str] | None, limit: int = 12) -> str:
    names = list(names or [])
    if not names:
        return "—"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _level_text(frontend: dict) -> str:
    """", high-pass at 60 Hz, loudness normalised to -23.0 LUFS (BS.1770), per-utterance band
    CMVN" or ""."""
    parts = []
    if frontend.get("highpass_hz"):
        parts.append(f"high-pass at {frontend['highpass_hz']:g} Hz (DC offset and rumble)")
    if frontend.get("loudness", "none") != "none":
        parts.append(f"loudness normalised to {frontend.get('target_lufs')} LUFS (BS.1770)")
    if frontend.get("band_norm", "none") != "none":
        parts.append(f"per-utterance band {frontend['band_norm'].upper()}")
    return "".join(f", {p}" for p in parts)


def _augmentation_text(summary: dict) -> str:
    """"; trained on K recording-chain variants per clip ..." when the run had them."""
    channel = summary.get("configs", {}).get("train", {}).get("channel") or {}
    if not channel.get("variants"):
        return ""
    return (f"; trained on {channel['variants']} recording-chain variants per clip (used with "
            f"probability {channel.get('prob')}; babble from training-side speakers only)")


def _header(summary: dict) -> list[str]:
    corpus = summary.get("corpus") or {}
    counts = corpus.get("summary") or {}
    folds = summary.get("folds") or []
    configs = summary.get("configs") or {}
    frontend, model = configs.get("frontend") or {}, configs.get("model") or {}
    lines = ["# Speech emotion recognition: cross-validation report", ""]
    if summary.get("cancelled"):
        note = "" if summary.get("final_model") else " The final model was not trained."
        lines += [f"**Cancelled**: {len(folds)} fold(s) finished and are summarised below."
                  + note, ""]
    lines += [
        f"- Corpus: `{corpus.get('path', 'unknown')}` ({counts.get('kind', 'unknown')}, "
        f"{counts.get('utterances', '?')} utterances, {len(counts.get('speakers', {}))} speakers)",
        *_corpora_lines(corpus),
        f"- Labels: {', '.join(_labels(summary)) or 'unknown'}",
        f"- Protocol: {summary.get('protocol', 'unknown')}, {len(folds)} fold(s) finished; "
        "validation speakers (for early stopping) come from the training side of each fold, "
        "test speakers are never seen in training or validation",
        f"- Frontend: {frontend.get('name', 'unknown')}"
        + (f" ({frontend.get('encoder')}, layers: {frontend.get('layer_mode')})"
           if frontend.get("name") == "hubert" else "")
        + _level_text(frontend) + _augmentation_text(summary),
        f"- Architecture: {model.get('arch', 'unknown')}"
        + (" + utterance-statistics branch" if model.get("stats_branch") else "")
        + (f", ensemble of {model['ensemble']} networks trained one by one"
           if model.get("ensemble", 1) > 1 else ""),
        f"- Final model: `{summary['final_model']}`" if summary.get("final_model")
        else "- Final model: none",
    ]
    norm = (configs.get("train") or {}).get("speaker_norm")
    if norm == "corpus":
        lines.append("- Standardisation: per corpus. Each training corpus is standardised by "
                     "its own speech's statistics; the results are **corpus-adapted, "
                     "unlabelled**: each test corpus standardised by the statistics of all of "
                     "its own test audio (no labels). The model expects calibration; "
                     "'Without calibration' below is the same folds with the global statistics")
    if norm == "speaker":
        lines.append("- Standardisation: per speaker. Training speakers are standardised by "
                     "their own speech's statistics; the results are **speaker-adapted, "
                     "unlabelled**: each test speaker standardised by the statistics of all of "
                     "their own test audio (no labels). The model expects calibration; "
                     "'Without calibration' below is the same folds with the global statistics")
    if summary.get("elapsed_s") is not None:
        lines.append(f"- Wall time: {summary['elapsed_s']:.0f} s")
    if summary.get("created"):
        lines.append(f"- Created: {summary['created']}")
    return lines + [""]


def _corpora_lines(corpus: dict) -> list[str]:
    """One indented line per corpus of a run on several (name, path, size), else []."""
    counts = {c.get("name"): c for c in (corpus.get("summary") or {}).get("corpora") or []}
    lines = []
    for part in corpus.get("corpora") or []:
        name, facts = part["name"], counts.get(part["name"], {})
        lines.append(f"  - `{name}`: `{part['path']}` ({facts.get('kind', '?')}, "
                     f"{facts.get('utterances', '?')} utterances, "
                     f"{len(facts.get('speakers') or {})} speakers, named {name}/ID)")
    return lines


def _labels(summary: dict) -> list[str]:
    if summary.get("labels"):
        return list(summary["labels"])
    return list((summary.get("aggregate") or {}).get("labels") or [])


def _protocol(summary: dict) -> list[str]:
    rows = []
    for f in summary.get("folds") or []:
        m = f.get("metrics") or {}
        test = _names(f.get("test_speakers"))
        if summary.get("protocol") == "leave-one-corpus-out":
            test = f"all of `{f.get('held_out')}` ({len(f.get('test_speakers') or [])} speakers)"
        if f.get("test_sessions"):
            test += f" (sessions {', '.join(f['test_sessions'])})"
        val = (" / ".join(_names(v) for v in f["member_val_speakers"])
               if f.get("member_val_speakers") else _names(f.get("val_speakers")))
        best = (f"{f.get('best_epoch', '?')} (members " + ", ".join(
            str(e) for e in f["member_best_epochs"]) + ")"
                if f.get("member_best_epochs") else f.get("best_epoch", "?"))
        rows.append([f.get("fold", "?"), test, val,
                     len(f.get("train_speakers") or []), best,
                     m.get("n", "?"), _pct(m.get("wa")), _pct(m.get("ua")),
                     _pct(m.get("macro_f1")), f"`{f.get('checkpoint', '')}`"])
    done = {f.get("fold") for f in summary.get("folds") or []}
    skipped = [f for f in summary.get("folds_planned") or [] if f.get("fold") not in done]
    lines = ["## Folds (speakers tested in each fold)", ""]
    if any(f.get("member_val_speakers") for f in summary.get("folds") or []):
        lines += ["An ensemble: each member validates on its own speakers from the fold's "
                  "training side (listed member by member) and stops at its own best epoch.",
                  ""]
    if rows:
        lines += _table(["fold", "test speakers", "validation speakers", "training speakers",
                         "best epoch", "n", "WA %", "UA %", "macro-F1 %", "checkpoint"], rows)
    else:
        lines += ["No fold finished.", ""]
    if skipped:
        lines += ["Folds planned but not run: " + "; ".join(
            f"fold {f.get('fold', '?')} (test speakers {_names(f.get('test_speakers'))})"
            for f in skipped) + ".", ""]
    return lines


def _results(agg: dict, per_corpus: Sequence[str] = ()) -> list[str]:
    """The results tables: over folds, ``per_corpus`` lines (``_per_corpus``), per gender and
    per session."""
    lines = ["## Results", "",
             f"Mean ± std over {agg['folds']} fold(s) (population std, ddof=0), in percent; "
             "pooled: computed from the confusion matrix summed over folds.", ""]
    pooled = agg.get("pooled") or {}
    lines += _table(["metric", "mean ± std over folds", "per fold", "pooled"], [
        [name, _pm(agg[key]), ", ".join(_pct(v) for v in agg[key].get("values", [])),
         _pct(pooled.get(key))]
        for name, key in (("WA (accuracy)", "wa"), ("UA (mean class recall)", "ua"),
                          ("macro-F1", "macro_f1"))
    ]) + list(per_corpus)
    for kind, title in (("gender", "Per gender"), ("session", "Per session")):
        groups = agg.get(f"per_{kind}") or {}
        if not groups:
            continue
        spread = agg.get(f"{kind}_spread") or {}
        lines += [f"### {title}", "",
                  f"Spread across {kind}s (std of the means): accuracy "
                  f"{_pct(spread.get('accuracy_std'))}, F1 {_pct(spread.get('f1_std'))}.", ""]
        lines += _table([kind, "n", "folds", "accuracy %", "macro-F1 %"], [
            [name, g["n"], g["folds"], _pm(g["accuracy"]), _pm(g["f1"])]
            for name, g in groups.items()])
    return lines


def _per_corpus(summary: dict) -> list[str]:
    """Each corpus's WA/UA on its own, and their mean: under leave-one-corpus-out per held-out
    corpus (a model trained on the others), under speaker CV each corpus's test clips of all
    folds. [] for a run on one corpus."""
    agg = summary.get("aggregate") or {}
    corpora = agg.get("per_corpus") or {}
    if not corpora:
        return []
    mean = agg.get("corpus_mean") or {}
    loco = summary.get("protocol") == "leave-one-corpus-out"
    if loco:
        lines = ["### Per held-out corpus (leave one corpus out)", "",
                 "Each corpus tested by a model trained on the other corpora only (its speakers "
                 "never in training or validation). Mean: each corpus counts once.", ""]
        trained = {f.get("held_out"): f for f in summary.get("folds") or []}
        rows = [[name, ", ".join(sorted({s.split("/", 1)[0] for s in trained.get(
                    name, {}).get("train_speakers") or []})) or "?", c["n"], _pct(c["wa"]),
                 _pct(c["ua"]), _pct(c["macro_f1"])] for name, c in corpora.items()]
        head = ["held-out corpus", "trained on", "n", "WA %", "UA %", "macro-F1 %"]
        rows.append(["**mean**", "", "", _pct(mean.get("wa")), _pct(mean.get("ua")),
                     _pct(mean.get("macro_f1"))])
    else:
        lines = ["### Per corpus (pooled speaker cross-validation)", "",
                 "Each corpus's test clips of every fold scored on their own (confusions "
                 "summed over folds). Mean: each corpus counts once.", ""]
        rows = [[name, c["n"], c["folds"], _pct(c["wa"]), _pct(c["ua"]), _pct(c["macro_f1"])]
                for name, c in corpora.items()]
        head = ["corpus", "n", "folds", "WA %", "UA %", "macro-F1 %"]
        rows.append(["**mean**", "", "", _pct(mean.get("wa")), _pct(mean.get("ua")),
                     _pct(mean.get("macro_f1"))])
    return lines + _table(head, rows)


def _uncalibrated(agg: dict | None) -> list[str]:
    """The per-speaker-standardised model tested without a speaker profile."""
    if not agg:
        return []
    lines = ["### Without calibration (global statistics)", ""]
    return lines + _table(["metric", "mean ± std over folds", "per fold"], [
        [name, _pm(agg[key]), ", ".join(_pct(v) for v in agg[key].get("values", []))]
        for name, key in (("WA (accuracy)", "wa"), ("UA (mean class recall)", "ua"),
                          ("macro-F1", "macro_f1"))])


def _speakers_and_confusion(agg: dict, folds: list[dict]) -> list[str]:
    """Per-speaker table (fold named as in the summary's folds) and the summed confusion."""
    lines = []
    tested_in = {s: f.get("fold", i) for i, f in enumerate(folds)
                 for s in f.get("test_speakers") or []}
    speakers = agg.get("per_speaker") or {}
    if speakers:
        spread = agg.get("speaker_spread") or {}
        lines += ["### Per speaker (each tested in one fold)", "",
                  f"Spread across speakers (std): accuracy {_pct(spread.get('accuracy_std'))}, "
                  f"F1 {_pct(spread.get('f1_std'))}.", ""]
        lines += _table(["speaker", "fold", "n", "accuracy %", "macro-F1 %"], [
            [name, tested_in.get(name, s.get("fold", "?")), s["n"], _pct(s["accuracy"]),
             _pct(s["f1"])]
            for name, s in speakers.items()])
    labels = agg.get("labels") or []
    if labels and agg.get("confusion"):
        lines += ["### Confusion matrix (summed over folds; rows true, columns predicted)", ""]
        lines += _table(["true \\ predicted"] + labels,
                        [[label] + list(row) for label, row in zip(labels, agg["confusion"])])
    return lines


def _plot_caption(name: str) -> str:
    if name.startswith("curves_fold"):
        return f"Training curves, fold {name[len('curves_fold'):]}"
    return {"per_speaker": "Per-speaker accuracy and F1",
            "confusion": "Confusion matrix (summed over folds)"}.get(name, name.replace("_", " "))


def _plots(run_dir: Path, plots: dict[str, str]) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    order = sorted(plots, key=lambda n: (n.startswith("curves"), len(n), n))  # fold2 < fold10
    for name in order:
        rel = Path(plots[name])
        if rel.is_absolute():
            rel = Path(rel).relative_to(run_dir) if rel.is_relative_to(run_dir) else rel
        if not (run_dir / rel).exists():
            log.warning("plot %s is listed in the summary but %s does not exist", name, rel)
        caption = _plot_caption(name)
        lines += [f"### {caption}", "", f"![{caption}]({rel.as_posix()})", ""]
    return lines


def _configs(configs: dict) -> list[str]:
    if not configs:
        return []
    lines = ["## Configuration", ""]
    for name in ("frontend", "model", "train"):
        if name in configs:
            lines += [f"### {name}", "", "```json", json.dumps(configs[name], indent=2), "```", ""]
    return lines


def render_report(run_dir: Path, summary: dict) -> str:
    """The Markdown text of the report (see the module docstring for ``summary``)."""
    lines = _header(summary) + _protocol(summary)
    agg = summary.get("aggregate")
    if agg:
        lines += _results(agg, _per_corpus(summary))
        lines += _uncalibrated(summary.get("uncalibrated_aggregate"))
        lines += _speakers_and_confusion(agg, summary.get("folds") or [])
    lines += _plots(Path(run_dir), summary.get("plots") or {})
    lines += _configs(summary.get("configs") or {})
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir: str | Path, summary: dict) -> Path:
    """Write ``run_dir/report.md`` from a run summary; returns its path.

    Plots are linked relative to the run folder, so the folder can be moved or zipped.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / REPORT_NAME
    path.write_text(render_report(run_dir, summary), encoding="utf-8")
    log.info("report written to %s", path)
    return path
