"""An ensemble of identically configured networks, each trained on its own (model.training.members:
its own seed, batches, validation speakers and early stopping). The ensemble predicts the mean
of the members' class probabilities, which is steadier across unseen speakers than any single
member.

forward(x, lengths, alpha) -> NetworkOutput with
    logits: (B, C) log of the mean member probability (a valid logit vector: its softmax is
        that mean);
    attention: (B, T') mean of the members' attention (still sums to 1 over valid frames);
    speaker_logits: None (each member's speaker head is in ``members``);
    frame_lengths: (B,) as every member's.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ser_studio.model.networks.layers import log_mean_probability
from ser_studio.model.networks.output import NetworkOutput


class Ensemble(nn.Module):
    """``networks`` (same config) whose class probabilities are averaged."""

    def __init__(self, networks: list[nn.Module]) -> None:
        super().__init__()
        if len(networks) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(networks)}")
        self.members = nn.ModuleList(networks)

    def forward(self, x: Tensor, lengths: Tensor, alpha: float = 0.0) -> NetworkOutput:
        outs = [member(x, lengths, alpha=alpha) for member in self.members]
        logits = log_mean_probability([o.logits for o in outs])
        attention = torch.stack([o.attention for o in outs]).mean(dim=0)
        return NetworkOutput(logits=logits, attention=attention, speaker_logits=None,
                             frame_lengths=outs[0].frame_lengths)
