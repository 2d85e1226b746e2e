"""Classification metrics of one evaluation and their summary over cross-validation folds.

Definitions (all from scikit-learn, ``zero_division=0``):
- WA, weighted accuracy: the fraction of utterances classified correctly (``accuracy_score``).
- UA, unweighted accuracy: the mean of the per-class recalls over the classes present in
  ``y_true`` (``recall_score(average="macro")`` on those classes; equal to
  ``balanced_accuracy_score``).
- macro-F1: the mean F1 over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's
  default label set), so a class that never occurs in a group and is never predicted there does
  not count as an F1 of zero.
- confusion: ``confusion_matrix`` with rows = true class, columns = predicted class, both in
  ``labels`` order, as a list of lists of ints.
- per group (speaker, gender, session): accuracy and macro-F1 (same label rule as above) of the
  utterances of that group, and ``n``. Group names that are empty strings mean "unknown" and are
  left out. ``<group>_spread`` is the standard deviation across groups (``np.std``, ddof=0),
  ``None`` when there is no group.

- per corpus (a run on several corpora): each corpus's clips scored on their own, WA, UA,
  macro-F1, n and confusion, so one corpus's figure is never hidden in a pooled mean.

Over folds (:func:`aggregate_folds`), every figure is reported as mean +- std over folds with the
population standard deviation (``np.std``, ddof=0: the folds are the whole population of the
cross-validation, not a sample); a single fold has std 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

GROUP_KINDS = ("speaker", "gender", "session")


def _check_labels(values: Sequence[str], labels: Sequence[str], what: str) -> None:
    unknown = sorted(set(values) - set(labels))
    if unknown:
        raise ValueError(f"{what} holds labels {unknown} not in labels = {list(labels)}")


def _present(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The labels (in ``labels`` order) that occur in y_true or y_pred."""
    seen = set(y_true) | set(y_pred)
    return [name for name in labels if name in seen]


def _macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> float:
    present = _present(y_true, y_pred, labels)
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def _unweighted_accuracy(y_true: Sequence[str], y_pred: Sequence[str],
                         labels: Sequence[str]) -> float:
    present = [name for name in labels if name in set(y_true)]
    return float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def _per_class(y_true: Sequence[str], y_pred: Sequence[str], confusion: np.ndarray,
               labels: Sequence[str]) -> dict[str, dict]:
    """Recall, F1 and support of every label (zero when the label never occurs)."""
    f1 = f1_score(y_true, y_pred, labels=list(labels), average=None, zero_division=0)
    support = confusion.sum(axis=1)
    out = {}
    for i, name in enumerate(labels):
        recall = confusion[i, i] / support[i] if support[i] else 0.0
        out[name] = {"recall": float(recall), "f1": float(f1[i]), "support": int(support[i])}
    return out


def _groups(y_true: Sequence[str], y_pred: Sequence[str], names: Sequence[str] | None,
            labels: Sequence[str], kind: str) -> tuple[dict, dict]:
    """Per-group accuracy/F1/n and their spread (std across groups, ddof=0)."""
    spread = {"accuracy_std": None, "f1_std": None}
    if names is None:
        return {}, spread
    if len(names) != len(y_true):
        raise ValueError(f"{kind}s has {len(names)} entries but there are {len(y_true)} labels")
    per: dict[str, dict] = {}
    names_arr = np.asarray(names, dtype=object)
    t_arr, p_arr = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    for name in sorted({str(n) for n in names if str(n)}):
        mask = names_arr == name
        t, p = list(t_arr[mask]), list(p_arr[mask])
        per[name] = {"accuracy": float(accuracy_score(t, p)), "f1": _macro_f1(t, p, labels),
                     "n": int(mask.sum())}
    if per:
        spread = {"accuracy_std": float(np.std([g["accuracy"] for g in per.values()])),
                  "f1_std": float(np.std([g["f1"] for g in per.values()]))}
    return per, spread


def _per_corpus(y_true: list[str], y_pred: list[str], corpora: Sequence[str] | None,
                labels: list[str]) -> dict[str, dict]:
    """Corpus name -> {"wa", "ua", "macro_f1", "n", "confusion"} of that corpus's clips, in
    first-seen order; {} without names (or only empty ones)."""
    if corpora is None:
        return {}
    if len(corpora) != len(y_true):
        raise ValueError(f"corpora has {len(corpora)} entries but there are {len(y_true)} "
                         "labels")
    out = {}
    for name in dict.fromkeys(str(c) for c in corpora if str(c)):
        rows = [i for i, c in enumerate(corpora) if str(c) == name]
        confusion = confusion_matrix([y_true[i] for i in rows], [y_pred[i] for i in rows],
                                     labels=labels)
        out[name] = {**metrics_from_confusion(confusion), "n": len(rows),
                     "confusion": confusion.astype(int).tolist()}
    return out


def compute_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], *,
                    speakers: Sequence[str] | None = None, genders: Sequence[str] | None = None,
                    sessions: Sequence[str] | None = None,
                    corpora: Sequence[str] | None = None) -> dict:
    """Metrics of one evaluation (see the module docstring for the definitions).

    y_true, y_pred: one label name per utterance; labels: the model's classes (order of the
    confusion matrix). speakers/genders/sessions: optional group name per utterance.
    Returns a JSON-able dict with keys wa, ua, macro_f1, n, labels, confusion, per_class,
    per_speaker, per_gender, per_session ({name: {"accuracy", "f1", "n"}}) and
    speaker_spread, gender_spread, session_spread ({"accuracy_std", "f1_std"}).
    Raises ValueError on empty input, unequal lengths or labels not in ``labels``.
    """
    y_true, y_pred, labels = [str(y) for y in y_true], [str(y) for y in y_pred], list(labels)
    if not y_true:
        raise ValueError("no utterances to score")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    _check_labels(y_true, labels, "y_true")
    _check_labels(y_pred, labels, "y_pred")
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    out = {
        "wa": float(accuracy_score(y_true, y_pred)),
        "ua": _unweighted_accuracy(y_true, y_pred, labels),
        "macro_f1": _macro_f1(y_true, y_pred, labels),
        "n": len(y_true),
        "labels": labels,
        "confusion": confusion.astype(int).tolist(),
        "per_class": _per_class(y_true, y_pred, confusion, labels),
    }
    for kind, names in zip(GROUP_KINDS, (speakers, genders, sessions)):
        out[f"per_{kind}"], out[f"{kind}_spread"] = _groups(y_true, y_pred, names, labels, kind)
    if corpora is not None:
        out["per_corpus"] = _per_corpus(y_true, y_pred, corpora, labels)
    return out


def corpus_table(fold_metrics: Sequence[dict]) -> dict | None:
    """Per-corpus figures over folds: each corpus's test clips of every fold scored together
    (confusions summed), {"corpora": {name: {"wa", "ua", "macro_f1", "n", "folds"}}, "mean":
    {"wa", "ua", "macro_f1"} over corpora (each corpus counts once)}; None when the folds carry
    no per_corpus figures (a run on one untagged corpus)."""
    sums: dict[str, dict] = {}
    for m in fold_metrics:
        for name, c in (m.get("per_corpus") or {}).items():
            entry = sums.setdefault(name, {"confusion": None, "n": 0, "folds": 0})
            cm = np.asarray(c["confusion"], dtype=int)
            entry["confusion"] = cm if entry["confusion"] is None else entry["confusion"] + cm
            entry["n"] += int(c["n"])
            entry["folds"] += 1
    if not sums:
        return None
    corpora = {name: {**metrics_from_confusion(e["confusion"]), "n": e["n"],
                      "folds": e["folds"]} for name, e in sums.items()}
    mean = {k: float(np.mean([c[k] for c in corpora.values()])) for k in ("wa", "ua",
                                                                           "macro_f1")}
    return {"corpora": corpora, "mean": mean}


def mean_std(values: Sequence[float]) -> dict:
    """{"mean", "std"} of ``values`` (std with ddof=0); None for both when empty."""
    if len(values) == 0:
        return {"mean": None, "std": None}
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std())}


def metrics_from_confusion(confusion: Sequence[Sequence[int]]) -> dict:
    """WA, UA and macro-F1 of a (summed) confusion matrix, rows = true.

    UA averages recall over the rows with support; macro-F1 averages over the classes that
    occur as truth or prediction (the rule of :func:`compute_metrics`).
    """
    cm = np.asarray(confusion, dtype=float)
    total, diag = cm.sum(), np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    rows = support > 0
    present = rows | (predicted > 0)
    denom = support + predicted
    f1 = np.divide(2 * diag, denom, out=np.zeros_like(diag), where=denom > 0)
    return {
        "wa": float(diag.sum() / total) if total else 0.0,
        "ua": float((diag[rows] / support[rows]).mean()) if rows.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
    }


def _merge_speakers(fold_metrics: Sequence[dict], fold_ids: Sequence) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for k, metrics in zip(fold_ids, fold_metrics):
        for name, figures in metrics.get("per_speaker", {}).items():
            if name in merged:
                raise ValueError(f"speaker {name!r} is tested in folds {merged[name]['fold']} "
                                 f"and {k}; folds must be speaker-disjoint")
            merged[name] = {**figures, "fold": k}
    return dict(sorted(merged.items()))


def _aggregate_groups(fold_metrics: Sequence[dict], kind: str) -> tuple[dict, dict]:
    """Per-group mean +- std over the folds that hold the group, and the spread across groups
    of the per-group means."""
    names = sorted({n for m in fold_metrics for n in m.get(f"per_{kind}", {})})
    per = {}
    for name in names:
        rows = [m[f"per_{kind}"][name] for m in fold_metrics if name in m.get(f"per_{kind}", {})]
        per[name] = {"accuracy": mean_std([r["accuracy"] for r in rows]),
                     "f1": mean_std([r["f1"] for r in rows]),
                     "n": int(sum(r["n"] for r in rows)), "folds": len(rows)}
    spread = {"accuracy_std": None, "f1_std": None}
    if per:
        spread = {"accuracy_std": float(np.std([g["accuracy"]["mean"] for g in per.values()])),
                  "f1_std": float(np.std([g["f1"]["mean"] for g in per.values()]))}
    return per, spread


def aggregate_folds(fold_metrics: Sequence[dict], fold_ids: Sequence | None = None) -> dict:
    """Summary over cross-validation folds of :func:`compute_metrics` outputs.

    Returns: folds (K); wa, ua, macro_f1 as {"mean", "std", "values": per fold}; n (total);
    labels; confusion (summed over folds); pooled ({"wa", "ua", "macro_f1"} of the summed
    confusion); per_speaker (merged: each speaker is tested in exactly one fold, its entry gains
    "fold": ``fold_ids[i]``, default the position i in ``fold_metrics``; a speaker in two folds
    raises ValueError); speaker_spread (std across all speakers);
    per_gender / per_session ({name: {"accuracy": {"mean","std"}, "f1": {...}, "n", "folds"}},
    mean +- std over the folds holding that group) with gender_spread / session_spread (std
    across groups of the per-group means). All stds use ddof=0. Folds with per_corpus
    figures add per_corpus ({name: {"wa", "ua", "macro_f1", "n", "folds"}}, each corpus's test
    clips of all folds together) and corpus_mean (their mean, each corpus once): under
    leave-one-corpus-out each corpus is one fold's test set.
    """
    if not fold_metrics:
        raise ValueError("no folds to aggregate")
    fold_ids = list(range(len(fold_metrics))) if fold_ids is None else list(fold_ids)
    if len(fold_ids) != len(fold_metrics):
        raise ValueError(f"{len(fold_ids)} fold ids for {len(fold_metrics)} folds")
    labels = list(fold_metrics[0]["labels"])
    for k, m in enumerate(fold_metrics):
        if list(m["labels"]) != labels:
            raise ValueError(f"fold {k} has labels {m['labels']}, fold 0 has {labels}")
    confusion = np.sum([np.asarray(m["confusion"], dtype=int) for m in fold_metrics], axis=0)
    out: dict = {"folds": len(fold_metrics)}
    for key in ("wa", "ua", "macro_f1"):
        values = [float(m[key]) for m in fold_metrics]
        out[key] = {**mean_std(values), "values": values}
    out.update(n=int(sum(m["n"] for m in fold_metrics)), labels=labels,
               confusion=confusion.tolist(), pooled=metrics_from_confusion(confusion))
    speakers = _merge_speakers(fold_metrics, fold_ids)
    out["per_speaker"] = speakers
    out["speaker_spread"] = {"accuracy_std": None, "f1_std": None}
    if speakers:
        out["speaker_spread"] = {
            "accuracy_std": float(np.std([s["accuracy"] for s in speakers.values()])),
            "f1_std": float(np.std([s["f1"] for s in speakers.values()]))}
    for kind in ("gender", "session"):
        out[f"per_{kind}"], out[f"{kind}_spread"] = _aggregate_groups(fold_metrics, kind)
    table = corpus_table(fold_metrics)
    if table is not None:
        out["per_corpus"], out["corpus_mean"] = table["corpora"], table["mean"]
    return out
