"""Field checks shared by the config dataclasses (model.config.schema): every value has its field's
type, probabilities lie in [0, 1], ranges are (low, high) with low <= high, and a field made
with ``choice`` holds one of its choices (the wizard reads the same choices to offer them).

Configs come from JSON files, checkpoint sidecars, command-line options and the wizard, and all
of them build the dataclass, so these checks run for every source. An error names the field,
the value and what is allowed: ``TrainConfig.lr: '0.001' (a string) is not a number``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

_NUMBER = "a number"


def _kind(value: Any) -> str:
    return {bool: "true/false", str: "a string", list: "a list", tuple: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _fail(obj: Any, name: str, value: Any, expected: str) -> None:
    raise ValueError(f"{type(obj).__name__}.{name}: {value!r} ({_kind(value)}) is not "
                     f"{expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked(obj: Any, name: str, declared: str, value: Any) -> Any:
    """``value`` as the declared type (ints become floats, lists tuples), or ValueError."""
    if declared == "bool":
        if not isinstance(value, bool):
            _fail(obj, name, value, "true or false")
        return value
    if declared == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(obj, name, value, "a whole number")
        return value
    if declared == "float":
        if not _is_number(value):
            _fail(obj, name, value, _NUMBER)
        return float(value)
    if declared == "str":
        if not isinstance(value, str):
            _fail(obj, name, value, "a string")
        return value
    if declared.startswith("tuple[float, float]"):
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
                _is_number(v) for v in value):
            _fail(obj, name, value, "a pair of numbers [low, high]")
        if value[0] > value[1]:
            _fail(obj, name, value, "a range [low, high] with low <= high")
        return (float(value[0]), float(value[1]))
    return value  # nested configs check themselves


def check_types(obj: Any) -> None:
    """Check (and normalise: int -> float, list -> tuple) every field of a frozen dataclass."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        fixed = _checked(obj, f.name, str(f.type), value)
        if fixed is not value:
            object.__setattr__(obj, f.name, fixed)


def check_probabilities(obj: Any, *names: str) -> None:
    """Each named field lies in [0, 1]."""
    for name in names:
        value = getattr(obj, name)
        if not 0.0 <= value <= 1.0:
            _fail(obj, name, value, "a probability in [0, 1]")


def check_within(obj: Any, name: str, low: float, high: float) -> None:
    """Field ``name`` (a number or a (low, high) pair) lies within [low, high]."""
    value = getattr(obj, name)
    values = value if isinstance(value, tuple) else (value,)
    if not all(low <= v <= high for v in values):
        _fail(obj, name, value, f"within [{low:g}, {high:g}]")


def choice(default: str, choices: Sequence[str], *, joinable: bool = False):
    """A dataclass field whose value must be one of ``choices`` (``joinable``: or several
    different ones joined with '+'), checked by ``check_choices``."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices),
                                                        "joinable": joinable})


def derived(default: Any, source: str):
    """A dataclass field that a run sets from its data at train time (``source`` says from
    what, e.g. "the frontend's feature dimension"), whatever a config says: a run description
    neither reads (model.config.run ignores it, with a warning for a value other than the
    default) nor writes it, an override of it is refused, the wizard offers no editor for it,
    and training fills it with ``fill_derived``. A checkpoint keeps it (its network needs it)."""
    return dataclasses.field(default=default, metadata={"derived": source})


def derived_fields(cls: type) -> dict[str, str]:
    """The ``derived`` fields of config class ``cls``: name -> what the run sets it from."""
    return {f.name: f.metadata["derived"] for f in dataclasses.fields(cls)
            if "derived" in f.metadata}


def fill_derived(cfg: Any, **values: Any) -> Any:
    """A copy of the frozen config ``cfg`` with derived fields set (training's one way of
    setting them); ValueError for a name that is not a derived field."""
    others = sorted(set(values) - set(derived_fields(type(cfg))))
    if others:
        raise ValueError(f"{type(cfg).__name__}: {others} are not derived fields (derived: "
                         f"{sorted(derived_fields(type(cfg)))})")
    return dataclasses.replace(cfg, **values)


def field_choices(cls: type, name: str) -> tuple[str, ...]:
    """The choices of field ``name`` of config class ``cls`` (() when any value goes)."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    return tuple(found.metadata.get("choices", ()))


def check_choices(obj: Any) -> None:
    """Every ``choice`` field holds one of its choices."""
    for f in dataclasses.fields(obj):
        choices = f.metadata.get("choices")
        if not choices:
            continue
        value = getattr(obj, f.name)
        parts = value.split("+") if f.metadata.get("joinable") else [value]
        if any(p not in choices for p in parts) or len(set(parts)) != len(parts):
            joined = " or several of them joined with '+'" if f.metadata.get("joinable") else ""
            _fail(obj, f.name, value, f"one of {list(choices)}{joined}")
