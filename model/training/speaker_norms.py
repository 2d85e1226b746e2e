"""Per-speaker or per-corpus standardisation for training and testing (TrainConfig.speaker_norm
"speaker" or "corpus").

"speaker": each speaker's utterances are standardised by that speaker's own statistics, built
exactly as a user's calibration builds them (model.adaptation.profile): the mean and spread of
the features over silero-vad's speech frames of the speaker's recordings, blended with the
training side's global statistics by the amount of speech seen. A model trained this way has
seen every speaker relative to their own voice, which is the input a calibrated user gives it.
"corpus": the same statistics over all the speech of each speaker's corpus (its recording set
up and language), so every corpus reaches the network centred on itself; a test corpus is
standardised by its own unlabelled audio.

Speech spans are found once per audio file and kept on disk beside the feature cache
(``<cache>/speech_spans/<sha[:2]>/<sha>.json``: the spans and the file's sample count), so folds
and reruns do not run the speech detector again (within a run each file is read from disk once).
A broken entry is recomputed, never trusted.
A corpus file in which the detector finds no speech counts whole (it is labelled speech).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ser_studio.model.adaptation.profile import ProfileBuilder, blended_norm
from ser_studio.model.audio.io import load_audio
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.files import atomic_write, default_cache_dir, file_sha1

log = logging.getLogger(__name__)

Norm = tuple[torch.Tensor, torch.Tensor]  # mean (D,), std (D,)


class SpanCache:
    """path -> (speech spans as (start, end) samples, n_samples) of an audio file."""

    def __init__(self, root: str | Path | None = None):
        self.folder = Path(root or default_cache_dir()) / "speech_spans"
        self.computed = 0
        self._held: dict[Path, tuple[list[tuple[int, int]], int]] = {}

    def get(self, path: str | Path) -> tuple[list[tuple[int, int]], int]:
        path = Path(path)
        if path not in self._held:
            self._held[path] = self._load(path)
        return self._held[path]

    def _load(self, path: Path) -> tuple[list[tuple[int, int]], int]:
        """The entry of ``path`` on disk, computed (and written) when missing or broken."""
        sha = file_sha1(path)
        entry = self.folder / sha[:2] / f"{sha}.json"
        cached = self._read(entry)
        if cached is not None:
            return cached
        from ser_studio.model.audio import vad

        wav = load_audio(path)
        spans = vad.speech_spans(wav) or [(0, int(wav.shape[0]))]
        self.computed += 1
        entry.parent.mkdir(parents=True, exist_ok=True)
        doc = {"spans": [list(s) for s in spans], "n_samples": int(wav.shape[0])}
        atomic_write(entry, lambda tmp: tmp.write_text(json.dumps(doc)))
        return spans, int(wav.shape[0])

    @staticmethod
    def _read(entry: Path) -> tuple[list[tuple[int, int]], int] | None:
        try:
            doc = json.loads(entry.read_text())
            spans = [(int(s), int(e)) for s, e in doc["spans"]]
            return spans, int(doc["n_samples"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _add(builder: ProfileBuilder, utt: Utterance, features: Mapping, spans: SpanCache,
         frame_rate: float) -> None:
    """Add ``utt``'s speech frames (features: path -> (T, D) or (L, T, D)) to ``builder``."""
    found, n_samples = spans.get(utt.path)
    builder.add(features[utt.path], found, n_samples, frame_rate)


def speech_norm(utterances: Sequence[Utterance], features: Mapping, spans: SpanCache,
                frame_rate: float) -> Norm:
    """(mean, std) (D,) over the speech frames of all ``utterances``: the statistics an
    uncalibrated user of a speaker-normalised model gets."""
    pooled = ProfileBuilder()
    for utt in utterances:
        _add(pooled, utt, features, spans, frame_rate)
    profile = pooled.profile(model_sha1="", frontend="")
    return torch.tensor(profile.mean), torch.tensor(profile.std)


def _group_norms(utterances: Sequence[Utterance], group, features: Mapping, spans: SpanCache,
                 frame_rate: float, mean: torch.Tensor, std: torch.Tensor) -> dict[str, Norm]:
    """group(utt) -> (mean, std) (D,): the profile of the group's speech frames blended with
    the global ``mean``/``std`` by speech seen; a group with no speech found gets no entry."""
    builders: dict[str, ProfileBuilder] = defaultdict(ProfileBuilder)
    for utt in utterances:
        _add(builders[group(utt)], utt, features, spans, frame_rate)
    norms = {}
    for name, builder in builders.items():
        if builder.speech_seconds > 0:
            norms[name] = blended_norm(builder.profile(model_sha1="", frontend=""), mean, std)
        else:
            log.warning("%s: no speech found; standardised with the global statistics", name)
    return norms


def speaker_norms(utterances: Sequence[Utterance], features: Mapping, spans: SpanCache,
                  frame_rate: float, mean: torch.Tensor, std: torch.Tensor) -> dict[str, Norm]:
    """speaker -> (mean, std) (D,): the profile of their utterances' speech frames blended
    with the global ``mean``/``std`` by speech seen (model.adaptation.profile.blended_norm). A
    speaker with no speech found gets no entry (the global statistics apply)."""
    return _group_norms(utterances, lambda u: u.speaker, features, spans, frame_rate, mean, std)


def corpus_norms(utterances: Sequence[Utterance], features: Mapping, spans: SpanCache,
                 frame_rate: float, mean: torch.Tensor, std: torch.Tensor) -> dict[str, Norm]:
    """speaker -> (mean, std) (D,) of their corpus: the profile of the speech frames of all of
    ``utterances`` of that corpus, blended as ``speaker_norms`` blends a speaker's."""
    by_corpus = _group_norms(utterances, lambda u: u.corpus, features, spans, frame_rate,
                             mean, std)
    return {u.speaker: by_corpus[u.corpus] for u in utterances if u.corpus in by_corpus}


def group_norms(how: str, utterances: Sequence[Utterance], features: Mapping,
                spans: SpanCache, frame_rate: float, mean: torch.Tensor,
                std: torch.Tensor) -> dict[str, Norm]:
    """speaker -> (mean, std) for TrainConfig.speaker_norm ``how`` ("speaker" or "corpus")."""
    norms = {"speaker": speaker_norms, "corpus": corpus_norms}[how]
    return norms(utterances, features, spans, frame_rate, mean, std)
