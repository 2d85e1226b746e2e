"""What a prediction is: ``Prediction`` (one waveform or window) and ``FileResult`` (a file's
overall prediction and window timeline), as model.inference.predictor.Predictor returns them, and
their JSON-able dict form (``prediction_to_dict``, ``file_result_to_dict``) for ``predict --json``.

Plain data with numpy only, so the command line and the GUI can use it without loading torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser_studio.model.audio.loudness import Level, level_warning


@dataclass(frozen=True)
class Prediction:
    """One prediction.

    label: the most probable class, or None when no speech was detected.
    probs: (n_classes,) float32 in the predictor's label order, summing to 1 (zeros when no
        speech). attention: (T',) network attention per (pooled) frame of the analysed span,
        summing to 1 (empty when no speech or for an averaged file result); attention_rate:
        its frames per second; attention_offset_s: where in the input the analysed span starts
        (non-zero after a centre crop). speech: VAD verdict (True when the VAD was skipped);
        speech_ratio: fraction of samples in speech (NaN when the VAD was skipped);
        latency_s: wall time of the call (VAD + features + network).
        level: the input's measured loudness (LUFS), peak (dBFS) and the gain the model's
        loudness normaliser applied (0 for a model without one).
    """

    label: str | None
    probs: np.ndarray
    attention: np.ndarray
    attention_rate: float
    speech: bool
    speech_ratio: float
    latency_s: float
    attention_offset_s: float = 0.0
    level: Level | None = None


@dataclass
class FileResult:
    """A file's overall prediction, its timeline of (start_s, end_s, prediction) windows and
    its speech segments (model.inference.segments.FinishedSegment: start_s, duration_s, label,
    mean probabilities of the windows analysed during it)."""

    path: Path
    duration_s: float
    overall: Prediction
    windows: list[tuple[float, float, Prediction]] = field(default_factory=list)
    segments: list = field(default_factory=list)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def level_to_dict(level: Level | None) -> dict:
    """input_loudness_lufs and input_peak_dbfs (None for silence), gain_db the normaliser
    applied, and level_warning ("" when the level is fine)."""
    if level is None:
        return {"input_loudness_lufs": None, "input_peak_dbfs": None, "gain_db": None,
                "level_warning": ""}
    return {"input_loudness_lufs": _finite(level.loudness_lufs),
            "input_peak_dbfs": _finite(level.peak_dbfs), "gain_db": float(level.gain_db),
            "level_warning": level_warning(level)}


def prediction_to_dict(pred: Prediction, labels: list[str]) -> dict:
    """JSON-able dict of a prediction: label, probs {label: p}, speech, speech_ratio (None when
    the VAD was skipped), latency_s, and the input level (``level_to_dict``); attention is
    left out."""
    return {"label": pred.label, "speech": pred.speech,
            "speech_ratio": _finite(pred.speech_ratio),
            "probs": {name: float(p) for name, p in zip(labels, pred.probs)},
            "latency_s": float(pred.latency_s), **level_to_dict(pred.level)}


def file_result_to_dict(result: FileResult, labels: list[str]) -> dict:
    """JSON-able dict of a file result: path, duration_s, the overall prediction's fields,
    windows [{start_s, end_s, label, probs, speech, speech_ratio, latency_s}] and speech
    segments [{start_s, duration_s, label, probs, windows}]."""
    return {"path": str(result.path), "duration_s": result.duration_s,
            **prediction_to_dict(result.overall, labels),
            "windows": [{"start_s": s, "end_s": e, **prediction_to_dict(p, labels)}
                        for s, e, p in result.windows],
            "segments": [{"start_s": seg.start_s, "duration_s": seg.duration_s,
                          "label": seg.label, "probs": dict(seg.probs), "windows": seg.windows}
                         for seg in result.segments]}
