"""Checkpoints: safetensors weights plus a JSON sidecar that describes them.

``X.safetensors`` holds the network's state dict; ``X.json`` holds
``{"format": "ser-studio-checkpoint", "version": 1, "weights_sha1": <sha1 of X.safetensors>,
"frontend": {...}, "model": {...}, "train": {...} | null, "inference": {...}, "labels": [...],
"speakers": [...], "norm_mean": [...], "norm_std": [...], "metrics": {...}}``, enough to rebuild
the frontend and the network, to name its outputs and to run it: inference reads its crop and
speaker standardisation from ``inference`` (model.config.inference), never from ``train``, which
records how the network was trained. A sidecar written before ``inference`` existed loads with
the section derived from its ``train``, as inference read it then. The weights are always the
sidecar's sibling of the same stem, so a pair can be renamed or moved together.

Loading never unpickles anything: a pickle (``torch.save``) file, a file of another format or
version, unknown keys or a weights file that does not match its sidecar raise CheckpointError
naming the file and the problem.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ser_studio.model.config.inference import InferenceConfig, inference_section
from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig, TrainConfig,
                                            config_from_dict, config_to_dict,
                                            train_config_from_dict)
from ser_studio.model.files import atomic_write, file_sha1, why_missing

log = logging.getLogger(__name__)

FORMAT = "ser-studio-checkpoint"
VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
SIDECAR_SUFFIX = ".json"
_KEYS = ("format", "version", "weights_sha1", "frontend", "model", "train", "labels",
         "speakers", "norm_mean", "norm_std", "metrics")
_OPTIONAL_KEYS = ("shipped", "inference", "languages")
_ZIP_MAGIC, _PICKLE_PROTOCOL = b"PK\x03\x04", 0x80


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """A trained network and everything needed to use it.

    labels: class names in logit order (len == model.n_classes).
    speakers: training speakers (order of the adversarial speaker head, if any).
    norm_mean, norm_std: per-dimension feature statistics of the training fold, length D
        (== model.input_dim), or both empty when features are used unnormalised.
    metrics: JSON-able dict (numpy/torch numbers and arrays are converted on save).
    state_dict: the network's tensors.
    shipped: the model that ships with the package as its default (``main.py ship`` sets it;
        written as ``"shipped": true`` in the sidecar, absent otherwise).
    inference: what inference reads (crop, speaker standardisation); None when constructed
        without one: derived from ``train`` (model.config.inference.inference_section).
    languages: the languages of its training utterances -> how many ({"English": 576});
        those of unknown language are not counted; {} when none is known (and for
        checkpoints written before the entry existed).
    """

    frontend: FrontendConfig
    model: ModelConfig
    train: TrainConfig | None
    labels: list[str]
    speakers: list[str] = field(default_factory=list)
    norm_mean: list[float] = field(default_factory=list)
    norm_std: list[float] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    shipped: bool = False
    inference: InferenceConfig | None = None
    languages: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.inference is None:
            self.inference = inference_section(self.train)


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) for ``X.safetensors``, ``X.json`` or the stem ``X``."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX) else path
    return stem.with_name(stem.name + WEIGHTS_SUFFIX), stem.with_name(stem.name + SIDECAR_SUFFIX)


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write ``X.safetensors`` and ``X.json`` (each atomically); returns the weights path.

    Raises CheckpointError when labels do not match model.n_classes or the normalisation
    statistics do not match model.input_dim.
    """
    weights, sidecar = checkpoint_paths(path)
    check_consistent(ckpt, weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    # Clones: safetensors refuses tensors that share storage (tied or sliced parameters).
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt.state_dict.items()}
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={
        "format": FORMAT, "version": str(VERSION)}))
    doc = {
        "format": FORMAT, "version": VERSION, "weights_sha1": file_sha1(weights),
        "frontend": config_to_dict(ckpt.frontend), "model": config_to_dict(ckpt.model),
        "train": config_to_dict(ckpt.train) if ckpt.train is not None else None,
        "inference": config_to_dict(ckpt.inference),
        "labels": [str(x) for x in ckpt.labels], "speakers": [str(x) for x in ckpt.speakers],
        "norm_mean": [float(x) for x in ckpt.norm_mean],
        "norm_std": [float(x) for x in ckpt.norm_std],
        "metrics": ckpt.metrics,
        "languages": {str(k): int(v) for k, v in ckpt.languages.items()},
    }
    if ckpt.shipped:
        doc["shipped"] = True
    text = json.dumps(doc, indent=2, default=_plain) + "\n"
    atomic_write(sidecar, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info("checkpoint saved: %s (+ %s)", weights, sidecar.name)
    return weights


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint from ``X.safetensors``, ``X.json`` or ``X``; never unpickles.

    Raises CheckpointError naming the file for anything that is not a sound checkpoint.
    """
    path = resolve_model_path(path)
    if path.is_file() and path.suffix not in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX):
        _refuse_foreign(path)
    weights, sidecar = checkpoint_paths(path)
    if path.is_file():
        _refuse_pickle(path)
    if not sidecar.is_file():
        if not path.is_file() and why_missing(path) == "a symbolic link loop":
            raise CheckpointError(f"{path}: a symbolic link loop, not a model file")
        raise CheckpointError(f"{sidecar}: checkpoint description not found (a checkpoint is "
                              f"{weights.name} plus {sidecar.name})")
    doc = _read_sidecar(sidecar)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file not found (next to {sidecar.name})")
    _refuse_pickle(weights)
    if file_sha1(weights) != doc["weights_sha1"]:
        raise CheckpointError(f"{weights}: weights do not match {sidecar.name} (checksum "
                              "differs: the pair was mixed up or a file was modified)")
    try:
        ckpt = Checkpoint(
            frontend=config_from_dict(FrontendConfig, legacy_frontend(doc["frontend"])),
            model=config_from_dict(ModelConfig, doc["model"]),
            train=train_config_from_dict(doc["train"]) if doc["train"] is not None else None,
            labels=doc["labels"], speakers=doc["speakers"], norm_mean=doc["norm_mean"],
            norm_std=doc["norm_std"], metrics=doc["metrics"], state_dict=_read_weights(weights),
            shipped=doc.get("shipped") is True, inference=read_inference(doc),
            languages=doc.get("languages", {}),
        )
    except ConfigError as exc:
        raise CheckpointError(f"{sidecar}: {exc}") from exc
    check_consistent(ckpt, sidecar)
    return ckpt


def resolve_model_path(path: str | Path) -> Path:
    """The model file a user's ``--model`` names: ``path`` itself, except for a folder (a run
    folder written by ``train``), which gives its final model ``model.safetensors``. A folder
    without one raises CheckpointError saying what a model is and which models it holds.

    Every entry point that takes a model (the commands, Predictor.load, export, the app) calls
    this first, so later steps (the sidecar, the weights' sha1, the graph cache) see the file.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        return path
    inside = path / ("model" + WEIGHTS_SUFFIX)
    if inside.is_file():
        return inside
    raise CheckpointError(f"{path}: a folder, not a model, and it has no model{WEIGHTS_SUFFIX} "
                          f"(a run folder's final model). A model is two files side by side, "
                          f"X{WEIGHTS_SUFFIX} and X{SIDECAR_SUFFIX}: give X{WEIGHTS_SUFFIX}; "
                          f"{_folder_contents(path)}")


def _folder_contents(path: Path, shown: int = 6) -> str:
    """What a folder given as a model holds: its models (``fold_K/model.safetensors`` of a run
    trained with ``--no-final`` included), else its first ``shown`` entries and their count."""
    found = sorted(p.relative_to(path).as_posix() for p in path.glob("*/*" + WEIGHTS_SUFFIX))
    found = sorted(p.name for p in path.glob("*" + WEIGHTS_SUFFIX)) + found
    if found:
        more = f" and {len(found) - shown} more" if len(found) > shown else ""
        return f"this folder holds the models {', '.join(found[:shown])}{more}"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not entries:
        return "this folder is empty"
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return (f"this folder holds no *{WEIGHTS_SUFFIX}, only {len(entries)} other entries: "
            f"{', '.join(entries[:shown])}{more}")


def ship_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Copy the checkpoint at ``source`` (a file of the pair, or a run folder) to ``target``
    (``X.safetensors``) marked as the shipped default model; returns the weights path.
    The source is loaded (and so checked) first; the weights are copied byte for byte, and the
    sidecar gains ``"shipped": true`` and its inference section (derived for an older one)."""
    ckpt = load_checkpoint(source)
    src_weights, src_sidecar = checkpoint_paths(resolve_model_path(source))
    weights, sidecar = checkpoint_paths(target)
    weights.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(src_sidecar.read_text(encoding="utf-8"))
    doc["shipped"] = True
    doc["inference"] = config_to_dict(ckpt.inference)  # explicit, also for an older source
    data = src_weights.read_bytes()
    atomic_write(weights, lambda tmp: tmp.write_bytes(data))
    text = json.dumps(doc, indent=2) + "\n"
    atomic_write(sidecar, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    log.info("shipped %s as %s", src_weights, weights)
    return weights


def read_inference(doc: dict[str, Any]) -> InferenceConfig | None:
    """The ``inference`` section of a checkpoint's or an export's sidecar ``doc``; None when it
    has none (written before the section existed: the Checkpoint derives it from ``train``).
    ConfigError for a malformed one."""
    section = doc.get("inference")
    return config_from_dict(InferenceConfig, section) if section is not None else None


def legacy_frontend(section: Any) -> Any:
    """A frontend section written before an input stage existed fed the samples without it:
    before loudness normalisation it loads as ``loudness: "none"``, before the input
    high-pass as ``highpass_hz: 0``, and behaves exactly as before."""
    if not isinstance(section, dict):
        return section
    legacy = {"loudness": "none", "highpass_hz": 0.0}
    return {**{k: v for k, v in legacy.items() if k not in section}, **section}


def read_description(path: Path, *, fmt: str, version: int, keys: tuple[str, ...],
                     optional: tuple[str, ...] = (), what: str,
                     error: type[CheckpointError] = CheckpointError) -> dict[str, Any]:
    """A JSON description file (a checkpoint's or an export's sidecar) as a dict, checked for
    its "format" (``fmt``), "version" and keys (every one of ``keys``, others only from
    ``optional``); ``error`` naming ``path`` and calling it not ``what`` otherwise."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not {what} (invalid JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise error(f"{path}: not {what} (format {found!r}, expected {fmt!r})")
    if doc.get("version") != version:
        raise error(f"{path}: version {doc.get('version')!r} is not supported; this version "
                    f"of ser-studio reads version {version}")
    unknown = sorted(set(doc) - set(keys) - set(optional))
    missing = sorted(set(keys) - set(doc))
    if unknown or missing:
        raise error(f"{path}: unknown keys {unknown}, missing keys {missing}; "
                    f"expected keys = {list(keys)}")
    return doc


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The sidecar's JSON object, checked for format, version, keys and entry types."""
    _refuse_pickle(sidecar)
    doc = read_description(sidecar, fmt=FORMAT, version=VERSION, keys=_KEYS,
                           optional=_OPTIONAL_KEYS, what="a ser-studio checkpoint")
    _check_types(doc, sidecar)
    return doc


def _check_types(doc: dict[str, Any], sidecar: Path) -> None:
    """Raise CheckpointError naming every entry of the wrong JSON type."""
    def is_list_of(value: Any, kinds: tuple[type, ...]) -> bool:
        return isinstance(value, list) and all(
            isinstance(x, kinds) and not isinstance(x, bool) for x in value)

    problems = [name for name, ok in (
        ("weights_sha1", isinstance(doc["weights_sha1"], str)),
        ("labels", is_list_of(doc["labels"], (str,))),
        ("speakers", is_list_of(doc["speakers"], (str,))),
        ("norm_mean", is_list_of(doc["norm_mean"], (int, float))),
        ("norm_std", is_list_of(doc["norm_std"], (int, float))),
        ("metrics", isinstance(doc["metrics"], dict)),
        ("languages", _is_language_counts(doc.get("languages", {}))),
    ) if not ok]
    if problems:
        raise CheckpointError(f"{sidecar}: malformed entries {problems}")


def _is_language_counts(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and k and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in value.items())


def check_consistent(ckpt: Checkpoint, where: Path,
                     error: type[CheckpointError] = CheckpointError) -> None:
    """Labels match the classifier and normalisation statistics match the input dimension;
    ``error`` (a CheckpointError) naming ``where`` otherwise."""
    if len(ckpt.labels) != ckpt.model.n_classes:
        raise error(f"{where}: {len(ckpt.labels)} labels but the model has "
                    f"n_classes={ckpt.model.n_classes}")
    n_mean, n_std = len(ckpt.norm_mean), len(ckpt.norm_std)
    if n_mean != n_std or (n_mean and n_mean != ckpt.model.input_dim):
        raise error(f"{where}: norm_mean/norm_std have lengths {n_mean}/{n_std}; "
                    f"expected both {ckpt.model.input_dim} (model.input_dim) or 0")
    if any(float(s) <= 0 for s in ckpt.norm_std):
        raise error(f"{where}: norm_std must be positive")


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; anything else is refused without unpickling."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from exc


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """True for a safetensors layout: an 8-byte little-endian header length smaller than the
    file, then the JSON header's '{'. (Its first byte can be 0x80, pickle's protocol byte.)"""
    if len(head) < 9:
        return False
    return 0 < int.from_bytes(head[:8], "little") < size and head[8:9] == b"{"


def _refuse_pickle(path: Path) -> None:
    """Raise CheckpointError for a pickle or torch.save (zip) file, without unpickling it."""
    with open(path, "rb") as f:
        head = f.read(9)
    if _looks_like_safetensors(head, path.stat().st_size):
        return
    if head.startswith(_ZIP_MAGIC) or head[:1] == bytes([_PICKLE_PROTOCOL]):
        raise CheckpointError(
            f"{path}: this is a pickle/torch.save file; ser-studio refuses to unpickle (it can "
            "run arbitrary code). Checkpoints are X.safetensors + X.json (save_checkpoint).")


def _refuse_foreign(path: Path) -> None:
    """Raise CheckpointError describing a file that is not part of a ser-studio checkpoint."""
    _refuse_pickle(path)
    raise CheckpointError(f"{path}: not a ser-studio checkpoint (expected X.safetensors + "
                          "X.json, written by save_checkpoint)")


def _plain(value: Any) -> Any:
    """JSON fallback for numpy/torch numbers and arrays in metrics."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"metrics value of type {type(value).__name__} is not JSON-serialisable")
