"""The run description (model.config.run): fields declared ``derived`` in the config schema are
set by the run from its data, so run.json neither writes nor reads them, an override of one is
refused, and training sets them through ``fill_derived`` only."""
from __future__ import annotations

import dataclasses
import logging

import pytest

from ser_studio.model.config.checks import derived_fields, fill_derived
from ser_studio.model.config.run import (apply_overrides, configs_from_sections, derived_paths,
                                         describe_run)
from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig,
                                            TrainConfig)
from ser_studio.model.constants import N_MELS

DERIVED = {"model.input_dim", "model.input_layers", "model.n_classes", "model.n_speakers"}


def test_the_derived_fields_are_declared_once_in_the_schema():
    declared = {f"model.{f.name}" for f in dataclasses.fields(ModelConfig)
                if "derived" in f.metadata}
    assert set(derived_paths()) == declared == DERIVED
    assert derived_fields(ModelConfig)["input_dim"] == "the frontend's feature dimension"
    assert derived_fields(FrontendConfig) == derived_fields(TrainConfig) == {}


def test_run_json_leaves_the_derived_fields_out(tmp_path):
    model = ModelConfig(input_dim=96, input_layers=3, n_classes=5, n_speakers=7, hidden=32,
                        attn_heads=4)
    sections = describe_run(FrontendConfig(), model, TrainConfig(), corpus=str(tmp_path))
    assert not {"input_dim", "input_layers", "n_classes", "n_speakers"} & set(sections["model"])
    assert sections["model"]["hidden"] == 32 and "highpass_hz" in sections["frontend"]
    _, again, _ = configs_from_sections(sections)
    assert (again.hidden, again.attn_heads, again.input_dim) == (32, 4, N_MELS)


def test_a_derived_field_in_a_config_is_ignored_and_a_changed_one_named(caplog):
    sections = {"model": {"input_dim": 96, "n_classes": 4, "hidden": 32, "attn_heads": 4}}
    with caplog.at_level(logging.WARNING, logger="ser_studio.model.config.run"):
        _, model, _ = configs_from_sections(sections)
    assert (model.input_dim, model.n_classes, model.hidden) == (N_MELS, 4, 32)
    assert sections["model"]["input_dim"] == 96  # the caller's object is left as it was
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ["model.input_dim = 96 ignored: the run sets it from the frontend's "
                      "feature dimension"]  # n_classes holds the default: nothing to say


def test_an_override_of_a_derived_field_is_refused():
    with pytest.raises(ConfigError, match="model.n_speakers: cannot be set; the run sets it "
                                          "from each fold's training speakers"):
        apply_overrides({}, {"model.hidden": 32, "model.n_speakers": 3})
    assert apply_overrides({}, {"model.hidden": 32}) == {"model": {"hidden": 32}}


def test_training_sets_derived_fields_only():
    cfg = fill_derived(ModelConfig(hidden=32, attn_heads=4), input_dim=96, n_speakers=6)
    assert (cfg.input_dim, cfg.n_speakers, cfg.hidden) == (96, 6, 32)
    with pytest.raises(ValueError, match=r"ModelConfig: \['hidden'\] are not derived fields"):
        fill_derived(ModelConfig(), input_dim=96, hidden=64)
