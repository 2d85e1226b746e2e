"""RAVDESS-style corpus reader: audio files named ``MM-VV-EE-II-SS-RR-AA.ext``, found recursively.

EE is the emotion code, AA the actor (odd = male, even = female). The corpus has no sessions.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from ser_studio.model.corpora.labels import RAVDESS_EMOTIONS
from ser_studio.model.corpora.record import CorpusError, Utterance

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

# modality-channel-emotion-intensity-statement-repetition-actor
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def _audio_files(root: Path) -> Iterator[Path]:
    """Audio files under ``root`` (recursive, hidden files skipped), in no particular order."""
    for path in root.rglob("*"):
        if path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith("."):
            if path.is_file():
                yield path


def is_ravdess_name(path: Path) -> bool:
    """Whether ``path`` is an audio file named like 03-01-05-01-02-01-12.wav."""
    return path.suffix.lower() in AUDIO_SUFFIXES and RAVDESS_NAME.match(path.stem) is not None


def has_ravdess_files(root: Path) -> bool:
    """Whether any audio file under ``root`` has a RAVDESS-style name (stops at the first)."""
    return any(is_ravdess_name(p) for p in _audio_files(root))


def parse_ravdess_name(path: Path) -> Utterance:
    """The utterance a RAVDESS-named file holds: label, speaker "Actor_AA", gender, no session.

    Raises CorpusError naming the file when the name is not RAVDESS-style or its emotion code
    or actor number is out of range.
    """
    match = RAVDESS_NAME.match(path.stem)
    if match is None:
        raise CorpusError(
            f"{path}: not a RAVDESS name (MM-VV-EE-II-SS-RR-AA, e.g. 03-01-05-01-02-01-12)"
        )
    emotion, actor = match.group(3), match.group(7)
    if emotion not in RAVDESS_EMOTIONS:
        raise CorpusError(
            f"{path}: emotion code {emotion} is not one of {', '.join(sorted(RAVDESS_EMOTIONS))}"
        )
    if int(actor) < 1:
        raise CorpusError(f"{path}: actor number {actor} must be 01 or more")
    gender = "M" if int(actor) % 2 == 1 else "F"
    return Utterance(path.resolve(), RAVDESS_EMOTIONS[emotion], f"Actor_{actor}", gender, "",
                     language="English")


def read_ravdess(root: Path) -> list[Utterance]:
    """All RAVDESS-named audio files under ``root``, sorted by path.

    Audio files with other names are ignored (and counted in the log). Raises CorpusError
    naming ``root`` when none is found.
    """
    utterances: list[Utterance] = []
    ignored = 0
    for path in sorted(_audio_files(root)):
        if is_ravdess_name(path):
            utterances.append(parse_ravdess_name(path))
        else:
            ignored += 1
    if not utterances:
        raise CorpusError(
            f"{root}: no audio files named like 03-01-05-01-02-01-12.wav "
            f"({'/'.join(AUDIO_SUFFIXES)}, searched recursively)"
        )
    if ignored:
        log.warning("%s: ignored %d audio files without a RAVDESS-style name", root, ignored)
    log.info("%s: %d RAVDESS-named audio files", root, len(utterances))
    return utterances
