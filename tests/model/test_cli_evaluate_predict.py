"""``main.py evaluate`` and ``main.py predict`` on a small synthetic corpus and made-up files."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from ser_studio.model.cli import evaluate as evaluate_cmd
from ser_studio.model.cli import predict as predict_cmd
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference import predictor as inference
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.networks.registry import build_network

LABELS = ["angry", "happy", "neutral", "sad"]



def run_cli(argv: list[str]) -> int:
    """Parse and run one of the two commands, as model.cli.main does."""
    parser = argparse.ArgumentParser(prog="main.py")
    sub = parser.add_subparsers(dest="command")
    evaluate_cmd.add_parser(sub)
    predict_cmd.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _checkpoint(path, labels=LABELS):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="enhanced", input_dim=80, n_classes=len(labels), hidden=16,
                      gru_layers=1, attn_heads=2, frame_pool=3)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg,
                      train=TrainConfig(eval_max_seconds=4.0), labels=list(labels),
                      norm_mean=[-6.0] * 80, norm_std=[3.0] * 80,
                      state_dict=build_network(cfg).state_dict())
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """speech.wav (~4 s espeak-ng), long.wav (3 s silence + speech + speech), silence.wav,
    noise.wav, garbage.wav (not audio) and a missing path."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("audio")
    raw = folder / "raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "The quick brown fox jumps over the lazy "
                    "dog. I am very happy today."], check=True, capture_output=True)
    from ser_studio.model.audio.io import load_audio

    speech = load_audio(raw)
    rng = np.random.default_rng(0)
    files = {
        "speech": (speech, folder / "speech.wav"),
        "long": (np.concatenate([np.zeros(3 * SAMPLE_RATE), speech, speech]), folder / "long.wav"),
        "silence": (np.zeros(2 * SAMPLE_RATE), folder / "silence.wav"),
        "noise": (0.2 * rng.standard_normal(3 * SAMPLE_RATE), folder / "noise.wav"),
    }
    out = {}
    for name, (wav, path) in files.items():
        sf.write(path, wav.astype(np.float32), SAMPLE_RATE)
        out[name] = path
    out["garbage"] = folder / "garbage.wav"
    out["garbage"].write_bytes(b"not audio" * 100)
    out["missing"] = folder / "missing.wav"
    return out


def test_evaluate_json(model_path, synth_corpus, cache_dir, capsys):
    code = run_cli(["evaluate", "--model", str(model_path), "--corpus", str(synth_corpus),
                    "--cache", str(cache_dir), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["labels"] == LABELS and result["n"] == 160
    for key in ("wa", "ua", "macro_f1"):
        assert 0.0 <= result[key] <= 1.0
    confusion = np.asarray(result["confusion"])
    assert confusion.shape == (4, 4) and confusion.sum() == 160
    assert (confusion.sum(axis=1) == 40).all()                # 40 utterances per class
    assert result["wa"] == pytest.approx(np.trace(confusion) / 160)
    assert len(result["per_speaker"]) == 10 and sorted(result["per_gender"]) == ["F", "M"]
    assert sum(s["n"] for s in result["per_speaker"].values()) == 160
    assert result["model"] == str(model_path)


def test_evaluate_human_output_and_cache_reuse(model_path, synth_corpus, cache_dir, capsys):
    code = run_cli(["evaluate", "--model", str(model_path), "--corpus", str(synth_corpus),
                    "--cache", str(cache_dir), "--classes", "angry,sad"])
    out = capsys.readouterr().out
    assert code == 0
    assert "WA" in out and "UA" in out and "macro-F1" in out and "(n=80)" in out
    assert "confusion (rows true, columns predicted)" in out and "Ses05M" in out


def test_evaluate_labels_unknown_to_the_model(tmp_path, synth_corpus, cache_dir, capsys):
    three = _checkpoint(tmp_path / "three.safetensors", labels=["angry", "happy", "neutral"])
    code = run_cli(["evaluate", "--model", str(three), "--corpus", str(synth_corpus),
                    "--cache", str(cache_dir), "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert "['sad']" in err and "not known to the model" in err and "--classes" in err


def test_evaluate_bad_model_and_corpus(tmp_path, synth_corpus, model_path, capsys):
    assert run_cli(["evaluate", "--model", str(tmp_path / "none.safetensors"),
                    "--corpus", str(synth_corpus)]) == 2
    assert "none" in capsys.readouterr().err
    assert run_cli(["evaluate", "--model", str(model_path),
                    "--corpus", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_predict_json_lines(model_path, audio_files, capsys):
    names = ["speech", "silence", "garbage", "long", "missing", "noise"]
    code = run_cli(["predict", *(str(audio_files[n]) for n in names), "--model",
                    str(model_path), "--json"])
    captured = capsys.readouterr()
    assert code == 1                                          # two files failed
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["path"] for r in rows] == [str(audio_files[n]) for n in names]
    speech, silence, garbage, long, missing, noise = rows
    assert speech["label"] in LABELS and speech["speech"] is True
    assert sum(speech["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    # ~4.3 s: windows 0-3, 1-4 and 1.3-4.3 (the last one aligned to the end)
    assert [(w["start_s"], w["end_s"]) for w in speech["windows"]][:2] == [(0.0, 3.0), (1.0, 4.0)]
    assert len(speech["windows"]) == 3 and speech["windows"][2]["end_s"] == speech["duration_s"]
    for quiet in (silence, noise):
        assert quiet["label"] is None and quiet["speech"] is False
        assert set(quiet["probs"].values()) == {0.0}
    assert "garbage.wav" in garbage["error"] and "missing.wav" in missing["error"]
    assert long["label"] in LABELS and len(long["windows"]) > 5
    assert long["windows"][0]["label"] is None                # 3 s of silence first
    assert long["windows"][-1]["end_s"] == pytest.approx(long["duration_s"])
    assert "garbage.wav" in captured.err and "missing.wav" in captured.err


def test_predict_human_output_and_no_vad(model_path, audio_files, capsys):
    code = run_cli(["predict", str(audio_files["silence"]), str(audio_files["long"]),
                    "--model", str(model_path), "--window", "2", "--hop", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith(f"{audio_files['silence']}: no speech detected")
    assert out[1] == "  warning: no signal: the input is digital silence"
    assert out[2].startswith(f"{audio_files['long']}: ")
    assert any("0.0-   2.0 s  no speech detected" in line for line in out[2:])
    assert run_cli(["predict", str(audio_files["silence"]), "--model", str(model_path),
                    "--no-vad", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] in LABELS and row["speech_ratio"] is None


def test_predict_json_reports_the_input_loudness_and_the_gain(model_path, audio_files,
                                                              tmp_path, capsys):
    """A file 20 dB quieter measures 20 LU lower; a normalising model applies 20 dB more gain."""
    import soundfile as sf

    from ser_studio.model.networks.checkpoint import load_checkpoint

    wav, rate = sf.read(audio_files["long"], dtype="float32")
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, wav * 0.1, rate)
    assert run_cli(["predict", str(audio_files["long"]), str(quiet), "--model",
                    str(model_path), "--json"]) == 0
    loud_row, quiet_row = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert quiet_row["input_loudness_lufs"] == pytest.approx(
        loud_row["input_loudness_lufs"] - 20.0, abs=0.05)
    assert quiet_row["input_peak_dbfs"] == pytest.approx(loud_row["input_peak_dbfs"] - 20.0,
                                                         abs=0.05)
    if load_checkpoint(model_path).frontend.loudness == "none":
        assert loud_row["gain_db"] == quiet_row["gain_db"] == 0.0
    else:
        assert quiet_row["gain_db"] == pytest.approx(loud_row["gain_db"] + 20.0, abs=0.05)


def test_predict_without_a_default_model(monkeypatch, tmp_path, audio_files, capsys):
    monkeypatch.setattr(inference, "default_model_path", lambda: tmp_path / "x.safetensors")
    assert run_cli(["predict", str(audio_files["speech"])]) == 2
    err = capsys.readouterr().err
    assert "python main.py train" in err and "--model" in err


@pytest.mark.parametrize("option,value", [
    ("--hop", "0"), ("--hop", "-1"), ("--hop", "nan"), ("--hop", "inf"), ("--hop", "0.0001"),
    ("--window", "0"), ("--window", "-2"), ("--window", "nan"), ("--window", "inf"),
    ("--window", "0.01")])
def test_predict_rejects_bad_window_and_hop_naming_the_option(model_path, audio_files, capsys,
                                                               option, value):
    speech = str(audio_files["speech"])
    assert run_cli(["predict", speech, "--model", str(model_path), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} ") and "at least" in err
    assert speech not in err  # the option's fault, not the file's


def test_a_file_shorter_than_an_utterance_is_said_to_be_too_short(model_path, tmp_path, capsys):
    """Not "raise the input gain": the file, its length and the minimum (exit 1)."""
    t = np.arange(int(0.05 * 44_100)) / 44_100
    short = tmp_path / "blip.wav"
    sf.write(short, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44_100)
    assert run_cli(["predict", str(short), "--model", str(model_path), "--json"]) == 1
    captured = capsys.readouterr()
    assert "gain" not in captured.err + captured.out
    assert f"{short}: too short: 0.05 s of audio" in captured.err and "0.25 s" in captured.err
    assert "too short" in json.loads(captured.out)["error"]


def test_commands_are_registered_in_the_main_dispatcher(model_path, audio_files, capsys):
    from ser_studio.model.cli.main import main

    assert main(["predict", str(audio_files["speech"]), "--model", str(model_path),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in LABELS


def test_a_checkpoint_that_gives_nan_is_an_error_naming_it(audio_files, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=4, hidden=16, frame_pool=3)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in build_network(cfg).state_dict().items()}
    path = save_checkpoint(Checkpoint(frontend=FrontendConfig(name="logmel"), model=cfg,
                                      train=None, labels=list(LABELS), state_dict=state),
                           tmp_path / "broken.safetensors")
    code = run_cli(["predict", str(audio_files["speech"]), "--model", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    row = json.loads(captured.out)
    assert "label" not in row and "non-finite" in row["error"] and str(path) in row["error"]
    assert "non-finite" in captured.err


def test_predict_long_file_shows_a_progress_bar_on_stderr_only(model_path, tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "long noise.wav"
    sf.write(path, (0.01 * rng.standard_normal(40 * SAMPLE_RATE)).astype(np.float32),
             SAMPLE_RATE)
    assert run_cli(["predict", str(path), "--model", str(model_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["duration_s"] == 40.0     # stdout: the JSON alone
    assert "long noise.wav: " in captured.err and "/40 s" in captured.err     # a bar
    assert run_cli(["predict", str(path), "--model", str(model_path), "--json",
                    "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
