"""Networks by name: ``build_network(cfg)`` rebuilds a network from its ModelConfig
(checkpoints store the config). Every network's ``forward(x, lengths, alpha=0.0)`` takes
features x (B, T, D), or (B, L, T, D) when cfg.input_layers > 1, and lengths (B,) of valid
frames, and returns a NetworkOutput (model.networks.output).
"""
from __future__ import annotations

from torch import nn

from ser_studio.model.config.schema import ARCHS, ModelConfig
from ser_studio.model.networks.baseline import BaselineGRU
from ser_studio.model.networks.enhanced import EnhancedGRU
from ser_studio.model.networks.ensemble import Ensemble
from ser_studio.model.networks.stats_branch import StatsFusion, StatsLinear


def build_network(cfg: ModelConfig) -> nn.Module:
    """The network named by cfg.arch ("baseline", "enhanced" or "stats_linear", the pooled
    statistics with a linear head), freshly initialised; an
    Ensemble of cfg.ensemble such networks when cfg.ensemble > 1; each fused with an
    utterance-statistics classifier when cfg.stats_branch."""
    networks = {"baseline": BaselineGRU, "enhanced": EnhancedGRU, "stats_linear": StatsLinear}
    if cfg.arch not in networks:
        raise ValueError(f"arch {cfg.arch!r} not known; available = {list(ARCHS)}")

    def single() -> nn.Module:
        network = networks[cfg.arch](cfg)
        return StatsFusion(network, cfg) if cfg.stats_branch else network

    if cfg.ensemble > 1:
        return Ensemble([single() for _ in range(cfg.ensemble)])
    return single()

