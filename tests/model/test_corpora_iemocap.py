"""IEMOCAP reader on small hand-made trees in the full-release layout."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.iemocap import parse_label_file, speaker_of
from ser_studio.model.corpora.record import CorpusError

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def write_wav(path, seconds=0.05):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * SAMPLE_RATE), np.float32), SAMPLE_RATE)


def block(utt_id, code, start=1.0):
    """One label line plus the annotator lines that follow it in the real files."""
    return (
        f"[{start:.4f} - {start + 1.5:.4f}]\t{utt_id}\t{code}\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nC-E3:\tAnger;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
    )


def make_session(root, number, dialogs, missing=()):
    """Session<number> with one EmoEvaluation file and wav folder per dialog.

    dialogs: {dialog: [(utterance id, label code), ...]}; ids in ``missing`` get no wav.
    """
    session = root / f"Session{number}"
    emo = session / "dialog" / "EmoEvaluation"
    emo.mkdir(parents=True)
    for dialog, entries in dialogs.items():
        text = HEADER + "".join(block(u, c, 1.0 + 3 * i) for i, (u, c) in enumerate(entries))
        (emo / f"{dialog}.txt").write_text(text)
        for utt_id, _ in entries:
            if utt_id not in missing:
                write_wav(session / "sentences" / "wav" / dialog / f"{utt_id}.wav")
    return session


def by_id(corpus):
    return {u.path.stem: u for u in corpus.utterances}


def test_speaker_is_session_plus_gender_of_last_token():
    assert speaker_of("Ses05M_script01_3_F000") == ("Ses05F", "F", "Ses05")
    assert speaker_of("Ses01F_impro01_M013") == ("Ses01M", "M", "Ses01")
    with pytest.raises(ValueError, match="Ses01F_impro01_F000"):
        speaker_of("Ses05M_script01_3")


def test_speakers_in_a_dialog_named_after_the_other_speaker(tmp_path):
    make_session(tmp_path, 5, {"Ses05M_script01_3": [
        ("Ses05M_script01_3_F000", "ang"), ("Ses05M_script01_3_M000", "sad")]})
    utts = by_id(load_corpus(tmp_path))
    female = utts["Ses05M_script01_3_F000"]
    assert (female.speaker, female.gender, female.session) == ("Ses05F", "F", "Ses05")
    assert utts["Ses05M_script01_3_M000"].speaker == "Ses05M"
    assert female.path.is_absolute() and female.path.is_file()


def test_exc_is_merged_into_happy_and_other_labels_dropped(tmp_path):
    make_session(tmp_path, 1, {"Ses01F_impro01": [
        ("Ses01F_impro01_F000", "hap"), ("Ses01F_impro01_F001", "exc"),
        ("Ses01F_impro01_M000", "neu"), ("Ses01F_impro01_M001", "fru"),
        ("Ses01F_impro01_M002", "xxx"), ("Ses01F_impro01_F002", "sur"),
        ("Ses01F_impro01_F003", "ang"), ("Ses01F_impro01_F004", "sad"),
    ]})
    corpus = load_corpus(tmp_path)
    summary = corpus.summary()
    assert corpus.kind == "iemocap"
    assert summary["labels"] == {"angry": 1, "happy": 2, "neutral": 1, "sad": 1}
    assert summary["dropped"] == {"frustrated": 1, "surprised": 1, "xxx": 1}
    assert summary["languages"] == {"English": 5}
    assert by_id(corpus)["Ses01F_impro01_F001"].label == "happy"


def test_only_label_files_directly_in_emoevaluation_are_read(tmp_path):
    session = make_session(tmp_path, 1, {"Ses01F_impro01": [
        ("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "sad")]})
    emo = session / "dialog" / "EmoEvaluation"
    # An utterance with audio that only the decoys mention, and disagreeing labels.
    write_wav(session / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F001.wav")
    decoy = block("Ses01F_impro01_F001", "ang") + block("Ses01F_impro01_F000", "ang")
    for sub in ("Categorical", "Attribute", "Self-evaluation"):
        (emo / sub).mkdir()
        (emo / sub / "Ses01F_impro01_e1_cat.txt").write_text(HEADER + decoy)
        (emo / sub / "Ses01F_impro01.txt").write_text(HEADER + decoy)  # same stem as the dialog
    (emo / "Ses01F_impro01.csv").write_text(decoy)  # not a .txt file
    (emo / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07" + decoy.encode())
    corpus = load_corpus(tmp_path)
    assert sorted(by_id(corpus)) == ["Ses01F_impro01_F000", "Ses01F_impro01_M000"]
    assert corpus.summary()["labels"] == {"neutral": 1, "sad": 1}


def test_parse_label_file_ignores_everything_but_label_lines(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(HEADER + block("Ses01F_impro01_F000", "neu", 6.2901) + "garbage\n"
                    + "[7.1 - 8.0]\tSes01F_impro01_F001\n")
    assert parse_label_file(path) == ([("Ses01F_impro01_F000", "neu", 3)], [9])


def test_malformed_lines_and_empty_label_files_are_warnings(tmp_path):
    session = make_session(tmp_path, 1, {"Ses01F_impro01": [
        ("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang")]})
    emo = session / "dialog" / "EmoEvaluation"
    with (emo / "Ses01F_impro01.txt").open("a") as handle:
        handle.write("[9.0 - x]\tSes01F_impro01_F002\tsad\n")
    (emo / "Ses01F_impro02.txt").write_bytes(b"\xff\xfe binary junk")
    corpus = load_corpus(tmp_path)
    found = {w.code: w for w in corpus.warnings}
    assert found["malformed_label_lines"].count == 1
    assert found["malformed_label_lines"].examples == ("Ses01F_impro01.txt:13",)
    assert found["label_files_without_labels"].examples == ("Ses01F_impro02.txt",)
    assert corpus.summary()["warnings"][0]["code"] == "malformed_label_lines"


def test_one_session_iemocap_says_two_sessions_are_needed(tmp_path):
    from ser_studio.model.training.folds import FoldError, choose_protocol

    make_session(tmp_path, 1, {"Ses01F_impro01": [
        ("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "ang")]})
    corpus = load_corpus(tmp_path)
    with pytest.raises(FoldError, match="at least two sessions"):
        choose_protocol(corpus.utterances, corpus.kind, 5)


def test_missing_wav_is_skipped_with_a_warning(tmp_path, caplog):
    make_session(tmp_path, 2, {"Ses02F_impro01": [
        ("Ses02F_impro01_F000", "neu"), ("Ses02F_impro01_M000", "ang")]},
        missing={"Ses02F_impro01_M000"})
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(tmp_path)
    assert [u.path.stem for u in corpus.utterances] == ["Ses02F_impro01_F000"]
    assert corpus.missing_audio == 1
    assert "1 labelled utterances have no wav" in caplog.text


def test_nothing_found_names_the_path(tmp_path):
    make_session(tmp_path, 1, {"Ses01F_impro01": [("Ses01F_impro01_F000", "neu")]},
                 missing={"Ses01F_impro01_F000"})
    with pytest.raises(CorpusError, match=str(tmp_path)) as err:
        load_corpus(tmp_path)
    assert "without SessionN/sentences/wav" in str(err.value)


def test_any_subset_of_sessions(tmp_path):
    make_session(tmp_path, 2, {"Ses02F_impro01": [("Ses02F_impro01_F000", "neu")]})
    make_session(tmp_path, 4, {"Ses04M_impro02": [("Ses04M_impro02_M000", "sad")]})
    summary = load_corpus(tmp_path).summary()
    assert summary["sessions"] == {"Ses02": 1, "Ses04": 1}
    assert summary["speakers"] == {"Ses02F": 1, "Ses04M": 1}
    assert summary["genders"] == {"F": 1, "M": 1}


def test_malformed_utterance_id_names_file_and_line(tmp_path):
    session = make_session(tmp_path, 1, {"Ses01F_impro01": [("Ses01F_impro01_F000", "neu")]})
    label_file = session / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    label_file.write_text(label_file.read_text() + block("Speaker7_take2", "ang"))
    with pytest.raises(CorpusError, match=r"Ses01F_impro01\.txt:8: .*Speaker7_take2"):
        load_corpus(tmp_path)


def four_class_tree(root):
    make_session(root, 1, {"Ses01F_impro01": [
        ("Ses01F_impro01_F000", "ang"), ("Ses01F_impro01_F001", "hap"),
        ("Ses01F_impro01_F002", "exc"), ("Ses01F_impro01_M000", "neu"),
        ("Ses01F_impro01_M001", "sad"), ("Ses01F_impro01_M002", "fru"),
    ]})


def test_label_map_and_classes(tmp_path):
    four_class_tree(tmp_path)
    merged = load_corpus(tmp_path, label_map={"fru": "angry"})
    assert merged.summary()["labels"] == {"angry": 2, "happy": 2, "neutral": 1, "sad": 1}
    # The user's map on the canonical name wins over the default exc -> happy.
    split = load_corpus(tmp_path, label_map="excited=excited", classes=["excited", "hap", "ang"])
    assert split.summary()["labels"] == {"angry": 1, "excited": 1, "happy": 1}
    assert split.summary()["dropped"] == {"frustrated": 1, "neutral": 1, "sad": 1}
    subset = load_corpus(tmp_path, classes=["angry", "sad"])
    assert subset.labels == ["angry", "sad"]


def test_absent_class_lists_available_labels(tmp_path):
    four_class_tree(tmp_path)
    with pytest.raises(CorpusError, match="calm.*available labels: angry, frustrated, happy"):
        load_corpus(tmp_path, classes=["angry", "calm"])
