"""Choosing the reader from the path, and the Corpus record."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import Corpus, detect_kind, load_corpus
from ser_studio.model.corpora.record import CorpusError, Utterance


def write_wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(800, np.float32), SAMPLE_RATE)


def iemocap_tree(root):
    emo = root / "Session1" / "dialog" / "EmoEvaluation"
    emo.mkdir(parents=True)
    (emo / "Ses01F_impro01.txt").write_text(
        "[1.0000 - 2.0000]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n")
    wav_dir = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    write_wav(wav_dir / "Ses01F_impro01_F000.wav")


def test_detects_each_kind(tmp_path):
    iemocap_tree(tmp_path / "iemocap")
    write_wav(tmp_path / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.wav")
    write_wav(tmp_path / "m" / "a.wav")
    (tmp_path / "m" / "list.csv").write_text("path,label,speaker\na.wav,sad,s\n")
    assert detect_kind(tmp_path / "iemocap") == "iemocap"
    assert detect_kind(tmp_path / "ravdess") == "ravdess"
    assert detect_kind(tmp_path / "m" / "list.csv") == "manifest"
    assert load_corpus(tmp_path / "m" / "list.csv").kind == "manifest"


def test_unrecognised_folder_says_what_was_looked_for(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n")
    write_wav(tmp_path / "speech.wav")
    with pytest.raises(CorpusError) as err:
        load_corpus(tmp_path)
    message = str(err.value)
    for expected in (str(tmp_path), "SessionN", "03-01-05-01-02-01-12", ".csv manifest",
                     "notes.csv"):
        assert expected in message


def test_a_session_folder_points_to_its_parent(tmp_path):
    iemocap_tree(tmp_path)
    with pytest.raises(CorpusError, match=f"give the folder holding it, {tmp_path}"):
        load_corpus(tmp_path / "Session1")


def test_missing_path_and_non_csv_file(tmp_path):
    with pytest.raises(CorpusError, match=r"nowhere: does not exist"):
        load_corpus(tmp_path / "nowhere")
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"list\.txt: a file that is not a \.csv manifest"):
        load_corpus(tmp_path / "list.txt")


def test_corpus_summary_counts():
    root = Path("/corpus")
    utts = (
        Utterance(root / "a.wav", "sad", "s1", "F", "Ses01"),
        Utterance(root / "b.wav", "angry", "s1", "F", "Ses01"),
        Utterance(root / "c.wav", "sad", "s2", "", ""),
    )
    corpus = Corpus(root, "manifest", utts, dropped=(("calm", 3),))
    assert corpus.labels == ["angry", "sad"] and corpus.speakers == ["s1", "s2"]
    assert len(corpus) == 3
    summary = corpus.summary()
    assert summary["utterances"] == 3
    assert summary["labels"] == {"angry": 1, "sad": 2}
    assert summary["speakers"] == {"s1": 2, "s2": 1}
    assert summary["sessions"] == {"Ses01": 2}
    assert summary["genders"] == {"F": 2}
    assert summary["dropped"] == {"calm": 3}
