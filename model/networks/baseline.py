"""The baseline network (the seed's GRUModel): a bidirectional GRU with Luong "general"
matching attention of every frame over the utterance, then global max pooling.

x -> input dropout -> BiGRU (packed) -> h (B, T, 2H)
  -> score_ij = h_i^T W h_j, softmax over valid j -> context_i = sum_j a_ij h_j
  -> tanh(W_c [context_i; h_i])   (Luong's attentional hidden state)
  -> max over valid frames -> ReLU -> dropout -> linear -> logits
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ser_studio.model.config.schema import ModelConfig
from ser_studio.model.networks.layers import InputStage, frame_attention, masked_max, packed_rnn
from ser_studio.model.networks.output import NetworkOutput


class MatchingAttention(nn.Module):
    """Luong "general" self-matching attention, vectorised with batched matrix products.

    forward(h (B, T, C), mask (B, T)) -> (context (B, T, C), weights (B, T, T)), where
    weights[b, i, j] = softmax_j(h_i^T W h_j) over valid key frames j (0 on padded j).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.transform = nn.Linear(dim, dim, bias=False)

    def forward(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(h, self.transform(h).transpose(1, 2))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, h), weights


class BaselineGRU(nn.Module):
    """Bidirectional GRU + matching attention + global max pooling classifier.

    cfg.hidden is the GRU width per direction, cfg.gru_layers its depth (dropout cfg.dropout
    between layers). forward(x, lengths, alpha) takes x (B, T, D) or (B, L, T, D) when
    cfg.input_layers > 1 and lengths (B,); alpha is accepted for a uniform interface and unused
    (no speaker head). Returns NetworkOutput with logits (B, n_classes), attention (B, T') and
    speaker_logits None.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = 2 * cfg.hidden
        self.inputs = InputStage(cfg.input_dim, cfg.input_layers, cfg.frame_pool)
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.gru = nn.GRU(cfg.input_dim, cfg.hidden, num_layers=cfg.gru_layers,
                          batch_first=True, bidirectional=True,
                          dropout=cfg.dropout if cfg.gru_layers > 1 else 0.0)
        self.attention = MatchingAttention(width)
        self.combine = nn.Linear(2 * width, width)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(width, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor, alpha: float = 0.0) -> NetworkOutput:
        x, lengths, mask = self.inputs(x, lengths)
        h = packed_rnn(self.gru, self.input_dropout(x), lengths)          # (B, T', 2H)
        context, weights = self.attention(h, mask)                        # (B, T', 2H), (B, T', T')
        attended = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))
        pooled = torch.relu(masked_max(attended, mask))                   # (B, 2H)
        logits = self.classifier(self.dropout(pooled))
        return NetworkOutput(logits=logits, attention=frame_attention(weights, mask),
                             speaker_logits=None, frame_lengths=lengths)
