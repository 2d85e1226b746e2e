"""RAVDESS-style reader: names 03-01-EE-II-SS-RR-AA.ext, searched recursively."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.ravdess import parse_ravdess_name
from ser_studio.model.corpora.record import CorpusError


def write_audio(path, fmt="WAV"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(800, np.float32), SAMPLE_RATE, format=fmt)


def name(emotion, actor, statement=1, ext="wav"):
    return f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.{ext}"


def test_name_gives_emotion_actor_and_gender():
    utt = parse_ravdess_name(Path("/x/03-01-05-02-01-02-12.wav"))
    assert (utt.label, utt.speaker, utt.gender, utt.session) == ("angry", "Actor_12", "F", "")
    assert utt.language == "English"  # RAVDESS is North American English
    utt = parse_ravdess_name(Path("/x/03-01-02-01-01-01-07.flac"))
    assert (utt.label, utt.speaker, utt.gender) == ("calm", "Actor_07", "M")


def test_every_emotion_code(tmp_path):
    for code in range(1, 9):
        write_audio(tmp_path / name(code, 1))
    labels = sorted(u.label for u in load_corpus(tmp_path).utterances)
    assert labels == sorted(["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                             "surprised"])


def test_recursive_any_audio_extension_and_odd_even_gender(tmp_path):
    write_audio(tmp_path / "Actor_01" / name(5, 1, ext="wav"))
    write_audio(tmp_path / "Actor_02" / name(4, 2, ext="flac"), fmt="FLAC")
    write_audio(tmp_path / "deep" / "er" / name(3, 3, ext="ogg"), fmt="OGG")
    write_audio(tmp_path / "Actor_01" / "notes.wav")  # not a RAVDESS name: ignored
    (tmp_path / name(1, 4, ext="txt")).write_text("not audio")
    corpus = load_corpus(tmp_path)
    summary = corpus.summary()
    assert corpus.kind == "ravdess"
    assert summary["speakers"] == {"Actor_01": 1, "Actor_02": 1, "Actor_03": 1}
    assert summary["genders"] == {"F": 1, "M": 2}
    assert summary["sessions"] == {}
    assert summary["labels"] == {"angry": 1, "happy": 1, "sad": 1}


def test_map_calm_to_neutral_and_keep_four_classes(tmp_path):
    for actor in (1, 2):
        for code in range(1, 9):
            write_audio(tmp_path / name(code, actor))
    corpus = load_corpus(tmp_path, label_map="calm=neutral",
                         classes=["angry", "happy", "neutral", "sad"])
    summary = corpus.summary()
    assert summary["utterances"] == 10
    assert summary["labels"] == {"angry": 2, "happy": 2, "neutral": 4, "sad": 2}
    assert summary["dropped"] == {"disgust": 2, "fearful": 2, "surprised": 2}


def test_unknown_emotion_code_names_the_file(tmp_path):
    write_audio(tmp_path / name(5, 1))
    write_audio(tmp_path / name(9, 1))
    with pytest.raises(CorpusError, match=r"03-01-09-01-01-01-01\.wav: emotion code 09"):
        load_corpus(tmp_path)
