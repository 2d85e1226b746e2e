"""Speaker profiles: a voice's own feature statistics, so the model hears a speaker relative to
how that speaker normally sounds (speaker-level z-normalisation).

A profile holds the per-feature mean and standard deviation of a speaker's unlabelled speech,
after the model's frontend and its loudness normaliser, over the frames silero-vad marks as
speech. Applied to a Predictor it takes the place of the training data's standardisation,
blended by the amount of speech seen: with s seconds of speech the weight of the speaker's
statistics is s / (s + PRIOR_SECONDS), so a few seconds move the statistics a little and a
minute of speech mostly replaces them. A profile belongs to one model (its weights' sha1) and
one frontend (its fingerprint); applying it to another is refused.

Stored as a small JSON file: {"format", "version", "model_sha1", "frontend", "speech_seconds",
"mean", "std"}.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ser_studio.model.constants import SAMPLE_RATE

FORMAT = "ser-studio-speaker-profile"
VERSION = 1
PRIOR_SECONDS = 30.0   # speech at which the speaker's statistics weigh as much as the training data's
MIN_STD = 1e-3         # floor of a profile's per-feature spread


class ProfileError(ValueError):
    """A profile that cannot be used here; the message names the file and the problem."""


@dataclass(frozen=True)
class SpeakerProfile:
    """Per-feature mean and std (D,) of a speaker's speech frames, for one model."""

    model_sha1: str
    frontend: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    speech_seconds: float

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "model_sha1": self.model_sha1,
                "frontend": self.frontend, "speech_seconds": self.speech_seconds,
                "mean": list(self.mean), "std": list(self.std)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def load_profile(path: str | Path) -> SpeakerProfile:
    """Read a profile file; ProfileError naming it when it is not one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read a speaker profile: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ProfileError(f"{path}: not a speaker profile (format {FORMAT!r} version "
                           f"{VERSION} expected)")
    try:
        mean, std = tuple(map(float, doc["mean"])), tuple(map(float, doc["std"]))
        profile = SpeakerProfile(str(doc["model_sha1"]), str(doc["frontend"]), mean, std,
                                 float(doc["speech_seconds"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"{path}: broken speaker profile: {exc}") from exc
    if len(mean) != len(std) or not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise ProfileError(f"{path}: broken speaker profile: mean and std must be finite, of "
                           "one length, and std positive")
    return profile


def speech_frame_mask(n_frames: int, frame_rate: float, spans, n_samples: int) -> np.ndarray:
    """(T,) bool: frames whose centre lies in one of the speech ``spans`` (sample ranges) of
    a signal of ``n_samples`` samples analysed into ``n_frames`` frames at ``frame_rate``.
    The frame grid is centred in the signal (exact for centred STFT frames; within ~40 ms for
    an encoder with a long context, such as speech_embedding's 0.76 s)."""
    step = SAMPLE_RATE / frame_rate
    centres = np.arange(n_frames) * step + (n_samples - (n_frames - 1) * step) / 2
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in spans:
        mask |= (centres >= start) & (centres < end)
    return mask


class ProfileBuilder:
    """Accumulates speech frames of one speaker: ``add`` per recording, then ``profile``."""

    def __init__(self) -> None:
        self._sum = self._sq = None
        self._frames = 0
        self.speech_seconds = 0.0

    @classmethod
    def from_profile(cls, profile: SpeakerProfile, frame_rate: float) -> "ProfileBuilder":
        """A builder holding what ``profile`` was made from (its speech seconds at
        ``frame_rate`` frames per second), so more speech can be added to it."""
        builder = cls()
        frames = max(1, round(profile.speech_seconds * frame_rate))
        mean = torch.tensor(profile.mean, dtype=torch.float64)
        std = torch.tensor(profile.std, dtype=torch.float64)
        builder._sum, builder._sq = mean * frames, (std ** 2 + mean ** 2) * frames
        builder._frames, builder.speech_seconds = frames, profile.speech_seconds
        return builder

    def add_frames(self, frames: torch.Tensor, seconds: float) -> None:
        """Add speech frames (K, D) that cover ``seconds`` of speech."""
        frames = frames.reshape(-1, frames.shape[-1]).double()
        if frames.shape[0] == 0:
            return
        self._sum = frames.sum(0) if self._sum is None else self._sum + frames.sum(0)
        sq = (frames ** 2).sum(0)
        self._sq = sq if self._sq is None else self._sq + sq
        self._frames += frames.shape[0]
        self.speech_seconds += seconds

    def add(self, feats: torch.Tensor, spans, n_samples: int, frame_rate: float) -> None:
        """feats (T, D) or (L, T, D) of a recording of ``n_samples``; spans: its speech."""
        x = feats.float().reshape(-1, feats.shape[-2], feats.shape[-1])
        mask = torch.from_numpy(speech_frame_mask(x.shape[1], frame_rate, spans, n_samples))
        if mask.any():
            self.add_frames(x[:, mask], sum(e - s for s, e in spans) / SAMPLE_RATE)

    def add_recording(self, feats: torch.Tensor, wav: np.ndarray, frame_rate: float) -> None:
        """Add a recording wav (N,) at 16 kHz whose features are ``feats`` (T, D) or
        (L, T, D): its speech spans are found with silero-vad (model.audio.vad)."""
        from ser_studio.model.audio import vad

        self.add(feats, vad.speech_spans(wav), wav.shape[0], frame_rate)

    def profile(self, model_sha1: str, frontend: str) -> SpeakerProfile:
        """The profile of what was added; ProfileError when no speech was seen."""
        if self._frames == 0:
            raise ProfileError("no speech found to build a speaker profile from")
        mean = self._sum / self._frames
        std = torch.sqrt(torch.clamp(self._sq / self._frames - mean ** 2, min=0)).clamp_min(
            MIN_STD)
        return SpeakerProfile(model_sha1, frontend, tuple(mean.tolist()), tuple(std.tolist()),
                              round(self.speech_seconds, 3))


def enrol(predictor, recordings, limit_s: float | None = None) -> tuple[SpeakerProfile, int]:
    """(profile, how many recordings it used) of one speaker for a
    model.inference.predictor.Predictor.

    recordings: (features (T, D) or (L, T, D), wav (N,) at 16 kHz) pairs in the order the
    speaker spoke them, taken lazily; with ``limit_s`` recordings are added until that much
    speech has been seen (an enrolment), else all of them. ProfileError without speech."""
    builder, used = ProfileBuilder(), 0
    for feats, wav in recordings:
        if limit_s is not None and builder.speech_seconds >= limit_s:
            break
        builder.add_recording(feats, np.asarray(wav, dtype=np.float32),
                              predictor.frontend.frame_rate)
        used += 1
    return builder.profile(predictor.model_sha1(), predictor.frontend.fingerprint()), used


def adapted_probs(predictor, feats: list, wavs: list, mode: str, enrol_s: float = 0.0,
                  batch_size: int = 32) -> tuple[int, np.ndarray]:
    """Score one speaker's recordings (features and (N,) wavs, in the order spoken) with their
    own statistics, never their labels: ``mode`` "speaker" uses all of them for the profile and
    scores all; "enrol" builds it from the first ``enrol_s`` s of speech and scores only the
    recordings after those. Returns (index of the first scored recording, probs (K, C)). The
    predictor is left on the training statistics."""
    if mode not in ("speaker", "enrol"):
        raise ValueError(f"adaptation mode {mode!r}; 'speaker' or 'enrol'")
    profile, used = enrol(predictor, zip(feats, wavs), enrol_s if mode == "enrol" else None)
    first = used if mode == "enrol" else 0
    if first >= len(feats):
        return first, np.zeros((0, len(predictor.labels)), dtype=np.float32)
    predictor.use_profile(profile, source="speaker profile")
    try:
        return first, predictor.probs_of_features(list(feats[first:]), batch_size)
    finally:
        predictor.use_profile(None)


def expects_calibration(section: dict | object | None) -> bool:
    """Whether a model was trained with per-speaker or per-corpus standardisation
    (``speaker_norm`` "speaker" or "corpus"), so it is meant to be used with a speaker
    profile. ``section``: a checkpoint's inference section
    (model.config.inference.InferenceConfig), or a run's TrainConfig or its JSON dict (a
    training summary, before any checkpoint is loaded); None: no."""
    norm = section.get("speaker_norm") if isinstance(section, dict) else getattr(
        section, "speaker_norm", None)
    return norm in ("speaker", "corpus")


CALIBRATION_HINT = ("this model was trained with per-speaker (or per-corpus) standardisation "
                    "and expects calibration: make a profile of the speaker with `python "
                    "main.py profile` and pass it with --profile (without one it uses its "
                    "training data's statistics and is less accurate)")


def make_profile(predictor, wavs) -> SpeakerProfile:
    """The profile of one speaker's recordings ``wavs`` ((N,) float32 at 16 kHz each) for a
    model.inference.predictor.Predictor: its frontend's features over silero-vad's speech spans."""
    builder = ProfileBuilder()
    for wav in wavs:
        wav = np.asarray(wav, dtype=np.float32)
        builder.add_recording(predictor.frontend(wav), wav, predictor.frontend.frame_rate)
    return builder.profile(predictor.model_sha1(), predictor.frontend.fingerprint())


def blended_norm(profile: SpeakerProfile, mean: torch.Tensor, std: torch.Tensor,
                 prior_seconds: float = PRIOR_SECONDS) -> tuple[torch.Tensor, torch.Tensor]:
    """The standardisation (D,) a profile gives: its statistics blended with the training
    data's ``mean``/``std`` by speech seen, w = s / (s + prior_seconds); variances mix."""
    w = profile.speech_seconds / (profile.speech_seconds + prior_seconds)
    p_mean = torch.tensor(profile.mean, dtype=torch.float32)
    p_std = torch.tensor(profile.std, dtype=torch.float32)
    out_mean = w * p_mean + (1 - w) * mean
    out_std = torch.sqrt(w * p_std ** 2 + (1 - w) * std ** 2)
    return out_mean, out_std
