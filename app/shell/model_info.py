"""What the UI shows about a loaded model: its name, path, labels and the checkpoint's facts.

Built in the worker threads that load models (app/live/inference_worker.py,
app/files/file_worker.py) and sent to the GUI with their ``modelLoaded`` signals; the About
box shows the facts.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ser_studio.model.adaptation.profile import expects_calibration

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows about the loaded model. facts: the checkpoint's JSON sidecar;
    expects_calibration: trained per speaker, so meant to be used with a speaker profile (the
    checkpoint's inference section, model.config.inference)."""

    name: str
    path: str
    labels: list[str]
    facts: dict = field(default_factory=dict)
    expects_calibration: bool = False

    @property
    def languages(self) -> dict[str, int]:
        """The languages of its training utterances -> how many; {} when not recorded."""
        value = self.facts.get("languages")
        return dict(value) if isinstance(value, dict) else {}


def languages_text(languages: dict[str, int]) -> str:
    """One sentence on the languages a model was trained on, most utterances first:
    "Trained on English (576 clips), Polish (3076) and Korean (300) speech"; for none
    recorded, that it does not say."""
    if not languages:
        return "Its training languages are not recorded (a model trained before they were)"
    items = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
    named = [f"{name} ({count}{' clips' if i == 0 else ''})"
             for i, (name, count) in enumerate(items)]
    if len(named) == 1:
        return f"Trained on {named[0]} speech only"
    return f"Trained on {', '.join(named[:-1])} and {named[-1]} speech"


def model_info(predictor) -> ModelInfo:
    """What the UI shows about a loaded Predictor."""
    return ModelInfo(name=str(predictor.name), path=str(predictor.checkpoint_path),
                     labels=list(predictor.labels),
                     facts=_read_facts(Path(predictor.checkpoint_path)),
                     expects_calibration=expects_calibration(predictor.checkpoint.inference))


def _read_facts(checkpoint: Path) -> dict:
    """The checkpoint's JSON sidecar (small) as a dict; {} when absent or unreadable."""
    sidecar = checkpoint.with_suffix(".json")
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        log.info("no readable model facts at %s: %s", sidecar, exc)
        return {}
