"""``main.py corpus`` and ``main.py synth`` through the CLI dispatcher."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ser_studio.model.cli.main import COMMANDS, main
from ser_studio.model.constants import SAMPLE_RATE


@pytest.fixture
def ravdess_dir(tmp_path):
    folder = tmp_path / "rav"
    for actor in (1, 2):
        for emotion in range(1, 9):
            path = folder / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.zeros(800, np.float32), SAMPLE_RATE)
    return folder


def test_commands_are_registered():
    assert {"corpus", "synth"} <= set(COMMANDS)


def test_corpus_json_is_one_object(ravdess_dir, capsys):
    code = main(["corpus", str(ravdess_dir), "--map", "calm=neutral",
                           "--classes", "angry", "happy", "neutral", "sad", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)  # fails on anything but exactly one JSON document
    assert summary["utterances"] == 10
    assert summary["labels"] == {"angry": 2, "happy": 2, "neutral": 4, "sad": 2}
    assert summary["speakers"] == {"Actor_01": 5, "Actor_02": 5}
    assert summary["sessions"] == {}
    assert summary["genders"] == {"F": 5, "M": 5}


def test_corpus_human_summary(synth_corpus, capsys):
    assert main(["corpus", str(synth_corpus)]) == 0
    out = capsys.readouterr().out
    assert "iemocap corpus at" in out
    assert "utterances: 160" in out
    assert "speakers (10):" in out and "sessions (5):" in out
    assert "dropped (other labels) (2): frustrated 10, xxx 10" in out


@pytest.mark.parametrize("argv, message", [
    (["corpus", "{tmp}/missing"], "missing: does not exist"),
    (["corpus", "{rav}", "--map", "calm"], "not of the form name=name"),
    (["corpus", "{rav}", "--classes", "angry", "bored"], "available labels: angry, calm"),
])
def test_corpus_errors_exit_2_without_traceback(tmp_path, ravdess_dir, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, rav=ravdess_dir) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.startswith("error: ")
    assert "Traceback" not in captured.err and captured.out == ""


def test_synth_writes_a_readable_corpus(tmp_path, capsys):
    out_dir = tmp_path / "synth"
    argv = ["synth", str(out_dir), "--per-speaker", "1", "--sessions", "1", "--engine", "tone"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out_dir.resolve())
    assert main(["corpus", str(out_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["utterances"] == 8
    assert summary["speakers"] == {"Ses01F": 4, "Ses01M": 4}


def test_synth_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["synth", str(tmp_path), "--engine", "tone"]) == 2
    assert "not empty and not a synthetic corpus" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
