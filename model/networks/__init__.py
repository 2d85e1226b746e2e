"""Emotion classifiers over frame features: the seed's baseline and enhanced networks, and a
linear classifier on pooled utterance statistics.

``build_network(cfg)`` rebuilds a network from its ModelConfig (checkpoints store the config).
Every network's ``forward(x, lengths, alpha=0.0)`` takes features x (B, T, D), or (B, L, T, D)
when cfg.input_layers > 1, and lengths (B,) of valid frames, and returns a NetworkOutput.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from model.config import ARCHS, ModelConfig


@dataclass
class NetworkOutput:
    """What every network returns.

    logits: (B, n_classes) emotion scores (before softmax).
    attention: (B, T') display weight per frame after frame pooling; sums to 1 over valid
        frames and is 0 on padded frames.
    speaker_logits: (B, n_speakers) adversarial speaker scores computed behind a gradient
        reversal scaled by alpha, or None when the network has no speaker head.
    frame_lengths: (B,) long, valid frames after frame pooling (ceil(length / frame_pool)).
    members: an ensemble's member outputs (each trained on its own loss), else None.
    """

    logits: Tensor
    attention: Tensor
    speaker_logits: Tensor | None
    frame_lengths: Tensor
    members: list[NetworkOutput] | None = None


def build_network(cfg: ModelConfig) -> nn.Module:
    """The network named by cfg.arch ("baseline", "enhanced" or "stats_linear", the pooled
    statistics with a linear head), freshly initialised; an
    Ensemble of cfg.ensemble such networks when cfg.ensemble > 1; each fused with an
    utterance-statistics classifier when cfg.stats_branch."""
    # Imported here because these modules import NetworkOutput from this package.
    from model.networks.baseline import BaselineGRU
    from model.networks.enhanced import EnhancedGRU
    from model.networks.ensemble import Ensemble
    from model.networks.stats_branch import StatsFusion, StatsLinear

    networks = {"baseline": BaselineGRU, "enhanced": EnhancedGRU, "stats_linear": StatsLinear}
    if cfg.arch not in networks:
        raise ValueError(f"arch {cfg.arch!r} not known; available = {list(ARCHS)}")
    def single() -> nn.Module:
        network = networks[cfg.arch](cfg)
        return StatsFusion(network, cfg) if cfg.stats_branch else network

    if cfg.ensemble > 1:
        return Ensemble([single() for _ in range(cfg.ensemble)])
    return single()


__all__ = ["NetworkOutput", "build_network"]
