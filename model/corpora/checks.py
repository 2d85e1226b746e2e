"""What a corpus reader must not pass over in silence: duplicates, conflicting labels, a single
class, malformed label lines, and clips that are silent or too short to be speech.

Each finding is a :class:`CorpusWarning` with a count and the first examples; the corpus
command prints them, ``corpus --json`` lists them under "warnings", the wizard's corpus page
shows them and training logs them. Where training would be meaningless the finding is an
error instead (:func:`check_trainable`).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser_studio.model.constants import MIN_UTTERANCE_SECONDS
from ser_studio.model.corpora.record import CorpusError, Utterance

log = logging.getLogger(__name__)

EXAMPLES = 3                # examples named per warning
MIN_CLIP_SECONDS = MIN_UTTERANCE_SECONDS  # shorter clips cannot hold an emotional utterance
SILENCE_DBFS = -60.0        # a clip whose peak is below this holds no audible speech


@dataclass(frozen=True)
class CorpusWarning:
    """One kind of problem found in a corpus: code (stable key), count, first examples and
    a sentence for people (``message``)."""

    code: str
    count: int
    examples: tuple[str, ...]
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "count": self.count, "examples": list(self.examples),
                "message": self.message}

    def __str__(self) -> str:
        first = f" (first: {', '.join(self.examples)})" if self.examples else ""
        return f"{self.message}{first}"


def make_warning(code: str, items: Sequence[str], message: str) -> CorpusWarning:
    """A warning about ``items`` (their count, the first EXAMPLES of them)."""
    return CorpusWarning(code, len(items), tuple(str(i) for i in items[:EXAMPLES]), message)


def warnings_of(*entries: tuple[str, Sequence[str], str]) -> list[CorpusWarning]:
    """A warning per (code, items, message) entry that has items."""
    return [make_warning(code, items, message) for code, items, message in entries if items]


def deduplicate(pairs: Iterable[tuple[Utterance, str | None]], root: Path, *,
                drop_conflicts: bool = False
                ) -> tuple[list[tuple[Utterance, str | None]], list[CorpusWarning]]:
    """(utterance, mapped label) pairs with each audio file once, and warnings about what was
    merged or dropped. A None label (not mapped to a class) stands for the raw label code.

    A file listed twice with the same label counts once (warning "duplicates"). A file listed
    under two labels is a CorpusError naming the first such files, unless ``drop_conflicts``:
    then every row of such a file is left out (warning "conflicting_labels").
    """
    rows: dict[Path, list[tuple[Utterance, str | None]]] = defaultdict(list)
    for utt, label in pairs:
        rows[utt.path].append((utt, label))
    kept, duplicates, conflicts = [], [], []
    for path, listed in rows.items():
        labels = sorted({label if label is not None else utt.label.strip().lower()
                         for utt, label in listed})
        if len(labels) > 1:
            conflicts.append(f"{path.name} ({' / '.join(labels)})")
            continue
        if len(listed) > 1:
            duplicates.append(f"{path.name} x{len(listed)}")
        kept.append(listed[0])
    if conflicts and not drop_conflicts:
        raise CorpusError(
            f"{root}: {len(conflicts)} audio file(s) are listed under two or more labels "
            f"(first: {', '.join(conflicts[:EXAMPLES])}); fix the labels, or leave those files "
            "out with --drop-conflicting")
    return kept, warnings_of(
        ("duplicates", duplicates, f"{len(duplicates)} audio file(s) listed more than once "
                                   "with the same label; each is counted once"),
        ("conflicting_labels", conflicts, f"{len(conflicts)} audio file(s) listed under two or "
                                          "more labels were left out (--drop-conflicting)"))


def class_warnings(labels: Sequence[str]) -> list[CorpusWarning]:
    """A warning when fewer than two classes are left: nothing to tell apart."""
    if len(labels) >= 2:
        return []
    return [make_warning("one_class", list(labels),
                         f"only one class ({', '.join(labels)}) after label mapping and class "
                         "selection: a classifier needs at least two, so this corpus cannot "
                         "be trained or evaluated")]


def check_trainable(corpus) -> None:
    """CorpusError when training on ``corpus`` would be meaningless (fewer than two classes)."""
    if len(corpus.labels) < 2:
        raise CorpusError(
            f"{corpus.root}: only one class ({', '.join(corpus.labels)}) after label mapping "
            "and class selection; training needs at least two (check --map and --classes)")


def _clip_facts(path: Path) -> tuple[float, float] | None:
    """(duration in seconds, peak in dBFS) of an audio file; None when it cannot be read."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError):  # soundfile raises LibsndfileError/RuntimeError
        return None
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    return data.shape[0] / rate, 20.0 * np.log10(max(peak, 1e-10))


def audio_warnings(utterances: Sequence[Utterance], *, min_seconds: float = MIN_CLIP_SECONDS,
                   silence_dbfs: float = SILENCE_DBFS) -> list[CorpusWarning]:
    """Warnings about clips that cannot be speech: shorter than ``min_seconds``, peak below
    ``silence_dbfs``, or unreadable. Reads every file (seconds for thousands of clips)."""
    short, silent, unreadable = [], [], []
    for utt in utterances:
        facts = _clip_facts(utt.path)
        if facts is None:
            unreadable.append(utt.path.name)
        elif facts[0] < min_seconds:
            short.append(f"{utt.path.name} ({facts[0]:.2f} s)")
        elif facts[1] < silence_dbfs:
            level = "digital silence" if facts[1] <= -199 else f"peak {facts[1]:.0f} dBFS"
            silent.append(f"{utt.path.name} ({level})")
    return warnings_of(
        ("short_clips", short, f"{len(short)} clip(s) shorter than {min_seconds:g} s are "
                               "labelled as speech"),
        ("silent_clips", silent, f"{len(silent)} clip(s) are silent (peak below "
                                 f"{silence_dbfs:g} dBFS) but labelled as speech"),
        ("unreadable_audio", unreadable, f"{len(unreadable)} audio file(s) cannot be decoded"))


def log_warnings(root: Path, warnings: Iterable[CorpusWarning]) -> None:
    """Each warning on the log, naming the corpus."""
    for warning in warnings:
        log.warning("%s: %s", root, warning)
