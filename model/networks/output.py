"""What every network returns: ``NetworkOutput`` (logits, attention, speaker logits, frame
lengths, ensemble members)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


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
