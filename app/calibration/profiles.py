"""Saved speaker profiles of the live view: one per input device and model.

A profile (model/adaptation/profile.py) is a small JSON file under the user data folder
(platformdirs "ser-studio"/profiles), named from the input's name and the model's identity
(Predictor.model_sha1: the weights' sha1, which an ONNX export of them shares), so each
microphone keeps its own calibration for each model. A replayed file (``--replay``) is an input
of its own, "Replay: <file name>" (app.live.controls.replay_input_name): what is recorded from it is
never saved as, or applied to, a microphone's calibration. These functions
run in the inference worker's thread (they read files and touch the Predictor); there is no Qt
here.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from ser_studio.model.adaptation.live import SlowAdaptation
from ser_studio.model.adaptation.profile import ProfileError, load_profile, make_profile

log = logging.getLogger(__name__)

MAX_SLUG = 60  # characters of the device name kept in a file name


@dataclass(frozen=True)
class ActiveProfile:
    """The profile a live predictor uses: for ``device``, from ``speech_seconds`` of speech,
    stored at ``path``."""

    device: str
    speech_seconds: float
    path: str


def default_profiles_dir() -> Path:
    """platformdirs user data dir / "profiles"."""
    return Path(platformdirs.user_data_dir("ser-studio")) / "profiles"


def profile_path(folder: str | Path, device: str, model_sha1: str) -> Path:
    """Where the profile of input ``device`` (its name) for the model with weights
    ``model_sha1`` lives in ``folder``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", device).strip("_.")[:MAX_SLUG] or "input"
    return Path(folder) / f"{slug}--{model_sha1[:16]}.json"


def apply_saved(predictor, folder: str | Path, device: str) -> ActiveProfile | None:
    """Apply the saved profile of ``device`` for ``predictor``'s model, if there is one
    (None: none saved, the training statistics are used). ProfileError for a file that is
    broken or made for another model; the predictor then uses the training statistics."""
    path = profile_path(folder, device, predictor.model_sha1())
    predictor.use_profile(None)
    if not path.is_file():
        return None
    profile = load_profile(path)
    predictor.use_profile(profile, source=path)
    log.info("using speaker profile %s (%.1f s of speech)", path, profile.speech_seconds)
    return ActiveProfile(device, profile.speech_seconds, str(path))


def calibrate(predictor, chunks, folder: str | Path, device: str) -> ActiveProfile:
    """Build the profile of the recorded ``chunks`` ((N,) float32 16 kHz pieces of one
    recording), save it for ``device`` and apply it. ProfileError when there was no speech."""
    wav = np.concatenate([np.asarray(c, dtype=np.float32) for c in chunks]) if len(chunks) \
        else np.zeros(0, dtype=np.float32)
    return _save_and_apply(predictor, make_profile(predictor, [wav]),
                           profile_path(folder, device, predictor.model_sha1()), device)


def _save_and_apply(predictor, profile, path: Path, device: str) -> ActiveProfile:
    """Save ``profile`` at ``path`` and make ``predictor`` use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.save(path)
    predictor.use_profile(profile, source=path)
    log.info("saved speaker profile %s (%.1f s of speech)", path, profile.speech_seconds)
    return ActiveProfile(device, profile.speech_seconds, str(path))


def forget(predictor, folder: str | Path, device: str) -> None:
    """Delete the saved profile of ``device`` for ``predictor``'s model and go back to the
    training statistics."""
    path = profile_path(folder, device, predictor.model_sha1())
    path.unlink(missing_ok=True)
    predictor.use_profile(None)
    log.info("removed speaker profile %s", path)


class Adapting:
    """The live profile of ``device`` kept adapting to the voice heard (model.adaptation.live),
    starting from its saved calibration (if any) and saved again at every update."""

    def __init__(self, predictor, folder: str | Path, device: str):
        self.device = device
        self.path = profile_path(folder, device, predictor.model_sha1())
        base = None
        if self.path.is_file():
            try:
                base = load_profile(self.path)
            except ProfileError as exc:  # a broken file is replaced by the adapted profile
                log.warning("adapting from scratch: %s", exc)
        self.slow = SlowAdaptation(predictor.model_sha1(), predictor.frontend.fingerprint(),
                                   float(predictor.frontend.frame_rate), base)

    def add_hop(self, predictor, window_feats, hop_seconds: float) -> ActiveProfile | None:
        """Add a speech hop's newest frames of the window features (T, D); at an update the
        grown profile is saved, applied and returned."""
        profile = self.slow.add_hop(window_feats, hop_seconds)
        if profile is None:
            return None
        return _save_and_apply(predictor, profile, self.path, self.device)
