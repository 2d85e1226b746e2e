"""Utterance-statistics branch: a linear classifier on pooled feature statistics, fused with a
sequence network as a two-member ensemble.

A recurrent network and a linear model of utterance statistics make different mistakes: the
statistics (mean and spread of every feature dimension, and the size of its frame-to-frame
change) carry level, spectral tilt and variability, which the RNN's max-pooled states see only
indirectly. Averaging the two probability vectors is steadier across unseen speakers than
either alone.

utterance_stats: x (B, T, D), mask (B, T) -> (B, 3D) = [mean, std, rms of first differences]
over valid frames (padding never enters). StatsFusion(network, cfg).forward(x, lengths, alpha) returns a
NetworkOutput whose logits are the log of the mean of the two branches' probabilities, whose
attention and speaker logits are the sequence network's, and whose ``members`` are the two
branch outputs (each trained on its own loss by the trainer).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ser_studio.model.config.schema import ModelConfig
from ser_studio.model.networks.layers import (lengths_to_mask, log_mean_probability, masked_mean,
                                              zero_padding)
from ser_studio.model.networks.output import NetworkOutput

STATS_PER_DIM = 3


def utterance_stats(x: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D) features and (B, T) mask -> (B, 3D): mean, std and root-mean-square of the
    first differences over valid frames (a single frame has zero spread and no change)."""
    mean = masked_mean(x, mask)
    centred = zero_padding(x - mean.unsqueeze(1), mask)
    count = mask.sum(dim=1, keepdim=True).to(x.dtype)
    std = (centred.pow(2).sum(dim=1) / count).clamp_min(1e-8).sqrt()
    pair = mask[:, 1:] & mask[:, :-1]                                       # (B, T-1)
    delta = zero_padding(x[:, 1:] - x[:, :-1], pair) if x.shape[1] > 1 else x[:, :0]
    n_pairs = pair.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
    delta_rms = (delta.pow(2).sum(dim=1) / n_pairs).clamp_min(1e-8).sqrt()
    return torch.cat([mean, std, delta_rms], dim=-1)


class StatsFusion(nn.Module):
    """``network`` plus a dropout + linear classifier on ``utterance_stats`` of its input."""

    def __init__(self, network: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.network = network
        self.dropout = nn.Dropout(cfg.dropout)
        self.stats_classifier = nn.Linear(STATS_PER_DIM * cfg.input_dim, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor, alpha: float = 0.0) -> NetworkOutput:
        seq = self.network(x, lengths, alpha=alpha)       # validates x and lengths first
        frames = x.mean(dim=1) if x.dim() == 4 else x     # layer stacks: mean over layers
        mask = lengths_to_mask(lengths.to(device=x.device, dtype=torch.long), frames.shape[1])
        stats_logits = self.stats_classifier(self.dropout(utterance_stats(frames, mask)))
        stats = NetworkOutput(logits=stats_logits, attention=seq.attention,
                              speaker_logits=None, frame_lengths=seq.frame_lengths)
        return NetworkOutput(logits=log_mean_probability([seq.logits, stats_logits]), attention=seq.attention,
                             speaker_logits=None, frame_lengths=seq.frame_lengths,
                             members=[seq, stats])


class StatsLinear(nn.Module):
    """The pooled-statistics baseline on its own: dropout + linear on ``utterance_stats`` of
    the input frames (B, T, D) (layer stacks (B, L, T, D) are averaged over layers first).
    Attention is uniform over the valid frames; there is no speaker head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(STATS_PER_DIM * cfg.input_dim, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor, alpha: float = 0.0) -> NetworkOutput:
        frames = x.mean(dim=1) if x.dim() == 4 else x
        lengths = lengths.to(device=x.device, dtype=torch.long)
        mask = lengths_to_mask(lengths, frames.shape[1])
        logits = self.classifier(self.dropout(utterance_stats(frames, mask)))
        attention = mask.to(frames.dtype) / lengths.clamp_min(1).unsqueeze(1).to(frames.dtype)
        return NetworkOutput(logits=logits, attention=attention, speaker_logits=None,
                             frame_lengths=lengths)
