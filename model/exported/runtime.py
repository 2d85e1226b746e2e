"""Running an exported model (model.exported.write) with onnxruntime instead of torch.

``OUT.onnx`` holds the network; ``OUT.json`` (the sidecar) holds everything a Predictor needs
besides it: labels, normalisation statistics, frontend, model and train configs, the
checkpoint's inference section (model.config.inference; derived from the train config for an
export written before it existed), and for an encoder frontend (``hubert``) the geometry of
``OUT.encoder.onnx``, the encoder exported next to it. The files are found by their common
stem, so they can be renamed or moved together; the sidecar records each graph's sha1.
``load_onnx_model`` checks them (format, keys, checksums, class count) and returns the pieces
a Predictor is made of:

- ``OnnxNetwork``: called like the torch network, ``network(x, lengths)`` -> NetworkOutput with
  logits (B, C), attention (B, T') and frame_lengths (B,) as CPU torch tensors, so every
  Predictor method works unchanged;
- the frontend, built as ``model.features.registry.build_frontend`` builds it, except that the
encoder
  part runs ``OUT.encoder.onnx`` (``OnnxEncoderFrontend``): no torch encoder weights, no hub.

Sessions run on one intra-op thread unless told otherwise (``threads``): on a busy machine a
window costs less CPU that way, and the app's other threads keep a core.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ser_studio.model.config.schema import (ConfigError, FrontendConfig, ModelConfig,
                                            config_from_dict, train_config_from_dict)
from ser_studio.model.features.base import digest
from ser_studio.model.files import file_sha1
from ser_studio.model.networks.checkpoint import (Checkpoint, CheckpointError, check_consistent,
                                                  legacy_frontend, read_description,
                                                  read_inference)
from ser_studio.model.onnx.cache import checked_graph, forget, version_tag
from ser_studio.model.onnx.session import DEFAULT_THREADS, OnnxGraphError, session

log = logging.getLogger(__name__)

FORMAT = "ser-studio-onnx"
VERSION = 1
SUFFIX = ".onnx"
ENCODER_SUFFIX = ".encoder.onnx"
INPUTS = ("features", "lengths")
OUTPUTS = ("logits", "attention", "frame_lengths")
ENCODER_INPUT = "input_values"
ENCODER_OUTPUTS = ("last_hidden_state", "hidden_states")
_KEYS = ("format", "version", "network", "encoder", "int8", "quantized_ops", "opset", "source",
         "frontend", "model", "train", "labels", "speakers", "norm_mean", "norm_std", "metrics")
_OPTIONAL_KEYS = ("inference", "languages")
_ENCODER_KEYS = ("sha1", "output", "stride", "receptive", "do_normalize", "dim",
                 "layers", "frame_rate", "chunk_hop", "fingerprint")


class OnnxModelError(CheckpointError):
    """An exported model that cannot be used; the message names the file and the problem."""


def _session(path: Path, threads: int):
    """``session(path, threads)``, its OnnxGraphError raised as an OnnxModelError."""
    try:
        return session(path, threads)
    except OnnxGraphError as exc:
        raise OnnxModelError(str(exc)) from exc



def sidecar_path(onnx_path: str | Path) -> Path:
    """``OUT.json`` for ``OUT.onnx``."""
    return Path(onnx_path).with_suffix(".json")


def encoder_path(onnx_path: str | Path) -> Path:
    """``OUT.encoder.onnx`` for ``OUT.onnx``."""
    path = Path(onnx_path)
    return path.with_name(path.stem + ENCODER_SUFFIX)



class OnnxNetwork:
    """An exported network with the torch network's call signature.

    ``network(x, lengths, alpha=0.0)``: x (B, T, D), or (B, L, T, D) for encoder layer stacks,
    float, standardised; lengths (B,) integers in 1..T. Returns a NetworkOutput whose logits
    (B, n_classes), attention (B, T') and frame_lengths (B,) are CPU torch tensors;
    speaker_logits and members are None. Bad shapes or lengths raise ValueError, as the torch
    network's input stage does (the traced graph cannot check them itself).
    """

    def __init__(self, path: str | Path, cfg: ModelConfig, *, threads: int = DEFAULT_THREADS,
                 int8: bool = False):
        self.path, self.cfg, self.threads, self.int8 = Path(path), cfg, threads, int8
        self.session = _session(self.path, threads)
        self.runtime = "onnx int8" if int8 else "onnx"
        names = ([i.name for i in self.session.get_inputs()],
                 [o.name for o in self.session.get_outputs()])
        if names != (list(INPUTS), list(OUTPUTS)):
            raise OnnxModelError(f"{self.path}: not an exported ser-studio network (inputs "
                                 f"{names[0]}, outputs {names[1]}; expected {list(INPUTS)} -> "
                                 f"{list(OUTPUTS)})")

    def n_classes(self) -> int | None:
        """The logits width the graph declares (None when it is not static)."""
        width = self.session.get_outputs()[0].shape[-1]
        return width if isinstance(width, int) else None

    def _check(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        from ser_studio.model.networks.layers import check_network_input

        check_network_input(x, lengths, self.cfg.input_dim, self.cfg.input_layers)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor, alpha: float = 0.0):
        from ser_studio.model.networks.output import NetworkOutput

        self._check(x, lengths)
        feed = {"features": np.ascontiguousarray(x.detach().float().cpu().numpy()),
                "lengths": np.ascontiguousarray(lengths.detach().cpu().numpy(), dtype=np.int64)}
        logits, attention, frames = self.session.run(list(OUTPUTS), feed)
        return NetworkOutput(logits=torch.from_numpy(logits), attention=torch.from_numpy(attention),
                             speaker_logits=None, frame_lengths=torch.from_numpy(frames))

    def eval(self) -> "OnnxNetwork":
        """No-op (an exported graph is always in inference mode); returns self."""
        return self

    def to(self, device) -> "OnnxNetwork":
        """Only the CPU is supported; returns self."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"{self.path}: ONNX models run on the CPU, not {device}")
        return self


class OnnxEncoder:
    """An exported speech encoder, called like the Hugging Face model the frontend holds:
    ``encoder(input_values (1, N), output_hidden_states=...)`` -> an object with
    ``last_hidden_state`` (1, T, D) and, for a graph exported with all layers,
    ``hidden_states``: L tensors (1, T, D)."""

    def __init__(self, path: str | Path, output: str, threads: int = DEFAULT_THREADS):
        self.path, self.output = Path(path), output
        self.session = _session(self.path, threads)

    def __call__(self, input_values: torch.Tensor, output_hidden_states: bool = False):
        wav = np.ascontiguousarray(input_values.detach().float().cpu().numpy())
        (out,) = self.session.run([self.output], {ENCODER_INPUT: wav})
        out = torch.from_numpy(out)
        if self.output == "last_hidden_state":
            if output_hidden_states:
                raise ValueError(f"{self.path}: exported with the last layer only")
            return SimpleNamespace(last_hidden_state=out, hidden_states=None)
        layers = tuple(out.unbind(0))                                  # L x (1, T, D)
        return SimpleNamespace(last_hidden_state=layers[-1], hidden_states=layers)


def _encoder_frontend_class():
    # Imported here: model.features.hubert is only needed for encoder models.
    from ser_studio.model.features.hubert import HFEncoderFrontend

    class OnnxEncoderFrontend(HFEncoderFrontend):
        """The encoder frontend on an exported encoder: the same normalisation, chunking and
        output shapes as HFEncoderFrontend, from the geometry recorded at export (so neither
        the torch weights nor the hub are needed)."""

        def __init__(self, cfg: FrontendConfig, encoder: OnnxEncoder, info: dict[str, Any],
                     fingerprint: str):
            # Deliberately no super().__init__: that loads the torch encoder.
            self.config, self.model, self.folder = cfg, encoder, encoder.path.parent
            self.stride, self.receptive = int(info["stride"]), int(info["receptive"])
            self.do_normalize = bool(info["do_normalize"])
            self.dim, self.layers = int(info["dim"]), int(info["layers"])
            self.frame_rate, self.chunk_hop = float(info["frame_rate"]), int(info["chunk_hop"])
            self._fingerprint = fingerprint

    return OnnxEncoderFrontend


def _encoder_frontend(cfg: FrontendConfig, info: dict, onnx_path: Path, int8: bool,
                      threads: int):
    """The ``hubert`` part of the frontend, running OUT.encoder.onnx."""
    path = encoder_path(onnx_path)
    _check_file(path, info["sha1"], sidecar_path(onnx_path))
    encoder = OnnxEncoder(path, info["output"], threads)
    # int8 features differ from the torch encoder's: the feature cache must not mix them.
    fingerprint = (digest({"inner": info["fingerprint"], "onnx_int8": info["sha1"]}) if int8
                   else info["fingerprint"])
    part_cfg = dataclasses.replace(cfg, name="hubert", band_norm="none")
    return _encoder_frontend_class()(part_cfg, encoder, info, fingerprint)


def build_onnx_frontend(cfg: FrontendConfig, encoder=None):
    """The frontend ``build_frontend(cfg)`` builds, with ``encoder`` as its ``hubert`` part."""
    from ser_studio.model.features.base import with_input_stage
    from ser_studio.model.features.registry import build_frontend

    parts = cfg.name.split("+")
    if "hubert" not in parts:
        return build_frontend(cfg)
    if encoder is None:
        raise ValueError(f"frontend {cfg.name!r} needs an exported encoder")
    singles = [encoder if name == "hubert" else build_frontend(dataclasses.replace(
        cfg, name=name, loudness="none", highpass_hz=0.0,
        band_norm=cfg.band_norm if name == "logmel" else "none"))
        for name in parts]
    if len(singles) == 1:
        inner = singles[0]
    else:
        from ser_studio.model.features.combined import ConcatFrontend

        inner = ConcatFrontend(cfg, singles)
    return with_input_stage(inner)


def _check_file(path: Path, sha1: str, sidecar: Path) -> None:
    if not path.is_file():
        raise OnnxModelError(f"{path}: file not found (named by {sidecar.name})")
    if file_sha1(path) != sha1:
        raise OnnxModelError(f"{path}: does not match {sidecar.name} (checksum differs: the "
                             "pair was mixed up or a file was modified; export again)")


def read_sidecar(onnx_path: str | Path) -> dict[str, Any]:
    """The sidecar of ``OUT.onnx`` as a dict, checked for format, version and keys.

    Raises OnnxModelError naming the sidecar when it is missing or not an export description.
    """
    sidecar = sidecar_path(onnx_path)
    if not sidecar.is_file():
        raise OnnxModelError(f"{sidecar}: description of {Path(onnx_path).name} not found (an "
                             f"exported model is {Path(onnx_path).name} plus {sidecar.name}, "
                             "written by `python main.py export`)")
    doc = read_description(sidecar, fmt=FORMAT, version=VERSION, keys=_KEYS,
                           optional=_OPTIONAL_KEYS, what="an exported-model description",
                           error=OnnxModelError)
    network = doc["network"]
    if not isinstance(network, dict) or sorted(network) != ["sha1"]:
        raise OnnxModelError(f"{sidecar}: malformed 'network' entry; expected keys = "
                             "['sha1']")
    encoder = doc["encoder"]
    if encoder is not None and (not isinstance(encoder, dict)
                                or sorted(encoder) != sorted(_ENCODER_KEYS)):
        raise OnnxModelError(f"{sidecar}: malformed 'encoder' entry; expected keys = "
                             f"{list(_ENCODER_KEYS)}")
    return doc


def model_sha1(onnx_path: str | Path) -> str:
    """The identity of the model ``OUT.onnx`` runs, for speaker profiles: the sha1 of the
    checkpoint weights it was exported from (the sidecar's ``source.weights_sha1``), so a
    profile made with the checkpoint fits its export and the other way round (features and
    training statistics are the same; an int8 encoder changes the frontend fingerprint, which
    the profile checks too). A sidecar without it gives the graph's own sha1."""
    doc = read_sidecar(onnx_path)
    source = doc["source"]
    sha1 = source.get("weights_sha1") if isinstance(source, dict) else None
    if isinstance(sha1, str) and re.fullmatch(r"[0-9a-f]{40}", sha1):
        return sha1
    return str(doc["network"]["sha1"])


def _checkpoint_of(doc: dict[str, Any], sidecar: Path) -> Checkpoint:
    """The sidecar's configs and statistics as a Checkpoint without weights."""
    try:
        ckpt = Checkpoint(
            frontend=config_from_dict(FrontendConfig, legacy_frontend(doc["frontend"])),
            model=config_from_dict(ModelConfig, doc["model"]),
            train=train_config_from_dict(doc["train"]) if doc["train"] is not None else None,
            labels=list(doc["labels"]), speakers=list(doc["speakers"]),
            norm_mean=list(doc["norm_mean"]), norm_std=list(doc["norm_std"]),
            metrics=dict(doc["metrics"]), inference=read_inference(doc),
            languages=dict(doc.get("languages") or {}))
    except (ConfigError, TypeError, ValueError) as exc:
        raise OnnxModelError(f"{sidecar}: {exc}") from exc
    if not all(isinstance(x, str) for x in ckpt.labels):
        raise OnnxModelError(f"{sidecar}: labels {ckpt.labels} are not all names")
    check_consistent(ckpt, sidecar, OnnxModelError)
    if "hubert" in ckpt.frontend.name.split("+") and doc["encoder"] is None:
        raise OnnxModelError(f"{sidecar}: the {ckpt.frontend.name} frontend needs an exported "
                             "encoder, and none is named")
    return ckpt


def load_onnx_model(path: str | Path, *, threads: int = DEFAULT_THREADS):
    """Load ``OUT.onnx`` with its sidecar; returns (checkpoint without weights, frontend,
    OnnxNetwork). Raises OnnxModelError (a CheckpointError) naming the file at fault."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise OnnxModelError(f"{path}: an exported model is a {SUFFIX} file")
    doc = read_sidecar(path)
    sidecar = sidecar_path(path)
    ckpt = _checkpoint_of(doc, sidecar)
    _check_file(path, doc["network"]["sha1"], sidecar)
    network = OnnxNetwork(path, ckpt.model, threads=threads, int8=bool(doc["int8"]))
    if network.n_classes() not in (None, ckpt.model.n_classes):
        raise OnnxModelError(f"{sidecar}: {len(ckpt.labels)} labels but {path.name} gives "
                             f"{network.n_classes()} logits")
    encoder = (_encoder_frontend(ckpt.frontend, doc["encoder"], path, bool(doc["int8"]), threads)
               if doc["encoder"] is not None else None)
    frontend = build_onnx_frontend(ckpt.frontend, encoder)
    log.info("exported model %s: %s, %d thread(s)", path, network.runtime, threads)
    return ckpt, frontend, network


def network_name(weights_sha1: str, cfg) -> str:
    """The cached graph of weights ``weights_sha1`` under ModelConfig ``cfg``: the config is
    part of the name, as the same weights make another graph under another frame_pool or
    head count."""
    config = digest(dataclasses.asdict(cfg))[:12]
    return f"network-{weights_sha1}-{config}-{version_tag()}.onnx"


def cached_network(cfg, weights_sha1: str, threads: int = 1):
    """The OnnxNetwork of the weights with sha1 ``weights_sha1`` (ModelConfig ``cfg``) when
    the cache holds it checked, else None (no torch network is needed for it)."""
    path = checked_graph(network_name(weights_sha1, cfg))
    if path is None:
        return None
    try:
        return OnnxNetwork(path, cfg, threads=threads)
    except Exception as exc:  # onnxruntime cannot load it: export it again
        log.warning("%s: %s; exported again", path, exc)
        forget(path)
        return None
