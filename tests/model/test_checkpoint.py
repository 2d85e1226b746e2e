"""Checkpoints: a round trip with a real module, and every kind of file that must be refused
(above all a pickle, which must never be unpickled)."""
from __future__ import annotations

import hashlib
import json
import pathlib
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from ser_studio.model.config.schema import AugmentConfig, FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.networks.checkpoint import (Checkpoint, CheckpointError, load_checkpoint,
                                                  save_checkpoint)

LABELS = ["angry", "happy", "neutral"]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 6, batch_first=True)
        self.head = nn.Linear(6, len(LABELS))

    def forward(self, x):
        return self.head(self.gru(x)[0][:, -1])


def make_checkpoint(seed=0, train=True) -> tuple[Checkpoint, TinyNet]:
    torch.manual_seed(seed)
    net = TinyNet()
    return Checkpoint(
        frontend=FrontendConfig(name="hubert", encoder="/models/hubert", layer_mode="weighted"),
        model=ModelConfig(arch="baseline", input_dim=8, n_classes=3, hidden=6),
        train=TrainConfig(epochs=3, lr=3e-4, augment=AugmentConfig(stretch_range=(0.9, 1.1)))
        if train else None,
        labels=list(LABELS), speakers=["Ses01F", "Ses01M"],
        norm_mean=[0.5 * i for i in range(8)], norm_std=[1.0 + i for i in range(8)],
        metrics={"wa": np.float32(0.625), "per_speaker": {"Ses01F": {"accuracy": 0.5, "n": 4}},
                 "confusion": np.array([[1, 0, 0], [0, 2, 1], [0, 0, 3]])},
        state_dict=net.state_dict(),
    ), net


@pytest.fixture
def saved(tmp_path):
    ckpt, net = make_checkpoint()
    return save_checkpoint(ckpt, tmp_path / "run" / "model"), ckpt, net


def test_round_trip_from_each_name(saved):
    weights, ckpt, net = saved
    assert weights.name == "model.safetensors" and weights.with_suffix(".json").is_file()
    x = torch.randn(2, 5, 8)
    for name in (weights, weights.with_suffix(".json"), weights.with_suffix("")):
        loaded = load_checkpoint(name)
        assert (loaded.frontend, loaded.model, loaded.train) == (ckpt.frontend, ckpt.model,
                                                                  ckpt.train)
        assert loaded.train.augment.stretch_range == (0.9, 1.1)
        assert (loaded.labels, loaded.speakers) == (LABELS, ["Ses01F", "Ses01M"])
        assert loaded.norm_mean == ckpt.norm_mean and loaded.norm_std == ckpt.norm_std
        assert loaded.metrics["wa"] == pytest.approx(0.625)
        assert loaded.metrics["confusion"] == [[1, 0, 0], [0, 2, 1], [0, 0, 3]]
        assert loaded.state_dict.keys() == ckpt.state_dict.keys()
        fresh = TinyNet()
        fresh.load_state_dict(loaded.state_dict)
        assert torch.equal(fresh(x), net(x))


def test_the_training_languages_round_trip_and_older_checkpoints_have_none(tmp_path, saved):
    ckpt, _ = make_checkpoint()
    ckpt.languages = {"Polish": 30, "English": 6}
    loaded = load_checkpoint(save_checkpoint(ckpt, tmp_path / "heard.safetensors"))
    assert loaded.languages == {"Polish": 30, "English": 6}
    assert load_checkpoint(saved[0]).languages == {}
    edit_sidecar(saved[0], languages=KeyError)  # written before the entry existed
    assert load_checkpoint(saved[0]).languages == {}


def test_round_trip_without_train_config(tmp_path):
    ckpt, _ = make_checkpoint(train=False)
    assert load_checkpoint(save_checkpoint(ckpt, tmp_path / "m.safetensors")).train is None


def test_sidecar_describes_itself(saved):
    doc = json.loads(saved[0].with_suffix(".json").read_text())
    assert doc["format"] == "ser-studio-checkpoint" and doc["version"] == 1
    assert doc["model"]["input_dim"] == 8 and doc["frontend"]["layer_mode"] == "weighted"


class _Trap:
    """Unpickling this touches a marker file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_a_pickle_file_is_refused_and_never_unpickled(tmp_path, saved):
    marker = tmp_path / "unpickled"
    for proto in (2, 4):
        trap = tmp_path / f"model{proto}.pt"
        trap.write_bytes(pickle.dumps(_Trap(marker), protocol=proto))
        with pytest.raises(CheckpointError, match="pickle") as err:
            load_checkpoint(trap)
        assert str(trap) in str(err.value)
    weights = saved[0]  # a pickle under the right name, next to a valid sidecar
    weights.write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(weights.with_suffix(".json"))
    assert not marker.exists()


def test_a_torch_save_file_is_refused(tmp_path, saved):
    torch.save(saved[2].state_dict(), tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "model.pth")
    torch.save(saved[2].state_dict(), saved[0])
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(saved[0])


def edit_sidecar(weights, **changes):
    sidecar = weights.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    sidecar.write_text(json.dumps(doc))


@pytest.mark.parametrize("changes, message", [
    ({"format": "something-else"}, "not a ser-studio checkpoint"),
    ({"version": 2}, "version 2 is not supported"),
    ({"extra": 1}, "unknown keys \\['extra'\\]"),
    ({"labels": KeyError}, "missing keys \\['labels'\\]"),
    ({"model": {"hiden": 6}}, "ModelConfig: unknown keys \\['hiden'\\]"),
    ({"train": {"augment": {"noise": 1}}}, "AugmentConfig: unknown keys"),
    ({"frontend": {"name": "mfcc"}}, "mfcc"),
    ({"labels": ["a", 3, "c"]}, "malformed entries \\['labels'\\]"),
    ({"labels": ["a", "b"]}, "2 labels but the model has n_classes=3"),
    ({"norm_std": [1.0] * 7}, "norm_mean/norm_std have lengths 8/7"),
    ({"languages": ["English"]}, "malformed entries \\['languages'\\]"),
    ({"languages": {"English": 0}}, "malformed entries \\['languages'\\]"),
    ({"languages": {"": 3}}, "malformed entries \\['languages'\\]"),
])
def test_bad_sidecars_are_refused(saved, changes, message):
    edit_sidecar(saved[0], **changes)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(saved[0])
    assert str(saved[0].with_suffix(".json")) in str(err.value)


def test_other_files_are_refused(tmp_path, saved):
    weights, sidecar = saved[0], saved[0].with_suffix(".json")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a ser-studio checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="description not found"):
        load_checkpoint(tmp_path / "absent")
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        load_checkpoint(weights)


def test_weights_must_match_their_sidecar(tmp_path, saved):
    weights = saved[0]
    other = save_checkpoint(make_checkpoint(seed=1)[0], tmp_path / "other")
    weights.write_bytes(other.read_bytes())
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(weights)
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!")
    edit_sidecar(weights, weights_sha1=hashlib.sha1(weights.read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(weights)
    weights.unlink()
    with pytest.raises(CheckpointError, match="weights file not found") as err:
        load_checkpoint(weights.with_suffix(".json"))
    assert str(weights) in str(err.value)


def test_inconsistent_checkpoint_is_not_saved(tmp_path):
    ckpt, _ = make_checkpoint()
    ckpt.labels = ["angry", "happy"]
    with pytest.raises(CheckpointError, match="n_classes=3"):
        save_checkpoint(ckpt, tmp_path / "bad")
    assert list(tmp_path.iterdir()) == []


def test_a_renamed_pair_still_loads(saved, tmp_path):
    weights = saved[0]
    weights.rename(tmp_path / "renamed.safetensors")
    weights.with_suffix(".json").rename(tmp_path / "renamed.json")
    assert load_checkpoint(tmp_path / "renamed").labels == LABELS


def test_safetensors_whose_header_length_starts_with_0x80_is_accepted(tmp_path):
    # A safetensors file begins with its header length (8 bytes, little-endian); when the low byte
    # is 0x80 (pickle's protocol byte) it must still load. Lengthen a tensor name until it happens.
    ckpt, net = make_checkpoint()
    for k in range(1, 300):
        ckpt.state_dict = {**net.state_dict(), "pad." + "x" * k: torch.zeros(1)}
        weights = save_checkpoint(ckpt, tmp_path / "m")
        if weights.read_bytes()[0] == 0x80:
            break
    assert weights.read_bytes()[0] == 0x80
    assert set(load_checkpoint(weights).state_dict) == set(ckpt.state_dict)


def test_a_checkpoint_from_before_loudness_normalisation_behaves_as_before(tmp_path):
    """A sidecar without the normaliser's fields loads as loudness "none" and predicts from the
    samples as they are: the same probabilities as the plain log-mel frontend."""
    from ser_studio.model.features.logmel import LogMelFrontend
    from ser_studio.model.inference.predictor import Predictor
    from ser_studio.model.networks.registry import build_network

    torch.manual_seed(0)
    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=2, hidden=16, frame_pool=2)
    ckpt = Checkpoint(frontend=FrontendConfig(name="logmel", loudness="none"), model=cfg,
                      train=None, labels=["a", "b"], norm_mean=[-8.0] * 80,
                      norm_std=[3.0] * 80, state_dict=build_network(cfg).state_dict())
    weights = save_checkpoint(ckpt, tmp_path / "old.safetensors")
    sidecar = weights.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    for key in ("loudness", "target_lufs", "max_gain_db", "highpass_hz"):
        del doc["frontend"][key]
    sidecar.write_text(json.dumps(doc))
    loaded = load_checkpoint(weights)
    assert loaded.frontend.loudness == "none" and loaded.frontend.highpass_hz == 0.0
    predictor = Predictor(loaded, weights)
    wav = (np.random.default_rng(0).standard_normal(16000) * 0.01).astype(np.float32)
    expected, _ = predictor.predict_features(LogMelFrontend()(wav))
    got = predictor.predict(wav, vad=False)
    np.testing.assert_array_equal(got.probs, expected)
    louder = predictor.predict(wav * 10, vad=False)
    assert not np.allclose(louder.probs, got.probs)  # level still matters, as it did
    assert louder.level.gain_db == 0.0


def test_a_run_folder_loads_its_final_model_and_other_folders_say_what_a_model_is(
        tmp_path):
    run = tmp_path / "run"
    ckpt, _ = make_checkpoint()
    save_checkpoint(ckpt, run / "model.safetensors")
    assert load_checkpoint(run).labels == ckpt.labels
    folds = tmp_path / "folds"
    save_checkpoint(ckpt, folds / "fold_1" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"a folder, not a model.*X\.safetensors and "
                                              r"X\.json.*holds the models "
                                              r"fold_1/model\.safetensors"):
        load_checkpoint(folds)


def test_a_symlink_loop_is_named_as_one(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(CheckpointError, match="symbolic link loop"):
        load_checkpoint(tmp_path / "a")
