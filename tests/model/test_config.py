"""Config values are checked for type and range wherever they come from, and the error names
the field, the value and what is allowed."""
from __future__ import annotations

import json

import pytest

from ser_studio.model.config.schema import (AugmentConfig, ChannelConfig, ConfigError,
                                            FrontendConfig, ModelConfig, TrainConfig,
                                            config_from_dict, train_config_from_dict)
from ser_studio.model.networks.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("build,message", [
    (lambda: train_config_from_dict({"lr": "0.001"}), "TrainConfig.lr: '0.001' (a string) is not a number"),
    (lambda: config_from_dict(ModelConfig, {"stats_branch": "no"}), "ModelConfig.stats_branch: 'no' (a string) is not true or false"),
    (lambda: train_config_from_dict({"augment": {"noise_prob": 7.0}}), "AugmentConfig.noise_prob: 7.0 (float) is not a probability in [0, 1]"),
    (lambda: train_config_from_dict({"augment": {"stretch_range": [1.2, 0.8]}}), "AugmentConfig.stretch_range: (1.2, 0.8) (a list) is not a range [low, high] with low <= high"),
    (lambda: train_config_from_dict({"epochs": 2.5}), "TrainConfig.epochs: 2.5 (float) is not a whole number"),
    (lambda: train_config_from_dict({"channel": {"variants": True}}), "ChannelConfig.variants: True (true/false) is not a whole number"),
    (lambda: config_from_dict(FrontendConfig, {"target_lufs": "loud"}), "FrontendConfig.target_lufs: 'loud' (a string) is not a number"),
])
def test_wrong_types_and_ranges_are_refused_by_name(build, message):
    with pytest.raises(ConfigError) as caught:
        build()
    assert str(caught.value) == message


def test_numbers_and_lists_are_normalised():
    cfg = train_config_from_dict({"lr": 1, "augment": {"warp_range": [0.9, 1.1]}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.augment.warp_range == (0.9, 1.1)
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        TrainConfig(lr=-1.0)  # the same checks when built in code
    with pytest.raises(ValueError, match="ChannelConfig.prob"):
        ChannelConfig(prob=2)
    assert AugmentConfig().off().noise_prob == 0.0


def test_a_checkpoint_sidecar_with_a_wrong_type_is_refused(tmp_path):
    from ser_studio.model.networks.checkpoint import Checkpoint
    from ser_studio.model.networks.registry import build_network

    cfg = ModelConfig(arch="baseline", input_dim=80, n_classes=2, hidden=16)
    path = save_checkpoint(Checkpoint(frontend=FrontendConfig(), model=cfg, train=TrainConfig(),
                                      labels=["a", "b"],
                                      state_dict=build_network(cfg).state_dict()),
                           tmp_path / "m.safetensors")
    sidecar = path.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    doc["train"]["batch_size"] = "16"
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="TrainConfig.batch_size: '16'"):
        load_checkpoint(path)


def test_log_mel_only_augmentations_are_refused_with_other_features():
    from ser_studio.model.config.schema import check_run_configs

    warp = TrainConfig(augment=AugmentConfig(warp_prob=0.5))
    check_run_configs(FrontendConfig(name="logmel"), warp)
    with pytest.raises(ConfigError, match="train.augment.warp_prob = 0.5 acts on log-mel"):
        check_run_configs(FrontendConfig(name="hubert"), warp)
    gain = TrainConfig(augment=AugmentConfig(gain_prob=0.5))
    with pytest.raises(ConfigError, match="band_norm = 'cmvn'"):
        check_run_configs(FrontendConfig(name="logmel", band_norm="cmvn"), gain)


@pytest.mark.parametrize("data,message", [
    ({"hidden": 100, "attn_heads": 8}, "hidden = 100 must be divisible by attn_heads = 8"),
])
def test_cross_field_model_rules_are_refused_with_the_values(data, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(ModelConfig, data)
    assert config_from_dict(ModelConfig, {**data, "use_self_attention": False}).hidden == 100
    assert config_from_dict(ModelConfig, {**data, "arch": "baseline"}).hidden == 100


def test_speaker_norm_choices():
    assert TrainConfig(speaker_norm="speaker").speaker_norm == "speaker"
    assert TrainConfig(speaker_norm="corpus").speaker_norm == "corpus"
    with pytest.raises(ValueError) as caught:
        TrainConfig(speaker_norm="voice")
    assert str(caught.value) == ("TrainConfig.speaker_norm: 'voice' (a string) is not one of "
                                 "['global', 'speaker', 'corpus']")
    with pytest.raises(ValueError, match=r"FrontendConfig.name: 'ge2e\+ge2e' \(a string\) is "
                                         r"not one of \[.*\] or several of them joined"):
        FrontendConfig(name="ge2e+ge2e")
    assert FrontendConfig(name="speech_embedding+ge2e").name == "speech_embedding+ge2e"
