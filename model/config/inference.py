"""The inference section of a checkpoint: what running a trained network needs to know besides
its weights, frontend, labels and normalisation statistics.

The trainer writes it into every checkpoint it saves (``inference`` in the JSON sidecar,
model.networks.checkpoint) and an export copies it (model.exported), so inference (the
Predictor, ``predict``, speaker calibration) reads its settings here and never from the
training config. It lives in the config package, beside the run's configs (model.config.schema)
it is derived from, so the checkpoint, the export and the trainer import it without importing
each other.

A checkpoint or export written before the section existed has none: ``inference_section``
derives it from the training config stored with it, once, at load, with exactly the values
inference read from that config before, so such a model behaves as it did.
"""
from __future__ import annotations

from dataclasses import dataclass

from ser_studio.model.config.checks import check_choices, check_types, check_within, choice
from ser_studio.model.config.schema import SPEAKER_NORMS, TrainConfig


@dataclass(frozen=True)
class InferenceConfig:
    """How a trained network is run.

    crop_seconds: the longest input the network is run on whole, in seconds: a longer one is
        centre-cropped to it, as the trainer evaluated whole utterances up to this length
        (TrainConfig.eval_max_seconds); 0 = whole inputs of any length.
    speaker_norm: how the training standardised each utterance's features. "global": with the
        checkpoint's ``norm_mean``/``norm_std`` (its top-level fields, length D); "speaker":
        each speaker with the statistics of their own speech blended with those
        (model.training.speaker_norms), so the model expects a speaker profile
        (model.adaptation.profile) and, without one, uses the global statistics; "corpus":
        each corpus with its own, so the model, too, expects a profile of the user's voice.

    No window or hop: a network trained on crops of varying length states none, so file
    timelines and live windows take theirs from model.constants (WINDOW_SECONDS,
    HOP_SECONDS, LIVE_BUFFER_SECONDS, LIVE_HOP_SECONDS) and the user's options.
    """

    crop_seconds: float = 0.0
    speaker_norm: str = choice("global", SPEAKER_NORMS)

    def __post_init__(self) -> None:
        check_types(self)
        check_choices(self)
        check_within(self, "crop_seconds", 0.0, 1e6)


def inference_section(train: TrainConfig | None) -> InferenceConfig:
    """The inference section of a network trained with ``train``: what the trainer writes,
    and what a checkpoint written without a section (or without a training config: None,
    whole inputs, global statistics) loads as."""
    if train is None:
        return InferenceConfig()
    return InferenceConfig(crop_seconds=train.eval_max_seconds, speaker_norm=train.speaker_norm)
