"""The enhanced network (the seed's EnhancedGRUModel), with the seed's slicing bugs fixed.

x -> input dropout -> Linear(D, H) -> + sinusoidal positions -> masked AdaIN over time
  -> gru_layers x [BiGRU (packed) -> Linear(2H, H) -> dropout -> LayerNorm(residual)]
  -> multi-head self-attention (padded keys masked) -> dropout -> LayerNorm(residual)
  -> frames (B, T, H), concatenated with the enhancement MLP's output -> (B, T, 2H)
  -> [mean; max] over valid frames (B, 4H) -> emotion MLP -> logits
                                           -> gradient reversal(alpha) -> speaker MLP

The seed sliced the concatenated frames back to their first part (dropping the enhancement
branch) and the pooled vector back to its mean half (dropping max pooling); here both are used.
Every part after the projection is switchable in ModelConfig for ablations.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ser_studio.model.config.schema import ModelConfig
from ser_studio.model.networks.layers import (InputStage, MaskedAdaIN,
                                              SinusoidalPositionalEncoding, frame_attention,
                                              grad_reverse, masked_max, masked_mean, packed_rnn,
                                              uniform_attention, zero_padding)
from ser_studio.model.networks.output import NetworkOutput


class ResidualBiGRU(nn.Module):
    """One bidirectional GRU layer that keeps the width: LayerNorm(x + dropout(W [fwd; bwd])).

    forward(x (B, T, H), lengths (B,), mask (B, T)) -> (B, T, H), padded frames 0.
    """

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        out = self.project(packed_rnn(self.gru, x, lengths))
        return zero_padding(self.norm(x + self.dropout(out)), mask)


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention with padded keys masked, residual and LayerNorm.

    forward(x (B, T, H), mask (B, T)) -> (x (B, T, H), weights (B, T, T) averaged over heads).
    """

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by attn_heads ({heads}) "
                             "for self-attention")
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out, weights = self.attention(x, x, x, key_padding_mask=~mask, need_weights=True,
                                      average_attn_weights=True)
        return zero_padding(self.norm(x + self.dropout(out)), mask), weights


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> dropout -> Linear, (..., in_dim) -> (..., out_dim)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, out_dim))


class EnhancedGRU(nn.Module):
    """Projection, positions, AdaIN, residual BiGRUs, self-attention, enhancement MLP,
    mean + max pooling, emotion head and an adversarial speaker head.

    forward(x, lengths, alpha) takes x (B, T, D), or (B, L, T, D) when cfg.input_layers > 1,
    lengths (B,) and alpha, the gradient-reversal scale for the speaker head. Returns
    NetworkOutput: logits (B, n_classes); attention (B, T'): the self-attention weights averaged
    over heads and valid queries, or uniform over valid frames when self-attention is off (then
    no attention exists to show); speaker_logits (B, n_speakers) or None when
    use_speaker_adversary is off or n_speakers is 0.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = cfg.hidden
        self.inputs = InputStage(cfg.input_dim, cfg.input_layers, cfg.frame_pool)
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.project = nn.Linear(cfg.input_dim, hidden)
        self.posenc = SinusoidalPositionalEncoding(hidden) if cfg.use_posenc else None
        self.adain = MaskedAdaIN(hidden) if cfg.use_adain else None
        self.blocks = nn.ModuleList(ResidualBiGRU(hidden, cfg.dropout)
                                    for _ in range(cfg.gru_layers))
        self.self_attention = (SelfAttentionBlock(hidden, cfg.attn_heads, cfg.dropout)
                               if cfg.use_self_attention else None)
        self.enhancement = (_mlp(hidden, 2 * hidden, hidden, cfg.dropout)
                            if cfg.use_enhancement else None)
        pooled = 2 * self.frame_dim
        self.emotion_head = _mlp(pooled, hidden, cfg.n_classes, cfg.dropout)
        self.speaker_head = (_mlp(pooled, hidden, cfg.n_speakers, cfg.dropout)
                             if cfg.use_speaker_adversary and cfg.n_speakers > 0 else None)

    @property
    def frame_dim(self) -> int:
        """Width C of the frame features that are pooled (2H with enhancement, else H)."""
        return 2 * self.cfg.hidden if self.cfg.use_enhancement else self.cfg.hidden

    def encode(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Frame features before pooling.

        Returns (frames (B, T', C), lengths (B,) after frame pooling, mask (B, T'),
        attention (B, T') display weights).
        """
        x, lengths, mask = self.inputs(x, lengths)
        h = self.project(self.input_dropout(x))                          # (B, T', H)
        if self.posenc is not None:
            h = self.posenc(h)
        if self.adain is not None:
            h = self.adain(h, mask)
        h = zero_padding(h, mask)
        for block in self.blocks:
            h = block(h, lengths, mask)
        if self.self_attention is not None:
            h, weights = self.self_attention(h, mask)
            attention = frame_attention(weights, mask)
        else:
            attention = uniform_attention(mask, h.dtype)
        if self.enhancement is not None:
            h = torch.cat([h, self.enhancement(h)], dim=-1)             # (B, T', 2H)
        return h, lengths, mask, attention

    def forward(self, x: Tensor, lengths: Tensor, alpha: float = 0.0) -> NetworkOutput:
        frames, lengths, mask, attention = self.encode(x, lengths)
        pooled = torch.cat([masked_mean(frames, mask), masked_max(frames, mask)], dim=-1)
        speaker_logits = None
        if self.speaker_head is not None:
            speaker_logits = self.speaker_head(grad_reverse(pooled, alpha))
        return NetworkOutput(logits=self.emotion_head(pooled), attention=attention,
                             speaker_logits=speaker_logits, frame_lengths=lengths)
