"""Every field of a run's configs, described generically from the dataclasses (no Qt).

The wizard builds one editor per ``FieldSpec``: a field added to FrontendConfig, ModelConfig,
TrainConfig, AugmentConfig or ChannelConfig later appears without any change here. A field's
kind comes from its declared type ("bool", "int", "float", "str", "tuple[float, float]"
-> "range", a nested config -> its fields under "section.name."). A string field made with
``model.config.checks.choice`` is a "choice" of the values its config accepts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ser_studio.model.config.checks import field_choices
from ser_studio.model.config.run import derived_paths
from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig

SECTIONS = {"frontend": FrontendConfig, "model": ModelConfig, "train": TrainConfig}
# set by the run from the frontend, the corpus and each fold, whatever the config says (the
# fields declared ``derived`` in model.config): no editor for them
DERIVED = frozenset(derived_paths())


@dataclass(frozen=True)
class FieldSpec:
    """One config field: ``path`` "section.field[.field]", its ``kind`` ("bool", "int",
    "float", "str", "choice" or "range") and, for "choice", the allowed values."""

    path: str
    kind: str
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def group(self) -> str:
        """The config the field belongs to: "frontend", "model", "train", "train.augment"..."""
        return self.path.rsplit(".", 1)[0]


def _kind(declared: str) -> str:
    if declared.startswith("tuple[float, float]"):
        return "range"
    return declared if declared in ("bool", "int", "float", "str") else ""


def describe(cls: type, prefix: str) -> list[FieldSpec]:
    """The fields of config class ``cls`` under ``prefix`` ("train"), nested configs
    flattened ("train.augment.noise_prob"), in declaration order."""
    specs = []
    for f in dataclasses.fields(cls):
        path, kind = f"{prefix}.{f.name}", _kind(str(f.type))
        if kind == "str" and field_choices(cls, f.name):
            specs.append(FieldSpec(path, "choice", field_choices(cls, f.name)))
        elif kind:
            specs.append(FieldSpec(path, kind))
        else:
            nested = type(f.default_factory()) if f.default_factory is not dataclasses.MISSING \
                else type(f.default)
            specs += describe(nested, path)
    return specs


def all_fields() -> list[FieldSpec]:
    """Every field of the three configs a user may set (DERIVED ones left out)."""
    return [s for section, cls in SECTIONS.items() for s in describe(cls, section)
            if s.path not in DERIVED]


def get_path(sections: dict[str, Any], path: str) -> Any:
    """The value at "section.field[.field]" of config objects {"frontend": cfg, ...}."""
    section, *names = path.split(".")
    value = sections[section]
    for name in names:
        value = getattr(value, name)
    return value
