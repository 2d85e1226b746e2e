"""The run description, ``run.json``: everything ``train`` was asked to do, so a run can be
repeated (``train --config RUN/run.json --out OTHER``) or continued after a cancel (``train
--resume RUN``). Reading, overriding and writing it live here, for the command line
(model.cli.train) and the training wizard (app/wizard) alike.

Layout: the config sections "frontend", "model", "train" (as ``--config`` reads them), plus
"corpus" {path, map, classes, drop_conflicting, language (when given)} and "run" {final,
max_folds, and for a run on a Ray cluster ray (the address, as ``--ray`` takes it) and, once it
ran, cluster {address, nodes, tasks, hosts}: model.cluster.options.record_cluster}. "path" is one
corpus as a string (as every run.json before several corpora) or a list of two or more
(``corpus_paths`` reads either).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path

from ser_studio.model.config.checks import derived_fields
from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig, TrainConfig,
                                            check_run_configs, config_from_dict, config_to_dict,
                                            train_config_from_dict)

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
SECTIONS = ("frontend", "model", "train", "corpus", "run")
CONFIG_SECTIONS = SECTIONS[:3]  # the ones that build a config dataclass
_CLASSES = dict(zip(CONFIG_SECTIONS, (FrontendConfig, ModelConfig, TrainConfig)))


def derived_paths() -> dict[str, str]:
    """The derived fields of the three configs (model.config.checks.derived) as
    "section.field" -> what the run sets it from: run.json neither reads nor writes them."""
    return {f"{section}.{name}": source for section, cls in _CLASSES.items()
            for name, source in derived_fields(cls).items()}


def _without_derived(sections: dict) -> dict:
    """``sections`` less the derived fields; a value other than the default is named in a
    warning (the run sets it from its data whatever the file says)."""
    result = dict(sections)
    for path, source in derived_paths().items():
        section, name = path.split(".")
        if not isinstance(result.get(section), dict) or name not in result[section]:
            continue
        result[section] = {k: v for k, v in result[section].items() if k != name}
        default = {f.name: f.default for f in dataclasses.fields(_CLASSES[section])}[name]
        if sections[section][name] != default:
            log.warning("%s = %r ignored: the run sets it from %s", path,
                        sections[section][name], source)
    return result


def read_sections(path: Path) -> dict:
    """The sections of a config or run.json file; ConfigError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise ConfigError(f"{path}: expected an object with sections {list(SECTIONS)}, "
                          f"got keys {sorted(data) if isinstance(data, dict) else data!r}")
    return data


def apply_overrides(sections: dict, overrides: dict[str, object]) -> dict:
    """A copy of the config ``sections`` with each "section.field[.field]" set; the configs
    built from it check every value (an unknown field is refused there, naming the valid
    ones)."""
    result = copy.deepcopy(sections)
    for path, value in overrides.items():
        section, *names = path.split(".")
        if section not in CONFIG_SECTIONS:
            raise ConfigError(f"{path}: no config section {section!r}; available = "
                              f"{list(CONFIG_SECTIONS)}")
        if path in derived_paths():
            raise ConfigError(f"{path}: cannot be set; the run sets it from "
                              f"{derived_paths()[path]}")
        node = result.setdefault(section, {})
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = value
    return result


def configs_from_sections(sections: dict) -> tuple[FrontendConfig, ModelConfig, TrainConfig]:
    """The three configs of a run (absent sections and keys: the dataclass defaults), every
    field and the cross-field rules checked; ConfigError naming the key otherwise.

    A run.json (it has a "run" section, and ``train`` writes every field but the derived
    ones) without ``highpass_hz`` was written before the input high-pass existed: repeated or
    resumed, it runs without one, as its finished folds did. A recipe (no "run" section) gets
    the default. Derived fields (``derived_paths``) are left at their defaults: the run sets
    them from its data (a value other than the default is named in a warning)."""
    sections = _without_derived(sections)
    frontend_section = sections.get("frontend", {})
    if "run" in sections and isinstance(frontend_section, dict):
        frontend_section = {"highpass_hz": 0.0, **frontend_section}
    frontend = config_from_dict(FrontendConfig, frontend_section)
    model = config_from_dict(ModelConfig, sections.get("model", {}))
    train = train_config_from_dict(sections.get("train", {}))
    check_run_configs(frontend, train)
    return frontend, model, train


def corpus_paths(value) -> list[str] | None:
    """The corpus list of run.json's corpus "path" (a string or a list of strings; None when
    absent); ConfigError naming the key otherwise."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if (not isinstance(items, list) or not items
            or not all(isinstance(p, str) and p.strip() for p in items)):
        raise ConfigError(f"corpus.path: expected a path or a list of paths, got {value!r}")
    return list(items)


def describe_run(frontend, model, train, *, corpus, label_map: list[str] | None = None,
                 classes: list[str] | None = None, drop_conflicting: bool = False,
                 languages: list[str] | None = None,
                 final: bool = True, max_folds: int | None = None,
                 ray: str | None = None, ray_storage: str | None = None,
                 cache: str | Path | None = None) -> dict:
    """The run.json object of one run: its three configs (less their derived fields, which
    the run sets from its data), its corpus (``corpus``: a path or a list of paths; written
    as a string when there is one, so a single-corpus run.json is as it always was; the
    --language values as "language", only when given) and its
    run options (``ray``: the Ray cluster's address, kept only when given; ``ray_storage``
    with it when given, and with "shared" the ``cache`` folder every node mounts)."""
    configs = {section: config_to_dict(cfg) for section, cfg in
               zip(CONFIG_SECTIONS, (frontend, model, train))}
    for path in derived_paths():
        section, name = path.split(".")
        del configs[section][name]
    paths = [str(Path(p).expanduser().resolve()) for p in corpus_paths(
        [str(p) for p in corpus] if isinstance(corpus, (list, tuple)) else str(corpus))]
    return {**configs,
            "corpus": {"path": paths[0] if len(paths) == 1 else paths, "map": label_map,
                       "classes": classes, "drop_conflicting": bool(drop_conflicting),
                       **({"language": list(languages)} if languages else {})},
            "run": {"final": final, "max_folds": max_folds, **_cluster_options(ray, ray_storage,
                                                                               cache)}}


def _cluster_options(ray: str | None, storage: str | None, cache) -> dict:
    """run.json's cluster entries: none without ``ray``; the cache folder only when it is the
    shared one (a path every node mounts)."""
    if not ray:
        return {}
    out = {"ray": ray}
    if storage:
        out["ray_storage"] = storage
    if storage == "shared" and cache is not None:
        out["cache"] = str(Path(cache).expanduser().resolve())
    return out


def write_run_file(out_dir: Path, sections: dict) -> Path:
    """Write ``out_dir/run.json`` (creating the folder); returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RUN_FILE
    path.write_text(json.dumps(sections, indent=2) + "\n")
    return path


def finished_folds(run_dir: Path, train: dict) -> list[dict]:
    """The fold entries of ``run_dir/metrics.json`` that a resumed run may keep: trained with
    the same train config and with their checkpoint still on disk. ConfigError when the folder
    holds no run to resume."""
    path = run_dir / METRICS_FILE
    if not (run_dir / RUN_FILE).is_file() or not path.is_file():
        raise ConfigError(f"{run_dir}: no run to resume (needs {RUN_FILE} and {METRICS_FILE}, "
                          "written by `train`)")
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    saved = summary.get("configs", {}).get("train")
    try:  # fields added since the run was written take their defaults, as the run had them
        saved = config_to_dict(train_config_from_dict(saved)) if isinstance(saved, dict) else saved
    except (ConfigError, ValueError, TypeError):
        pass
    if saved != train:
        raise ConfigError(f"{path}: its folds were trained with another train config than "
                          f"{run_dir / RUN_FILE} holds; start a new run instead")
    return [f for f in summary.get("folds", []) if (run_dir / f["checkpoint"]).is_file()]
