"""Slow adaptation of a live speaker profile to the voice being heard (on by the user's choice).

While the user speaks, the speech frames of each new hop are added to their profile (starting
from the saved calibration when there is one); every ``update_seconds`` of new speech a fresh
profile is made and handed back to be applied and saved. The profile's weight against the
training statistics grows with the speech seen (model.adaptation.profile.blended_norm), so the
standardisation moves slowly: 30 s of speech weigh as much as the training data, ten minutes
nearly replace it. Only frames the speech detector marked are used, and a hop is added once.
"""
from __future__ import annotations

import torch

from ser_studio.model.adaptation.profile import ProfileBuilder, SpeakerProfile

UPDATE_SECONDS = 5.0  # new speech between two updates of the profile


class SlowAdaptation:
    """Accumulates a live speaker's speech frames for one model (its sha1 and frontend
    fingerprint) and gives a new profile every ``update_seconds`` of speech."""

    def __init__(self, model_sha1: str, frontend: str, frame_rate: float,
                 base: SpeakerProfile | None = None, update_seconds: float = UPDATE_SECONDS):
        self.model_sha1, self.frontend, self.frame_rate = model_sha1, frontend, frame_rate
        self.update_seconds = update_seconds
        self._builder = (ProfileBuilder.from_profile(base, frame_rate) if base is not None
                         else ProfileBuilder())
        self._pending = 0.0  # speech seconds added since the last profile

    @property
    def speech_seconds(self) -> float:
        """Speech the profile is made from (the base's included)."""
        return self._builder.speech_seconds

    def add_hop(self, window_feats: torch.Tensor, hop_seconds: float) -> SpeakerProfile | None:
        """Add the newest ``hop_seconds`` of a speech window's features (T, D) or (L, T, D)
        (their last frames); returns a new profile when ``update_seconds`` of speech have
        been added since the last one, else None. Call only for hops the detector marked
        as speech."""
        frames = max(1, round(hop_seconds * self.frame_rate))
        newest = window_feats.float()[..., -frames:, :]
        self._builder.add_frames(newest, hop_seconds)
        self._pending += hop_seconds
        if self._pending + 1e-9 < self.update_seconds:
            return None
        self._pending = 0.0
        return self._builder.profile(self.model_sha1, self.frontend)
