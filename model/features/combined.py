"""Several frontends as one: each part's frames are average-pooled to the slowest part's rate
and concatenated, so a network sees, for example, speech_embedding and GE2E states side by side.

Rates must be whole multiples of the slowest (100 and 12.5 frames per second: a factor of 8).
Pooled frame j of a part covers its frames [j*k, (j+1)*k); the sequence is as long as the
shortest pooled part. A name such as "speech_embedding+ge2e" selects this (model.config.schema).
"""
from __future__ import annotations

import math

import numpy as np
import torch


class ConcatFrontend:
    """(N,) -> (T, sum of the parts' dims) at the slowest part's frame rate."""

    def __init__(self, config, parts: list) -> None:
        self.config, self.parts = config, list(parts)
        if any(p.layers != 1 for p in self.parts):
            raise ValueError("combined frontends take single-layer parts (no @weighted)")
        self.frame_rate = min(p.frame_rate for p in self.parts)
        self.factors = []
        for part in self.parts:
            factor = part.frame_rate / self.frame_rate
            if abs(factor - round(factor)) > 1e-9:
                raise ValueError(f"{part.config.name} runs at {part.frame_rate} frames/s, not a "
                                 f"whole multiple of {self.frame_rate}")
            self.factors.append(int(round(factor)))
        self.dim, self.layers = sum(p.dim for p in self.parts), 1

    def fingerprint(self) -> str:
        from ser_studio.model.features.base import digest

        return digest({"name": "combined", "parts": [p.fingerprint() for p in self.parts]})

    @staticmethod
    def _pool(feats: torch.Tensor, factor: int) -> torch.Tensor:
        """(T, D) -> (ceil(T / factor), D) means of consecutive frames."""
        if factor == 1:
            return feats
        n = math.ceil(feats.shape[0] / factor)
        padded = torch.nn.functional.pad(feats.T[None], (0, n * factor - feats.shape[0]),
                                         mode="replicate")[0].T
        return padded.reshape(n, factor, feats.shape[1]).mean(1)

    def __call__(self, wav: np.ndarray) -> torch.Tensor:
        pooled = [self._pool(p(wav), k) for p, k in zip(self.parts, self.factors)]
        length = min(f.shape[0] for f in pooled)
        return torch.cat([f[:length] for f in pooled], dim=1).contiguous()

    def batch(self, wavs: list[np.ndarray]) -> list[torch.Tensor]:
        return [self(wav) for wav in wavs]
