"""``main.py train``: JSON progress lines, bars, signals, errors, configs, and a
train -> checkpoint -> evaluate -> predict round trip."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal

import pytest

from ser_studio.model.cli import train as train_cmd
from ser_studio.model.cli.main import build_parser, main
from ser_studio.model.cli.train import build_configs
from ser_studio.model.config.run import read_sections
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.training.progress import ProgressEvent



@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


def _argv(corpus, out, cache, *extra) -> list[str]:
    return ["train", "--corpus", str(corpus), "--frontend", "logmel", "--arch", "enhanced",
            "--epochs", "3", "--batch-size", "16", "--lr", "3e-3", "--hidden", "16",
            "--gru-layers", "1", "--frame-pool", "4", "--val-speakers", "2",
            "--out", str(out), "--cache", str(cache), *extra]


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def json_run(synth_corpus, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(_argv(synth_corpus, out, cache_dir, "--max-folds", "1", "--progress-json"))
    return code, stdout.getvalue(), out


def test_progress_json_prints_one_event_per_line(json_run):
    code, stdout, out = json_run
    assert code == 0
    events = _events(stdout)  # every stdout line is a JSON object
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["start", "extract"]  # features, then the fold
    assert [k for k in kinds if k != "extract"][:2] == ["start", "fold_start"]
    assert kinds.count("epoch") == 3 and kinds.count("fold_end") == 1
    assert kinds[-1] == "done" and "final_start" in kinds
    assert events[kinds.index("fold_start")]["test_speakers"] == ["Ses01F", "Ses01M"]
    done = events[-1]
    assert done["cancelled"] is False and done["folds_completed"] == 1
    assert done["model"] == str(out / "model.safetensors")
    assert (out / "report.md").is_file() and (out / "fold_1" / "model.json").is_file()


def _manifest(corpus_root, speakers, path):
    corpus = load_corpus(corpus_root)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker", "gender", "session"])
        for u in corpus.utterances:
            if u.speaker in speakers:
                writer.writerow([u.path, u.label, u.speaker, u.gender, u.session])
    return path


def test_round_trip_train_evaluate_predict(json_run, synth_corpus, cache_dir, tmp_path, capsys):
    _, _, out = json_run
    fold = json.loads((out / "metrics.json").read_text())["folds"][0]
    manifest = _manifest(synth_corpus, fold["test_speakers"], tmp_path / "test.csv")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "fold_1" / "model.safetensors"),
                 "--corpus", str(manifest), "--cache", str(cache_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the evaluate command scores the fold's checkpoint exactly as the trainer did
    assert result["n"] == fold["metrics"]["n"] == 32
    assert result["confusion"] == fold["metrics"]["confusion"]
    assert result["ua"] == pytest.approx(fold["metrics"]["ua"])
    wav = load_corpus(manifest).utterances[0].path
    assert main(["predict", str(wav), "--model", str(out / "model.safetensors"), "--json",
                 "--no-vad"]) == 0
    predicted = json.loads(capsys.readouterr().out.splitlines()[0])
    assert predicted["path"] == str(wav)
    assert sorted(predicted["probs"]) == ["angry", "happy", "neutral", "sad"]
    assert sum(predicted["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert predicted["label"] == max(predicted["probs"], key=predicted["probs"].get)


def test_sigterm_cancels_exits_3_and_resume_finishes_the_run(synth_corpus, cache_dir,
                                                              tmp_path, monkeypatch, capsys):
    original = train_cmd.JsonLines.__call__

    def kill_after_first_fold(self, event):
        original(self, event)
        if event.kind == "fold_end":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(train_cmd.JsonLines, "__call__", kill_after_first_fold)
    before = signal.getsignal(signal.SIGTERM)
    code = main(_argv(synth_corpus, tmp_path, cache_dir, "--epochs", "1", "--max-folds", "2",
                      "--progress-json"))
    assert code == train_cmd.EXIT_CANCELLED == 3
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored
    captured = capsys.readouterr()
    events = _events(captured.out)
    assert [e["event"] for e in events].count("fold_end") == 1
    assert events[-1]["event"] == "done" and events[-1]["cancelled"] is True
    assert events[-1]["folds_completed"] == 1 and events[-1]["model"] is None
    assert not (tmp_path / "fold_2").exists()
    assert f"kept in {tmp_path}: 1;" in captured.err and f"--resume {tmp_path}" in captured.err
    first = (tmp_path / "fold_1" / "model.safetensors").read_bytes()

    monkeypatch.setattr(train_cmd.JsonLines, "__call__", original)
    run_file = tmp_path / "run.json"
    written, stamp = run_file.read_bytes(), run_file.stat().st_mtime_ns
    reads = _count_reads(monkeypatch)
    assert main(["train", "--resume", str(tmp_path), "--cache", str(cache_dir),
                 "--progress-json"]) == 0
    assert reads == [run_file]  # read once ...
    assert (run_file.read_bytes(), run_file.stat().st_mtime_ns) == (written, stamp)  # kept
    events = _events(capsys.readouterr().out)
    kinds = [e["event"] for e in events]
    assert kinds.count("fold_resumed") == 1 and kinds.count("fold_end") == 1
    assert [e["fold"] for e in events if e["event"] == "fold_end"] == [2]
    assert (tmp_path / "fold_1" / "model.safetensors").read_bytes() == first  # kept, not redone
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [1, 2] and not summary["cancelled"]
    assert summary["configs"]["train"]["epochs"] == 1  # the settings came from run.json
    assert (tmp_path / "model.safetensors").is_file()


def _count_reads(monkeypatch) -> list:
    """The files ``train`` reads run descriptions from, in order (the CLI's one reader)."""
    reads = []

    def counted(path):
        reads.append(path)
        return read_sections(path)

    monkeypatch.setattr(train_cmd, "read_sections", counted)
    return reads


def test_a_run_json_in_its_own_out_folder_is_read_once_and_left_alone(json_run, tmp_path,
                                                                       monkeypatch, capsys):
    """The wizard's way: it writes OUT/run.json, then runs ``train --config OUT/run.json
    --out OUT``; the trainer leaves the file as written unless an option changes the run."""
    import ser_studio.model.training.experiment as experiment

    def stop(*_args, **_kwargs):
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(experiment, "run_cross_validation", stop)
    run_file = tmp_path / "run.json"
    run_file.write_bytes((json_run[2] / "run.json").read_bytes())
    os.utime(run_file, ns=(1_000_000_000, 1_000_000_000))
    written = run_file.read_bytes()
    reads = _count_reads(monkeypatch)
    argv = ["train", "--config", str(run_file), "--out", str(tmp_path)]
    assert main(argv) == 2 and "stopped before training" in capsys.readouterr().err
    assert reads == [run_file]
    assert (run_file.read_bytes(), run_file.stat().st_mtime_ns) == (written, 1_000_000_000)

    assert main([*argv, "--epochs", "2"]) == 2  # an option that changes the run: rewritten
    assert json.loads(run_file.read_text())["train"]["epochs"] == 2
    assert len(reads) == 2


def test_resume_refuses_a_folder_without_a_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no run to resume" in capsys.readouterr().err


def test_run_json_repeats_a_run_with_config(json_run, synth_corpus, tmp_path):
    _, _, out = json_run
    sections = json.loads((out / "run.json").read_text())
    assert sections["corpus"]["path"] == str(synth_corpus.resolve())
    args = build_parser().parse_args(["train", "--config", str(out / "run.json"),
                                      "--out", str(tmp_path)])
    sections = train_cmd._apply_run_sections(args)
    frontend, model, train = build_configs(args, sections)
    assert args.corpus == [sections["corpus"]["path"]] and args.max_folds == 1
    assert (model.hidden, train.epochs) == (16, 3)


def test_bars_on_stderr_and_results_on_stdout(synth_corpus, cache_dir, tmp_path, capsys):
    code = main(_argv(synth_corpus, tmp_path, cache_dir, "--epochs", "1", "--max-folds", "1",
                      "--no-final"))
    assert code == 0
    captured = capsys.readouterr()
    assert "UA:" in captured.out and "report:" in captured.out
    assert "model:" not in captured.out  # --no-final
    assert "fold 1" in captured.err
    assert not (tmp_path / "model.safetensors").exists()


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    code = main(["train", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--progress-json"])
    assert code == 2
    captured = capsys.readouterr()
    assert "nope" in captured.err and "does not exist" in captured.err
    assert _events(captured.out) == [{"event": "error", "message": captured.err.strip()[7:]}]
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"epoch": 3}}))
    assert main(["train", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--config", str(config)]) == 2
    assert "unknown keys ['epoch']" in capsys.readouterr().err


@pytest.mark.parametrize("device, problem", [("tpu:3", "not a torch device"),
                                             ("cuda:99", "not available on this machine")])
def test_a_bad_device_is_refused_before_the_corpus_loads(tmp_path, capsys, monkeypatch,
                                                         device, problem):
    from ser_studio.model.corpora import corpus

    def no_loading(*args, **kwargs):
        raise AssertionError("the corpus was loaded before the device was checked")

    monkeypatch.setattr(corpus, "load_corpus", no_loading)
    code = main(["train", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--device", device])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --device {device}: {problem}")
    assert "available here: cpu" in err
    assert not (tmp_path / "o").exists()


def _parse(*argv):
    return build_parser().parse_args(["train", "--corpus", "c", "--out", "o", *argv])


def test_options_and_config_file_build_the_configs(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"hidden": 64, "gru_layers": 3},
                                  "train": {"epochs": 7, "patience": 2,
                                            "augment": {"noise_prob": 0.9}}}))
    frontend, model, train = build_configs(_parse(
        "--config", str(config), "--gru-layers", "1", "--arch", "baseline", "--no-adain",
        "--no-adversary", "--folds", "0", "--frontend", "hubert:some/model@weighted"))
    assert frontend.name == "hubert" and frontend.encoder == "some/model"
    assert frontend.layer_mode == "weighted"
    assert (model.arch, model.hidden, model.gru_layers) == ("baseline", 64, 1)
    assert not model.use_adain and not model.use_speaker_adversary and model.use_posenc
    assert (train.epochs, train.patience, train.folds) == (7, 2, 0)
    assert train.augment.noise_prob == 0.9
    _, _, train = build_configs(_parse("--config", str(config), "--no-augment"))
    assert train.augment.noise_prob == 0 and train.augment.stretch_prob == 0
    config.write_text(json.dumps({"train": {"augment": {"gain_prob": 0.5}}}))
    _, _, train = build_configs(_parse("--config", str(config), "--no-level-augment"))
    assert train.augment.gain_prob == 0 and train.augment.noise_prob == 0.5
    frontend, model, train = build_configs(_parse())
    assert frontend.name == "logmel" and model.arch == "enhanced" and train.epochs == 40
    assert model.ensemble == 1 and not model.stats_branch
    _, model, _ = build_configs(_parse("--ensemble", "5", "--stats-branch"))
    assert model.ensemble == 5 and model.stats_branch
    config.write_text(json.dumps({"model": {"ensemble": 3, "stats_branch": True}}))
    _, model, _ = build_configs(_parse("--config", str(config), "--no-stats-branch"))
    assert model.ensemble == 3 and not model.stats_branch
    with pytest.raises(ValueError, match="folds"):
        build_configs(_parse("--folds", "1"))


def test_level_and_channel_options_override_the_config_file(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({
        "frontend": {"name": "logmel", "band_norm": "cmvn", "target_lufs": -20.0},
        "train": {"channel": {"variants": 3, "snr_db": [0.0, 20.0]}}}))
    frontend, _, train = build_configs(_parse("--config", str(config)))
    assert (frontend.loudness, frontend.band_norm, frontend.target_lufs) == ("bs1770", "cmvn",
                                                                             -20.0)
    assert train.channel.variants == 3 and train.channel.snr_db == (0.0, 20.0)
    frontend, _, train = build_configs(_parse("--config", str(config), "--loudness", "none",
                                              "--band-norm", "none", "--channel-variants", "0"))
    assert (frontend.loudness, frontend.band_norm) == ("none", "none")
    assert train.channel.variants == 0 and train.channel.snr_db == (0.0, 20.0)
    with pytest.raises(ValueError, match="variants"):
        build_configs(_parse("--channel-variants", "-2"))


def test_bars_restart_for_each_ensemble_member():
    from ser_studio.model.cli.train import Bars

    def bars_see(**fields):
        bars(ProgressEvent.from_dict(fields))

    bars = Bars()
    bars_see(event="start", folds=2, protocol="grouped-k-fold", epochs=3)
    bars_see(event="fold_start", fold=1)
    for member in (1, 2):
        for epoch in (1, 2):
            bars_see(event="epoch", epoch=epoch, train_loss=0.5, member=member, members=2)
    assert bars.epochs.desc == "fold 1 · network 2/2" and bars.epochs.n == 2
    bars_see(event="final_start", epochs=4)
    bars_see(event="final_epoch", epoch=1, train_loss=0.5, member=1, members=2)
    assert bars.epochs.desc == "final model" and bars.epochs.n == 1
    bars_see(event="final_epoch", epoch=1, train_loss=0.5, member=2, members=2)
    assert bars.epochs.desc == "final model · network 2/2" and bars.epochs.total == 4
    bars.close()


def test_bars_show_the_files_of_each_extraction_stage(capsys):
    from ser_studio.model.cli.train import Bars

    bars = Bars()
    bars(ProgressEvent("start", folds=2, protocol="grouped-k-fold", epochs=3))
    for done in (0, 40, 70):
        bars(ProgressEvent("extract", stage="features", files_done=done, files_total=120,
                           elapsed_s=done / 10))
    assert (bars.files.desc, bars.files.n, bars.files.total) == ("features", 70, 120)
    bars(ProgressEvent("extract", stage="features", files_done=120, files_total=120,
                       elapsed_s=12.0))
    assert bars.files is None  # the stage is over: its bar is gone
    bars(ProgressEvent("fold_start", fold=1))
    bars(ProgressEvent("extract", stage="channel variants", files_done=5, files_total=50,
                       elapsed_s=1.0))
    assert (bars.files.desc, bars.files.n) == ("channel variants", 5)
    bars.close()
    assert "features:   0%| " in capsys.readouterr().err


def test_bars_draw_the_json_lines_a_run_wrote(json_run, capsys):
    """The bars read the same records the JSON lines carry (ProgressEvent.from_json)."""
    from ser_studio.model.cli.train import Bars

    _, stdout, _ = json_run
    bars = Bars()
    for line in stdout.splitlines():
        bars(ProgressEvent.from_json(line))
    err = capsys.readouterr().err
    assert "fold 1: WA" in err and "(best epoch" in err
    assert bars.folds.n == 1 and bars.epochs.total >= 1


def test_set_reaches_any_field_and_options_go_through_the_same_path(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"augment": {"warp_prob": 0.2}}}))
    frontend, model, train = build_configs(_parse(
        "--config", str(config), "--set", "train.augment.warp_range=[0.8, 1.2]",
        "--set", "train.label_smoothing=0.1", "--set", "frontend.band_norm=cmvn",
        "--set", "model.use_posenc=false", "--epochs", "9"))
    assert train.augment.warp_range == (0.8, 1.2) and train.augment.warp_prob == 0.2
    assert train.label_smoothing == 0.1 and train.epochs == 9
    assert frontend.band_norm == "cmvn" and model.use_posenc is False
    assert train_cmd.config_overrides(_parse("--no-adain", "--lr", "0.01")) == {
        "model.use_adain": False, "train.lr": 0.01}
    with pytest.raises(ValueError, match="TrainConfig.lr: 'fast' \\(a string\\)"):
        build_configs(_parse("--set", "train.lr=fast"))
    with pytest.raises(ValueError, match="unknown keys \\['lrate'\\]"):
        build_configs(_parse("--set", "train.lrate=0.1"))
    with pytest.raises(ValueError, match="no config section 'optim'"):
        build_configs(_parse("--set", "optim.lr=0.1"))
    with pytest.raises(ValueError, match="SECTION.FIELD=VALUE"):
        build_configs(_parse("--set", "lr"))
    with pytest.raises(ValueError, match="model.input_dim: cannot be set; the run sets it"):
        build_configs(_parse("--set", "model.input_dim=96"))  # derived from the frontend


def test_a_run_json_from_before_the_high_pass_repeats_without_it_and_a_recipe_gets_it():
    """A run.json lists every field but the derived ones; one without highpass_hz predates the filter, and its
    resumed or repeated folds must be computed as the finished ones were. A recipe (no "run"
    section) names only what it changes and gets today's default."""
    from ser_studio.model.audio.highpass import DEFAULT_CUTOFF_HZ
    from ser_studio.model.config.run import configs_from_sections

    frontend = {"name": "logmel", "loudness": "bs1770"}
    old_run = {"frontend": frontend, "run": {"final": True, "max_folds": None}}
    assert configs_from_sections(old_run)[0].highpass_hz == 0.0
    assert configs_from_sections({"frontend": frontend})[0].highpass_hz == DEFAULT_CUTOFF_HZ
    written = {"frontend": {**frontend, "highpass_hz": 80.0}, "run": {}}
    assert configs_from_sections(written)[0].highpass_hz == 80.0
