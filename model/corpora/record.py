"""The one record every corpus reader produces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance.

    path: audio file (absolute).
    label: canonical emotion name after label mapping ("angry", "happy", "neutral", "sad", ...).
    speaker: corpus-unique speaker id (IEMOCAP: "Ses01F"; RAVDESS: "Actor_01").
    gender: "F", "M" or "" when unknown.
    session: recording session ("Ses01") for leave-one-session-out, "" when the corpus has none.
    corpus: the name of the corpus it comes from in a run on several corpora
        (model.corpora.multi: speakers and sessions are then "NAME/ID"), "" when read alone.
    language: the language spoken ("English"), "" when unknown: RAVDESS and IEMOCAP are
        English; a manifest's optional ``language`` column; ``--language`` sets a corpus's.
    """

    path: Path
    label: str
    speaker: str
    gender: str = ""
    session: str = ""
    corpus: str = ""
    language: str = ""


class CorpusError(ValueError):
    """A corpus folder or manifest that cannot be read; the message names the file and problem."""
