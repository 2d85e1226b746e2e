"""Metrics against values computed by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ser_studio.model.evaluation.metrics import (aggregate_folds, compute_metrics, mean_std,
                                                 metrics_from_confusion)

LABELS = ["angry", "happy", "neutral", "sad"]
A, H, N, S = LABELS
# Ten utterances: speaker s1 holds the first five, s2 the last five.
Y_TRUE = [A, A, A, H, H, N, N, N, N, S]
Y_PRED = [A, A, H, H, N, N, N, N, S, S]
SPEAKERS = ["s1"] * 5 + ["s2"] * 5
GENDERS = ["F"] * 5 + ["M"] * 4 + [""]       # "" = unknown, left out
SESSIONS = ["Ses01"] * 10


def test_overall_figures_match_hand_computation():
    m = compute_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["wa"] == pytest.approx(7 / 10)
    # recalls 2/3, 1/2, 3/4, 1/1
    assert m["ua"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4 + 1) / 4)
    # F1: angry 0.8, happy 0.5, neutral 0.75, sad 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.75 + 2 / 3) / 4)
    assert m["n"] == 10 and m["labels"] == LABELS
    assert m["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 3, 1], [0, 0, 0, 1]]
    assert m["per_class"][S] == {"recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_speaker"] == {} and m["speaker_spread"] == {"accuracy_std": None, "f1_std": None}
    json.dumps(m)  # JSON-able


def test_per_group_figures_and_spread():
    m = compute_metrics(Y_TRUE, Y_PRED, LABELS, speakers=SPEAKERS, genders=GENDERS,
                        sessions=SESSIONS)
    s1, s2 = m["per_speaker"]["s1"], m["per_speaker"]["s2"]
    assert (s1["accuracy"], s1["n"]) == (pytest.approx(0.6), 5)
    # s1 labels present: angry 0.8, happy 0.5, neutral (predicted once, never true) 0
    assert s1["f1"] == pytest.approx(1.3 / 3)
    # s2: neutral 6/7, sad 2/3
    assert s2["accuracy"] == pytest.approx(0.8)
    assert s2["f1"] == pytest.approx((6 / 7 + 2 / 3) / 2)
    assert m["speaker_spread"]["accuracy_std"] == pytest.approx(0.1)
    assert m["speaker_spread"]["f1_std"] == pytest.approx(((6 / 7 + 2 / 3) / 2 - 1.3 / 3) / 2)
    assert sorted(m["per_gender"]) == ["F", "M"]          # the unknown gender is left out
    assert m["per_gender"]["M"] == {"accuracy": 0.75, "f1": pytest.approx((6 / 7) / 2), "n": 4}
    assert m["per_session"]["Ses01"]["accuracy"] == pytest.approx(0.7)
    assert m["session_spread"] == {"accuracy_std": 0.0, "f1_std": 0.0}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_ua_equals_balanced_accuracy_when_a_class_is_never_true():
    from sklearn.metrics import balanced_accuracy_score

    y_true, y_pred = [A, A, N, N], [A, S, N, N]
    m = compute_metrics(y_true, y_pred, LABELS)
    assert m["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred)) == 0.75
    # macro-F1 over angry, neutral, sad (happy neither true nor predicted)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


@pytest.mark.parametrize("y_true,y_pred,message", [
    ([], [], "no utterances"),
    ([A, H], [A], "predictions"),
    ([A, "bored"], [A, A], "bored"),
    ([A, H], [A, "bored"], "bored"),
])
def test_bad_input_is_refused(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(y_true, y_pred, LABELS)


def test_group_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="speakers"):
        compute_metrics(Y_TRUE, Y_PRED, LABELS, speakers=["s1"])


def _two_folds():
    f0 = compute_metrics(Y_TRUE[:5], Y_PRED[:5], LABELS, speakers=SPEAKERS[:5],
                         genders=GENDERS[:5], sessions=SESSIONS[:5])
    f1 = compute_metrics(Y_TRUE[5:], Y_PRED[5:], LABELS, speakers=SPEAKERS[5:],
                         genders=GENDERS[5:], sessions=SESSIONS[5:])
    return f0, f1


def test_aggregate_folds_mean_std_sum_and_merge():
    f0, f1 = _two_folds()
    agg = aggregate_folds([f0, f1])
    assert agg["folds"] == 2 and agg["n"] == 10 and agg["labels"] == LABELS
    assert agg["wa"]["values"] == [0.6, 0.8]
    assert agg["wa"]["mean"] == pytest.approx(0.7) and agg["wa"]["std"] == pytest.approx(0.1)
    whole = compute_metrics(Y_TRUE, Y_PRED, LABELS)
    assert agg["confusion"] == whole["confusion"]
    for key in ("wa", "ua", "macro_f1"):
        assert agg["pooled"][key] == pytest.approx(whole[key])
    assert agg["per_speaker"]["s1"]["fold"] == 0 and agg["per_speaker"]["s2"]["fold"] == 1
    named = aggregate_folds([f0, f1], fold_ids=[1, 2])
    assert named["per_speaker"]["s1"]["fold"] == 1 and named["per_speaker"]["s2"]["fold"] == 2
    with pytest.raises(ValueError, match="fold ids"):
        aggregate_folds([f0, f1], fold_ids=[1])
    assert agg["speaker_spread"]["accuracy_std"] == pytest.approx(0.1)
    # Ses01 is in both folds: mean +- std over them
    ses = agg["per_session"]["Ses01"]
    assert ses["accuracy"]["mean"] == pytest.approx(0.7)
    assert ses["accuracy"]["std"] == pytest.approx(0.1)
    assert ses["n"] == 10 and ses["folds"] == 2
    assert agg["per_gender"]["M"]["folds"] == 1 and agg["per_gender"]["M"]["accuracy"]["std"] == 0.0
    json.dumps(agg)


def test_aggregate_single_fold_has_zero_std():
    f0, _ = _two_folds()
    agg = aggregate_folds([f0])
    assert agg["ua"]["std"] == 0.0 and agg["ua"]["mean"] == pytest.approx(f0["ua"])


def test_aggregate_refuses_overlapping_speakers_and_mismatched_labels():
    f0, f1 = _two_folds()
    with pytest.raises(ValueError, match="s1"):
        aggregate_folds([f0, f0])
    other = compute_metrics([A], [A], [A, H])
    with pytest.raises(ValueError, match="labels"):
        aggregate_folds([f1, other])
    with pytest.raises(ValueError, match="no folds"):
        aggregate_folds([])


def test_helpers():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": 1.0}
    assert mean_std([]) == {"mean": None, "std": None}
    assert metrics_from_confusion([[0, 0], [0, 0]]) == {"wa": 0.0, "ua": 0.0, "macro_f1": 0.0}


# Three speakers of 2, 6 and 3 utterances, one per fold; accuracies 1/2, 5/6, 2/3.
UNEQUAL = [
    ("p", "F", [A, H], [A, A]),
    ("q", "M", [A, A, N, N, N, S], [A, N, N, N, N, S]),
    ("r", "F", [H, H, S], [H, S, S]),
]


def _unequal_folds():
    return [compute_metrics(t, p, LABELS, speakers=[s] * len(t), genders=[g] * len(t))
            for s, g, t, p in UNEQUAL]


def test_spread_over_speakers_of_unequal_size_is_the_plain_std_of_their_accuracies():
    """Speakers count once each whatever their size (not weighted by n, not around the
    pooled accuracy); std with ddof 0."""
    y_true = [y for *_, t, _ in UNEQUAL for y in t]
    y_pred = [y for *_, p in UNEQUAL for y in p]
    speakers = [s for s, _, t, _ in UNEQUAL for _ in t]
    genders = [g for _, g, t, _ in UNEQUAL for _ in t]
    m = compute_metrics(y_true, y_pred, LABELS, speakers=speakers, genders=genders)
    assert m["wa"] == pytest.approx(8 / 11)
    assert m["speaker_spread"]["accuracy_std"] == pytest.approx(np.sqrt(2 / 108))
    assert m["per_gender"]["F"]["accuracy"] == pytest.approx(3 / 5)      # pooled within F
    assert m["gender_spread"]["accuracy_std"] == pytest.approx((5 / 6 - 3 / 5) / 2)


def test_aggregate_of_unequal_folds_means_fold_figures_and_pools_the_confusion():
    agg = aggregate_folds(_unequal_folds())
    assert agg["wa"]["values"] == pytest.approx([1 / 2, 5 / 6, 2 / 3])
    assert agg["wa"]["mean"] == pytest.approx(2 / 3)                    # not 8/11 pooled
    assert agg["wa"]["std"] == pytest.approx(np.sqrt(2 / 108))          # ddof 0
    assert agg["ua"]["values"] == pytest.approx([1 / 2, 5 / 6, 3 / 4])
    assert agg["ua"]["mean"] == pytest.approx((1 / 2 + 5 / 6 + 3 / 4) / 3)
    assert agg["pooled"]["wa"] == pytest.approx(8 / 11)
    # pooled UA: recalls angry 2/3, happy 1/3, neutral 3/3, sad 2/2
    assert agg["pooled"]["ua"] == pytest.approx((2 / 3 + 1 / 3 + 1 + 1) / 4)
    assert agg["speaker_spread"]["accuracy_std"] == pytest.approx(np.sqrt(2 / 108))
    # F is tested in folds 0 and 2: the mean of those folds' figures (not 3/5 pooled),
    # and the gender spread is the std of the per-gender means (7/12 and 5/6)
    female = agg["per_gender"]["F"]
    assert female["accuracy"] == {"mean": pytest.approx(7 / 12), "std": pytest.approx(1 / 12)}
    assert (female["n"], female["folds"]) == (5, 2)
    assert agg["gender_spread"]["accuracy_std"] == pytest.approx((5 / 6 - 7 / 12) / 2)


def test_mean_std_of_skewed_values():
    assert mean_std([1.0, 2.0, 6.0]) == {"mean": pytest.approx(3.0),
                                         "std": pytest.approx(np.sqrt(14 / 3))}
