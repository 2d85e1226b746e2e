"""CSV manifest reader: path,label,speaker[,gender,session,language], paths relative to the CSV."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.record import CorpusError


def write_wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(800, np.float32), SAMPLE_RATE)


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    for rel in ("audio/a.wav", "audio/b.wav", "audio/c.wav"):
        write_wav(folder / rel)
    return folder


def test_relative_paths_resolve_against_the_csv_folder(data_dir, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    manifest = data_dir / "list.csv"
    manifest.write_text(
        "path,label,speaker,gender,session,extra\n"
        "audio/a.wav,Neutral,spk1,female,s1,x\n"
        f"{data_dir / 'audio' / 'b.wav'},ang,spk2,M,s2,y\n"
        "audio/c.wav,sad,spk1,,,z\n"
    )
    corpus = load_corpus(manifest)
    assert corpus.kind == "manifest"
    rows = {u.path.name: u for u in corpus.utterances}
    assert rows["a.wav"].path == (data_dir / "audio" / "a.wav").resolve()
    assert (rows["a.wav"].label, rows["a.wav"].gender, rows["a.wav"].session) == (
        "neutral", "F", "s1")
    assert rows["b.wav"].label == "angry" and rows["b.wav"].gender == "M"
    assert (rows["c.wav"].gender, rows["c.wav"].session) == ("", "")
    assert corpus.summary()["speakers"] == {"spk1": 2, "spk2": 1}


def test_optional_columns_may_be_absent(data_dir):
    manifest = data_dir / "m.csv"
    manifest.write_text("path,label,speaker\naudio/a.wav,happy,s\n")
    (utt,) = load_corpus(manifest).utterances
    assert (utt.label, utt.speaker, utt.gender, utt.session) == ("happy", "s", "", "")


def test_missing_column_names_file_and_column(data_dir):
    manifest = data_dir / "m.csv"
    manifest.write_text("path,emotion,speaker\naudio/a.wav,happy,s\n")
    with pytest.raises(CorpusError, match=r"m\.csv:1: missing column\(s\) label"):
        load_corpus(manifest)


def test_missing_audio_file_names_line(data_dir):
    manifest = data_dir / "m.csv"
    manifest.write_text("path,label,speaker\naudio/a.wav,happy,s\naudio/gone.wav,sad,s\n")
    with pytest.raises(CorpusError, match=r"m\.csv:3: audio file .*gone\.wav does not exist"):
        load_corpus(manifest)


def test_missing_audio_files_are_counted_and_the_first_named(data_dir):
    manifest = data_dir / "m.csv"
    rows = ["audio/a.wav,happy,s"] + [f"audio/gone{k}.wav,sad,s" for k in range(7)]
    manifest.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    with pytest.raises(CorpusError) as caught:
        load_corpus(manifest)
    message = str(caught.value)
    assert "7 of the 8 audio files listed do not exist" in message
    assert "line 3: " in message and "gone0.wav; line 4: " in message and "gone2.wav" in message
    assert "gone3.wav" not in message  # only the first few are named


@pytest.mark.parametrize("row, problem", [
    ("audio/a.wav,,s", "empty label"),
    ("audio/a.wav,sad,s,robot", "gender 'robot'"),
    ("audio/a.wav,sad,s,F,s1,surplus", "more cells than header columns"),
])
def test_bad_rows_name_the_line(data_dir, row, problem):
    manifest = data_dir / "m.csv"
    manifest.write_text(f"path,label,speaker,gender,session\naudio/b.wav,sad,s,F,s1\n{row}\n")
    with pytest.raises(CorpusError, match=rf"m\.csv:3: {problem}"):
        load_corpus(manifest)


def test_header_only_or_empty_file(data_dir):
    manifest = data_dir / "m.csv"
    manifest.write_text("path,label,speaker\n")
    with pytest.raises(CorpusError, match="no rows"):
        load_corpus(manifest)
    manifest.write_text("")
    with pytest.raises(CorpusError, match=r"m\.csv: empty file"):
        load_corpus(manifest)
