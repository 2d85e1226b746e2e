"""Cross-validation folds are speaker-disjoint; validation comes from the training side."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ser_studio.model.corpora.record import Utterance
from ser_studio.model.training.folds import (GROUPED, LOSO_SESSION, LOSO_SPEAKER, FoldError,
                                             SpeakerLeakError, check_fold, check_speakers,
                                             make_folds)


def _utts(speakers: dict[str, tuple[str, str]], per_speaker: int = 3) -> list[Utterance]:
    """speakers: name -> (gender, session)."""
    return [Utterance(Path(f"/data/{spk}_{i}.wav"), "neutral", spk, gender, session)
            for spk, (gender, session) in speakers.items() for i in range(per_speaker)]


def _iemocap_speakers() -> dict[str, tuple[str, str]]:
    return {f"Ses0{s}{g}": (g, f"Ses0{s}") for s in range(1, 6) for g in "FM"}


def _assert_disjoint_and_complete(folds, everyone):
    tested = [s for f in folds for s in f.test_speakers]
    assert sorted(tested) == sorted(everyone)          # each speaker tested exactly once
    for f in folds:
        test, val, train = set(f.test_speakers), set(f.val_speakers), set(f.train_speakers)
        assert not (test & val) and not (test & train) and not (val & train)
        assert test | val | train == set(everyone)


def test_iemocap_is_leave_one_session_out():
    utts = _utts(_iemocap_speakers())
    protocol, folds = make_folds(utts, kind="iemocap", folds=3, val_speakers=1, seed=0)
    assert protocol == LOSO_SESSION
    assert len(folds) == 5
    for k, fold in enumerate(folds, 1):
        assert fold.index == k
        assert fold.held_out == f"Ses0{k}"
        assert fold.test_speakers == (f"Ses0{k}F", f"Ses0{k}M")
        assert len(fold.val_speakers) == 1 and len(fold.train_speakers) == 7
        assert not fold.val_speakers[0].startswith(f"Ses0{k}")
    _assert_disjoint_and_complete(folds, _iemocap_speakers())


def test_sessions_of_another_corpus_also_give_leave_one_session_out():
    utts = _utts(_iemocap_speakers())
    protocol, folds = make_folds(utts, kind="manifest", folds=2)
    assert protocol == LOSO_SESSION and len(folds) == 5


def test_a_speaker_in_two_sessions_falls_back_to_speaker_folds():
    speakers = _iemocap_speakers()
    utts = _utts(speakers) + [Utterance(Path("/data/x.wav"), "sad", "Ses01F", "F", "Ses02")]
    protocol, folds = make_folds(utts, kind="manifest", folds=5)
    assert protocol == GROUPED and len(folds) == 5
    _assert_disjoint_and_complete(folds, speakers)
    with pytest.raises(FoldError, match="IEMOCAP"):
        make_folds(utts, kind="iemocap")


def test_grouped_k_fold_balances_size_and_gender():
    speakers = {f"A{i:02d}": ("F" if i % 2 else "M", "") for i in range(12)}
    protocol, folds = make_folds(_utts(speakers), kind="ravdess", folds=3, val_speakers=2)
    assert protocol == GROUPED and len(folds) == 3
    _assert_disjoint_and_complete(folds, speakers)
    for fold in folds:
        assert len(fold.test_speakers) == 4
        assert {speakers[s][0] for s in fold.test_speakers} == {"F", "M"}
        # two validation speakers: one of each gender
        assert sorted(speakers[s][0] for s in fold.val_speakers) == ["F", "M"]


def test_folds_zero_is_leave_one_speaker_out():
    speakers = {f"A{i}": ("F" if i < 3 else "M", "") for i in range(6)}
    protocol, folds = make_folds(_utts(speakers), kind="ravdess", folds=0)
    assert protocol == LOSO_SPEAKER and len(folds) == 6
    assert sorted(f.test_speakers[0] for f in folds) == sorted(speakers)
    _assert_disjoint_and_complete(folds, speakers)


def test_validation_pick_is_seeded():
    utts = _utts({f"A{i}": ("F", "") for i in range(10)})
    _, a = make_folds(utts, kind="ravdess", folds=2, val_speakers=2, seed=1)
    _, b = make_folds(utts, kind="ravdess", folds=2, val_speakers=2, seed=1)
    assert a == b
    picks = {tuple(f.val_speakers for f in make_folds(utts, kind="ravdess", folds=2,
                                                      val_speakers=2, seed=s)[1])
             for s in range(6)}
    assert len(picks) > 1


def test_corrupted_fold_raises():
    _, folds = make_folds(_utts(_iemocap_speakers()), kind="iemocap")
    fold = folds[0]
    leaked = dataclasses.replace(fold, train_speakers=fold.train_speakers + fold.test_speakers[:1])
    with pytest.raises(SpeakerLeakError, match="test/train"):
        check_fold(leaked)
    with pytest.raises(SpeakerLeakError, match="test/validation"):
        check_fold(dataclasses.replace(fold, val_speakers=fold.test_speakers[:1]))
    with pytest.raises(SpeakerLeakError, match="validation/train"):
        check_speakers(["a", "b"], ["b"], ["c"])
    with pytest.raises(AssertionError):  # the leak error is an assertion that -O cannot strip
        check_speakers([], ["b"], ["c"])


def test_impossible_settings_are_clear_errors():
    utts = _utts({f"A{i}": ("F", "") for i in range(3)})
    with pytest.raises(FoldError, match="4 folds need at least 4 speakers"):
        make_folds(utts, kind="ravdess", folds=4)
    with pytest.raises(FoldError, match="val_speakers=2 leaves no training speaker"):
        make_folds(utts, kind="ravdess", folds=0, val_speakers=2)
    with pytest.raises(FoldError, match=">= 1"):
        make_folds(utts, kind="ravdess", folds=0, val_speakers=0)
    with pytest.raises(FoldError, match="no utterances"):
        make_folds([], kind="ravdess")

