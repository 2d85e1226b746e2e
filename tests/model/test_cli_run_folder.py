"""A run folder (what ``train`` writes: model.safetensors + model.json, fold_K/ beside them)
given as ``--model`` loads its final model in every command; a folder without one is an error
that lists what it holds."""
from __future__ import annotations

import json

import pytest

from ser_studio.model.cli.main import main
from ser_studio.model.inference.predictor import Predictor
from ser_studio.model.networks.checkpoint import CheckpointError, resolve_model_path
from tests.model.test_cli_evaluate_predict import LABELS, _checkpoint, audio_files  # noqa: F401


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder: the final model, and fold_1's model with the labels in another order
    (so a fold's model loaded instead of the final one would show)."""
    run = tmp_path_factory.mktemp("runs") / "my_run"
    _checkpoint(run / "model.safetensors")
    _checkpoint(run / "fold_1" / "model.safetensors", labels=LABELS[::-1])
    (run / "run.json").write_text("{}\n")
    return run


@pytest.fixture(scope="module")
def voice(audio_files):
    """About 4 s of espeak-ng speech (skips without espeak-ng)."""
    return audio_files["speech"]


def test_the_resolver_gives_a_run_folders_final_model_and_leaves_files_alone(run_dir):
    assert resolve_model_path(run_dir) == run_dir / "model.safetensors"
    assert resolve_model_path(str(run_dir) + "/") == run_dir / "model.safetensors"
    other = run_dir / "fold_1" / "model.json"
    assert resolve_model_path(other) == other


def test_predictor_load_of_a_run_folder_runs_its_final_model(run_dir):
    predictor = Predictor.load(run_dir, runtime="auto")  # the graph cache hashes the weights
    assert predictor.checkpoint_path == run_dir / "model.safetensors"
    assert predictor.labels == LABELS and predictor.name.startswith("my_run (")
    assert predictor.model_sha1() == Predictor.load(run_dir / "model.json").model_sha1()


def test_predict_profile_and_export_take_a_run_folder(run_dir, voice, tmp_path, capsys):
    assert main(["predict", str(voice), "--model", str(run_dir), "--json", "--no-vad"]) == 0
    by_folder = json.loads(capsys.readouterr().out)
    assert main(["predict", str(voice), "--model", str(run_dir / "model.safetensors"),
                 "--json", "--no-vad"]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert by_folder["probs"] == by_file["probs"] and list(by_folder["probs"]) == LABELS

    profile = tmp_path / "me.json"
    code = main(["profile", str(voice), "--model", str(run_dir), "--out", str(profile)])
    assert code == 0, capsys.readouterr().err
    assert profile.is_file() and "my_run" in capsys.readouterr().out

    onnx = tmp_path / "exported.onnx"
    assert main(["export", "--model", str(run_dir), "--onnx", str(onnx)]) == 0
    sidecar = json.loads(onnx.with_suffix(".json").read_text())
    assert sidecar["source"]["checkpoint"] == str(run_dir / "model.safetensors")


def test_evaluate_takes_a_run_folder(run_dir, synth_corpus, tmp_path, capsys):
    code = main(["evaluate", "--model", str(run_dir), "--corpus", str(synth_corpus),
                 "--cache", str(tmp_path / "cache"), "--json", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["model"] == str(run_dir / "model.safetensors")


def test_a_folder_without_a_final_model_says_what_it_holds(run_dir, voice, tmp_path, capsys):
    folds = tmp_path / "no_final"
    for k in (1, 2):
        _checkpoint(folds / f"fold_{k}" / "model.safetensors")
    assert main(["predict", str(voice), "--model", str(folds)]) == 2
    err = capsys.readouterr().err
    assert str(folds) in err and "no model.safetensors" in err
    assert "fold_1/model.safetensors, fold_2/model.safetensors" in err

    other = tmp_path / "notes"
    other.mkdir()
    for name in ("b.txt", "a.wav", "c.csv"):
        (other / name).write_text("x")
    (other / "sub").mkdir()
    with pytest.raises(CheckpointError, match=r"no \*\.safetensors, only 4 other entries: "
                                              r"a\.wav, b\.txt, c\.csv, sub/"):
        resolve_model_path(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="this folder is empty"):
        resolve_model_path(empty)
