"""Frozen configuration dataclasses shared by the CLI, the training wizard and checkpoints.

Every config converts to and from a plain JSON-able dict. Unknown keys are an error, never
silently ignored, so a typo in a config file or a checkpoint from another version is caught.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from model.constants import DEFAULT_ENCODER, N_MELS

C = TypeVar("C")


class ConfigError(ValueError):
    """A configuration dict or file that does not match its dataclass."""


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a config dataclass as a JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build ``cls`` from ``data``; unknown keys raise ConfigError naming the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown keys {unknown}; valid keys = {sorted(names)}"
        )
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls, key, None) if key in cls.__dict__ else None
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config dataclass to ``path`` as indented JSON."""
    Path(path).write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config(cls: type[C], path: str | Path) -> C:
    """Read a config of type ``cls`` from a JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    return config_from_dict(cls, data)


FRONTENDS = ("logmel", "hubert")
LAYER_MODES = ("last", "weighted")
ARCHS = ("baseline", "enhanced")


@dataclass(frozen=True)
class FrontendConfig:
    """How audio becomes features.

    name: "logmel" (offline, no download) or "hubert" (any Hugging Face speech encoder).
    encoder: hub id or local folder of the encoder (hubert only).
    layer_mode: "last" hidden layer (the seed's) or "weighted": all hidden layers are kept and
        the network learns a softmax-weighted sum of them (the SUPERB recipe).
    """

    name: str = "logmel"
    n_mels: int = N_MELS
    encoder: str = DEFAULT_ENCODER
    layer_mode: str = "last"

    def __post_init__(self) -> None:
        if self.name not in FRONTENDS:
            raise ValueError(f"frontend {self.name!r} not known; available = {list(FRONTENDS)}")
        if self.layer_mode not in LAYER_MODES:
            raise ValueError(f"layer_mode {self.layer_mode!r}; available = {list(LAYER_MODES)}")
        if self.n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {self.n_mels}")


@dataclass(frozen=True)
class ModelConfig:
    """Network hyperparameters; a checkpoint stores this and rebuilds the network from it.

    input_dim: feature dimension D of the frontend.
    input_layers: L > 1 means inputs are (B, L, T, D) stacks of encoder layers mixed by a
        learnable softmax-weighted sum; 1 means inputs are (B, T, D).
    frame_pool: average-pool input frames by this factor before the network (lengths follow,
        rounded up); 3 turns 100 fps log-mel into 33 fps and makes training 3x cheaper.
    n_speakers: size of the enhanced model's adversarial speaker head (speakers of the fold's
        training data); 0 disables the head.
    ensemble: M > 1 trains M such networks side by side from different initialisations and
        predicts the mean of their class probabilities (model.networks.ensemble).
    stats_branch: fuse the network with a linear classifier on utterance statistics of its
        input features (model.networks.stats_branch).
    The use_* switches turn parts of the enhanced model off for ablations.
    """

    arch: str = "enhanced"
    input_dim: int = N_MELS
    input_layers: int = 1
    n_classes: int = 4
    n_speakers: int = 0
    frame_pool: int = 1
    hidden: int = 256
    gru_layers: int = 2
    input_dropout: float = 0.1
    dropout: float = 0.3
    attn_heads: int = 8
    use_posenc: bool = True
    use_adain: bool = True
    use_self_attention: bool = True
    use_enhancement: bool = True
    use_speaker_adversary: bool = True
    ensemble: int = 1
    stats_branch: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} not known; available = {list(ARCHS)}")
        for name in ("input_dim", "input_layers", "n_classes", "frame_pool", "hidden",
                     "gru_layers", "attn_heads", "ensemble"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class AugmentConfig:
    """Feature-space augmentation applied to training batches only; each part has its probability."""

    noise_prob: float = 0.5
    noise_std: float = 0.05
    stretch_prob: float = 0.3
    stretch_range: tuple[float, float] = (0.85, 1.15)
    # frequency warp of spectral features (VTLP-like speaker variation); off by default because
    # encoder features have no frequency axis
    warp_prob: float = 0.0
    warp_range: tuple[float, float] = (0.9, 1.1)
    # recording level: a random gain in dB applied to log-mel features before standardisation
    # (log-mel only, like the warp); off by default
    gain_prob: float = 0.0
    gain_range_db: tuple[float, float] = (-18.0, 6.0)
    time_mask_prob: float = 0.5
    time_mask_width: int = 20
    time_masks: int = 2
    feature_mask_prob: float = 0.5
    feature_mask_width: int = 8
    feature_masks: int = 2

    def off(self) -> "AugmentConfig":
        """The same config with every probability set to zero."""
        return dataclasses.replace(self, noise_prob=0.0, stretch_prob=0.0, warp_prob=0.0,
                                   gain_prob=0.0,
                                   time_mask_prob=0.0, feature_mask_prob=0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, early stopping and cross-validation settings.

    folds: for corpora without sessions, grouped k-fold by speaker; 0 = leave-one-speaker-out.
        IEMOCAP-style corpora with sessions use leave-one-session-out.
    val_speakers: speakers held out of each fold's training side for early stopping.
    min_epochs: epochs trained before early stopping may pick a best epoch or stop.
    max_seconds: length of the random training crop (the seed's 3 s); evaluation sees
        whole utterances up to eval_max_seconds.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    eta_min: float = 1e-5
    grad_clip: float = 1.0
    accumulation_steps: int = 1
    patience: int = 8
    min_epochs: int = 0
    class_weighted: bool = True
    adversarial_weight: float = 0.1
    max_alpha: float = 1.0
    alpha_start_epoch: int = 5
    alpha_full_fraction: float = 0.7
    l2_reg: float = 0.0
    label_smoothing: float = 0.0
    max_seconds: float = 3.0
    eval_max_seconds: float = 10.0
    folds: int = 5
    val_speakers: int = 1
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.accumulation_steps <= 0:
            raise ValueError("epochs, batch_size and accumulation_steps must be positive")
        if self.folds == 1 or self.folds < 0:
            raise ValueError(f"folds must be 0 (leave-one-speaker-out) or >= 2, got {self.folds}")


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """TrainConfig from a dict whose ``augment`` entry is itself a dict."""
    data = dict(data)
    if "augment" in data:
        data["augment"] = config_from_dict(AugmentConfig, data["augment"])
    return config_from_dict(TrainConfig, data)
