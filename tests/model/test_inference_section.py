"""The checkpoint's inference section (model.config.inference): the trainer writes it, exports
copy it, inference reads its crop and speaker standardisation from it and never from the
training config, and checkpoints and exports written before it existed load with the section
their training config gave, behaving as they did."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ser_studio.model.config.inference import InferenceConfig, inference_section
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.constants import SAMPLE_RATE
from ser_studio.model.inference.predictor import Predictor, default_model_path
from ser_studio.model.networks.checkpoint import (Checkpoint, CheckpointError, load_checkpoint,
                                                  save_checkpoint, ship_checkpoint)
from ser_studio.model.networks.registry import build_network
from tests.model.test_checkpoint import edit_sidecar

LABELS = ["angry", "happy", "sad"]
# what inference needs differs from what training leaves at its defaults (10 s, "global")
TRAIN = TrainConfig(eval_max_seconds=2.0, speaker_norm="speaker", epochs=3)


def save(path, train=TRAIN, inference=None, seed=0):
    """A random baseline log-mel network saved as a checkpoint; the weights path."""
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=len(LABELS), hidden=16,
                      frame_pool=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel", loudness="none"), model=cfg,
                      train=train, labels=list(LABELS), norm_mean=[-7.0 + 0.01 * i
                                                                   for i in range(80)],
                      norm_std=[2.0 + 0.02 * i for i in range(80)],
                      state_dict=build_network(cfg).state_dict(), inference=inference)
    return save_checkpoint(ckpt, path)


def glide(seconds: float, seed: int = 0) -> np.ndarray:
    """A gliding tone with noise: every second sounds different, so crops differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * (120 + 200 * t) * t) + 0.02 * rng.standard_normal(t.size)
    return wav.astype(np.float32)


def test_the_section_is_derived_from_the_training_config_as_inference_read_it():
    assert inference_section(TRAIN) == InferenceConfig(crop_seconds=2.0, speaker_norm="speaker")
    assert inference_section(TrainConfig(eval_max_seconds=0.0)).crop_seconds == 0.0
    assert inference_section(None) == InferenceConfig(crop_seconds=0.0, speaker_norm="global")
    with pytest.raises(ValueError, match="InferenceConfig.speaker_norm"):
        InferenceConfig(speaker_norm="voice")
    with pytest.raises(ValueError, match="InferenceConfig.crop_seconds"):
        InferenceConfig(crop_seconds=-1.0)


def test_the_trainers_checkpoint_carries_the_section_in_its_sidecar(tmp_path):
    weights = save(tmp_path / "m.safetensors")
    doc = json.loads(weights.with_suffix(".json").read_text())
    assert doc["inference"] == {"crop_seconds": 2.0, "speaker_norm": "speaker"}
    assert load_checkpoint(weights).inference == InferenceConfig(2.0, "speaker")


def test_inference_reads_the_section_and_not_the_training_config(tmp_path, capsys):
    """A sidecar whose section says 1 s and "global" while its train config says 2 s and
    "speaker": the Predictor crops to 1 s and ``predict`` gives no calibration hint."""
    from ser_studio.model.cli.predict import _hint_calibration

    weights = save(tmp_path / "m.safetensors")
    edit_sidecar(weights, inference={"crop_seconds": 1.0, "speaker_norm": "global"})
    predictor = Predictor.load(weights, runtime="torch")
    assert predictor.checkpoint.train.eval_max_seconds == 2.0
    assert predictor.max_seconds == 1.0
    wav = glide(3.0)
    centre = wav[SAMPLE_RATE:2 * SAMPLE_RATE]
    np.testing.assert_array_equal(predictor.predict(wav, vad=False).probs,
                                  predictor.predict(centre, vad=False).probs)
    assert not np.array_equal(predictor.predict(wav[:2 * SAMPLE_RATE], vad=False).probs,
                              predictor.predict(centre, vad=False).probs)
    _hint_calibration(predictor)
    assert "calibration" not in capsys.readouterr().err
    edit_sidecar(weights, inference={"crop_seconds": 0.0, "speaker_norm": "speaker"})
    whole = Predictor.load(weights, runtime="torch")
    assert whole.max_seconds is None  # 0: the whole input


def test_predict_hints_at_calibration_from_the_section(tmp_path, capsys):
    from ser_studio.model.cli.predict import _hint_calibration

    weights = save(tmp_path / "m.safetensors", train=TrainConfig())
    edit_sidecar(weights, inference={"crop_seconds": 10.0, "speaker_norm": "speaker"})
    _hint_calibration(Predictor.load(weights, runtime="torch"))
    assert "expects calibration" in capsys.readouterr().err


@pytest.mark.parametrize("train", [TRAIN, None])
def test_a_checkpoint_from_before_the_section_behaves_as_before(tmp_path, train):
    """An old-format sidecar (no "inference") loads with the section its train config gives
    and predicts exactly as a checkpoint that carries that section."""
    new = save(tmp_path / "new.safetensors", train=train)
    old = save(tmp_path / "old.safetensors", train=train)
    edit_sidecar(old, inference=KeyError)
    assert "inference" not in json.loads(old.with_suffix(".json").read_text())
    loaded = load_checkpoint(old)
    assert loaded.inference == inference_section(train)
    predictors = [Predictor.load(path, runtime="torch") for path in (old, new)]
    assert predictors[0].max_seconds == (2.0 if train else None) == predictors[1].max_seconds
    wav = glide(3.5, seed=1)
    np.testing.assert_array_equal(predictors[0].predict(wav, vad=False).probs,
                                  predictors[1].predict(wav, vad=False).probs)


@pytest.mark.parametrize("section, message", [
    ({"crop": 1.0}, "InferenceConfig: unknown keys \\['crop'\\]"),
    ({"crop_seconds": "10"}, "InferenceConfig.crop_seconds"),
    ({"speaker_norm": "voice"}, "InferenceConfig.speaker_norm"),
    ([1.0], "InferenceConfig: expected an object"),
])
def test_a_malformed_section_is_refused_naming_the_sidecar(tmp_path, section, message):
    weights = save(tmp_path / "m.safetensors")
    edit_sidecar(weights, inference=section)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(weights)
    assert str(weights.with_suffix(".json")) in str(caught.value)


def test_the_export_carries_the_section_and_an_older_export_derives_it(tmp_path):
    from ser_studio.model.exported.runtime import load_onnx_model
    from ser_studio.model.exported.write import export_model

    weights = save(tmp_path / "m.safetensors")
    edit_sidecar(weights, inference={"crop_seconds": 1.5, "speaker_norm": "global"})
    result = export_model(weights, tmp_path / "exported.onnx")
    doc = json.loads(result.sidecar.read_text())
    assert doc["inference"] == {"crop_seconds": 1.5, "speaker_norm": "global"}
    assert load_onnx_model(result.network)[0].inference == InferenceConfig(1.5, "global")
    assert Predictor.load(result.network).max_seconds == 1.5
    doc.pop("inference")  # an export written before the section: its train config's values
    result.sidecar.write_text(json.dumps(doc))
    assert load_onnx_model(result.network)[0].inference == InferenceConfig(2.0, "speaker")
    doc["inference"] = {"speaker_norm": "nobody"}
    result.sidecar.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="InferenceConfig.speaker_norm"):
        load_onnx_model(result.network)


def test_ship_writes_the_section_of_an_older_checkpoint(tmp_path):
    old = save(tmp_path / "old.safetensors")
    edit_sidecar(old, inference=KeyError)
    shipped = ship_checkpoint(old, tmp_path / "assets" / "default_model.safetensors")
    doc = json.loads(shipped.with_suffix(".json").read_text())
    assert doc["shipped"] is True
    assert doc["inference"] == {"crop_seconds": 2.0, "speaker_norm": "speaker"}
    assert shipped.read_bytes() == old.read_bytes()


def test_the_shipped_model_derives_its_section_and_gives_the_same_probabilities(tmp_path):
    """assets/default_model.json predates the section: it loads with 10 s and "global", and a
    copy whose sidecar carries that section explicitly gives bit-identical probabilities."""
    if not default_model_path().is_file():
        pytest.skip("the default model is not installed")
    doc = json.loads(default_model_path().with_suffix(".json").read_text())
    shipped = Predictor.load(runtime="torch")
    assert shipped.checkpoint.inference == inference_section(shipped.checkpoint.train)
    assert shipped.max_seconds == doc["train"]["eval_max_seconds"] == 10.0
    assert shipped.checkpoint.inference.speaker_norm == doc["train"]["speaker_norm"]
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(default_model_path().read_bytes())
    doc["inference"] = {"crop_seconds": 10.0, "speaker_norm": "global"}
    copy.with_suffix(".json").write_text(json.dumps(doc))
    explicit = Predictor.load(copy, runtime="torch")
    wav = glide(12.0, seed=2)
    np.testing.assert_array_equal(shipped.predict(wav, vad=False).probs,
                                  explicit.predict(wav, vad=False).probs)
