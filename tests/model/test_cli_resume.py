"""``train --resume RUN`` continues the run RUN/run.json describes: an option that would
change it is refused, naming the option and the run; where and how it runs may be given."""
from __future__ import annotations

import json

import pytest

from ser_studio.model.cli.main import build_parser, main
from ser_studio.model.cli.train_resume import run_options_given
from ser_studio.model.config.run import describe_run, write_run_file
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig, config_to_dict


@pytest.fixture
def run_dir(tmp_path, synth_corpus):
    """A run folder as a cancelled ``train`` leaves it before its first fold ended: run.json
    (hidden 16, 3 epochs) and a metrics.json without folds."""
    frontend, model, train = FrontendConfig(), ModelConfig(hidden=16), TrainConfig(epochs=3)
    run = tmp_path / "run"
    write_run_file(run, describe_run(frontend, model, train, corpus=str(synth_corpus),
                                     max_folds=1))
    (run / "metrics.json").write_text(json.dumps({"configs": {"train": config_to_dict(train)},
                                                  "folds": []}))
    return run


@pytest.fixture
def stop_before_training(monkeypatch):
    """``run_cross_validation`` raises at once: what reaches it was accepted."""
    import ser_studio.model.training.experiment as experiment

    def stop(*_args, **_kwargs):
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(experiment, "run_cross_validation", stop)


@pytest.mark.parametrize("options, named", [
    (["--hidden", "64"], "--hidden"),
    (["--hidden", "16"], "--hidden"),  # defining the run again is refused too: it is run.json's
    (["--epochs", "1", "--no-adain"], "--epochs, --no-adain"),
    (["--set", "train.lr=0.1"], "--set"),
    (["--frontend", "hubert"], "--frontend"),
    (["--no-augment"], "--no-augment"),
    (["--corpus", "/elsewhere"], "--corpus"),
    (["--classes", "angry", "sad"], "--classes"),
    (["--max-folds", "2"], "--max-folds"),
    (["--no-final"], "--no-final"),
])
def test_an_option_that_defines_the_run_is_refused_naming_it_and_the_run(
        run_dir, stop_before_training, capsys, options, named):
    written = (run_dir / "run.json").read_bytes()
    assert main(["train", "--resume", str(run_dir), *options]) == 2
    err = capsys.readouterr().err
    assert f"--resume {run_dir}: {named} would change the run" in err
    assert f"--config {run_dir / 'run.json'} --out NEW_FOLDER {named.replace(',', '')}" in err
    assert "stopped before training" not in err
    assert (run_dir / "run.json").read_bytes() == written  # nothing recorded


def test_where_and_how_it_runs_may_be_given(run_dir, stop_before_training, capsys, tmp_path):
    assert main(["train", "--resume", str(run_dir), "--cache", str(tmp_path / "cache"),
                 "--device", "cpu", "--progress-json"]) == 2
    err = capsys.readouterr().err
    assert "error: stopped before training" in err and "would change the run" not in err


def test_every_option_but_the_allowed_ones_counts_as_defining_the_run():
    """New config options are refused with --resume without being listed anywhere."""
    parser = build_parser()
    plain = parser.parse_args(["train", "--resume", "R", "--cache", "C", "--device", "cpu",
                               "--progress-json"])
    assert run_options_given(plain) == []
    args = parser.parse_args(["train", "--resume", "R", "--lr", "0.01", "--no-posenc",
                              "--stats-branch", "--drop-conflicting", "--map", "a=b"])
    assert run_options_given(args) == ["--lr", "--stats-branch", "--no-posenc", "--map",
                                       "--drop-conflicting"]
