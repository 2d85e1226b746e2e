"""Corpus problems that must not pass in silence: duplicates, conflicting labels, one class,
silent or too short clips (model.corpora.checks, through load_corpus and the corpus command)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.cli.main import main as cli_main
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.corpora.checks import audio_warnings, check_trainable
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.corpora.record import CorpusError


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("a", "b", "c", "d"):
        sf.write(audio / f"{name}.wav", tone(1.0, 0.3), SAMPLE_RATE)
    sf.write(audio / "short.wav", tone(0.05, 0.3), SAMPLE_RATE)
    sf.write(audio / "silent.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    return tmp_path


def manifest(folder, rows: list[str]):
    path = folder / "list.csv"
    path.write_text("path,label,speaker\n" + "".join(r + "\n" for r in rows))
    return path


def test_a_duplicate_row_counts_once_with_a_warning(folder):
    corpus = load_corpus(manifest(folder, ["audio/a.wav,happy,s1", "audio/a.wav,happy,s1",
                                           "audio/b.wav,sad,s2"]))
    assert len(corpus) == 2
    (warning,) = corpus.warnings
    assert (warning.code, warning.count, warning.examples) == ("duplicates", 1, ("a.wav x2",))


def test_a_file_under_two_labels_is_an_error_unless_dropped(folder):
    rows = ["audio/a.wav,happy,s1", "audio/a.wav,sad,s1", "audio/b.wav,sad,s2",
            "audio/c.wav,happy,s2"]
    with pytest.raises(CorpusError, match=r"a\.wav \(happy / sad\).*--drop-conflicting"):
        load_corpus(manifest(folder, rows))
    corpus = load_corpus(manifest(folder, rows), drop_conflicts=True)
    assert sorted(u.path.name for u in corpus.utterances) == ["b.wav", "c.wav"]
    assert [w.code for w in corpus.warnings] == ["conflicting_labels"]


def test_labels_mapped_together_do_not_conflict(folder):
    rows = ["audio/a.wav,exc,s1", "audio/a.wav,happy,s1", "audio/b.wav,sad,s2"]
    corpus = load_corpus(manifest(folder, rows), label_map={"exc": "happy"})
    assert {u.path.name: u.label for u in corpus.utterances} == {"a.wav": "happy", "b.wav": "sad"}


def test_one_class_is_a_warning_to_read_and_an_error_to_train(folder):
    corpus = load_corpus(manifest(folder, ["audio/a.wav,happy,s1", "audio/b.wav,happy,s2"]))
    assert [w.code for w in corpus.warnings] == ["one_class"]
    with pytest.raises(CorpusError, match="only one class"):
        check_trainable(corpus)


def test_silent_short_and_broken_clips_are_named(folder):
    (folder / "audio" / "broken.wav").write_bytes(b"RIFF\x00\x00not audio")
    rows = ["audio/a.wav,happy,s1", "audio/short.wav,sad,s1", "audio/silent.wav,sad,s2",
            "audio/broken.wav,happy,s2"]
    found = {w.code: w for w in audio_warnings(load_corpus(manifest(folder, rows)).utterances)}
    assert found["short_clips"].examples == ("short.wav (0.05 s)",)
    assert found["silent_clips"].examples[0].startswith("silent.wav")
    assert found["unreadable_audio"].examples == ("broken.wav",)
    assert "a.wav" not in json.dumps([w.to_dict() for w in found.values()])


def test_corpus_command_lists_warnings_in_text_and_json(folder, capsys):
    path = manifest(folder, ["audio/a.wav,happy,s1", "audio/a.wav,happy,s1",
                             "audio/silent.wav,sad,s2"])
    assert cli_main(["corpus", str(path), "--json"]) == 0
    codes = [w["code"] for w in json.loads(capsys.readouterr().out)["warnings"]]
    assert codes == ["duplicates", "silent_clips"]
    assert cli_main(["corpus", str(path)]) == 0
    text = capsys.readouterr().out
    assert "warning: 1 audio file(s) listed more than once" in text
    assert "warning: 1 clip(s) are silent" in text
