"""Emotional speech corpora: one ``Utterance`` record per labelled utterance, whatever the source.

``load_corpus(path)`` picks the reader from the path: a .csv file is a manifest, a folder
holding SessionN folders is IEMOCAP, a folder with RAVDESS-named audio files is RAVDESS.
Labels then go through the user's label map (and the corpus default, IEMOCAP: exc -> happy)
and the class subset (IEMOCAP default: the seed's angry, happy, neutral, sad).
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ser_studio.model.corpora.checks import (CorpusWarning, audio_warnings, check_trainable,
                                             class_warnings, deduplicate, log_warnings)
from ser_studio.model.corpora.iemocap import SESSION_DIR, read_iemocap, session_dirs
from ser_studio.model.corpora.labels import (SEED_CLASSES, canonical_classes, parse_classes,
                                             parse_label_map, resolve_label)
from ser_studio.model.corpora.manifest import read_manifest
from ser_studio.model.corpora.ravdess import has_ravdess_files, read_ravdess
from ser_studio.model.corpora.record import CorpusError, Utterance

__all__ = [
    "Corpus", "CorpusError", "CorpusWarning", "Utterance", "audio_warnings", "check_trainable",
    "detect_kind", "load_corpus", "parse_classes", "parse_label_map",
]

log = logging.getLogger(__name__)

KINDS = ("iemocap", "ravdess", "manifest")

# Per corpus kind: (default label map, default classes or None for "all present").
_DEFAULTS: dict[str, tuple[dict[str, str], tuple[str, ...] | None]] = {
    "iemocap": ({"exc": "happy"}, SEED_CLASSES),
    "ravdess": ({}, None),
    "manifest": ({}, None),
}


class UtteranceFacts:
    """What a corpus, or several pooled (model.corpora.multi.CorpusSet), says of its
    ``utterances``: size, labels, speakers, sessions, and their counts."""

    utterances: tuple[Utterance, ...]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def labels(self) -> list[str]:
        """Sorted unique label names."""
        return sorted({u.label for u in self.utterances})

    @property
    def speakers(self) -> list[str]:
        """Sorted unique speaker ids."""
        return sorted({u.speaker for u in self.utterances})

    @property
    def sessions(self) -> list[str]:
        """Sorted unique non-empty session ids (empty for corpora without sessions)."""
        return sorted({u.session for u in self.utterances if u.session})

    def counts(self) -> dict[str, dict[str, int]]:
        """labels, speakers, sessions, genders, languages: name -> utterances, sorted by name
        (those without a session, gender or known language are not counted there)."""
        return {"labels": _count(u.label for u in self.utterances),
                "speakers": _count(u.speaker for u in self.utterances),
                "sessions": _count(u.session for u in self.utterances),
                "genders": _count(u.gender for u in self.utterances),
                "languages": language_counts(self.utterances)}


def _count(values) -> dict[str, int]:
    return dict(sorted(Counter(v for v in values if v).items()))


def language_counts(utterances) -> dict[str, int]:
    """Language -> utterances of ``utterances``, sorted by name; those of unknown language
    (``Utterance.language`` "") are not counted."""
    return _count(u.language for u in utterances)


@dataclass(frozen=True)
class Corpus(UtteranceFacts):
    """A labelled corpus after label mapping and class selection.

    root: the folder (or manifest file) it was read from; kind: "iemocap" | "ravdess" |
    "manifest"; utterances: sorted by path. dropped: (label, count) pairs of utterances left
    out by the class selection (IEMOCAP "xxx" counts as "xxx"); missing_audio: labelled
    utterances skipped because their audio file does not exist. warnings: what the reader
    found wrong without refusing the corpus (model.corpora.checks).
    """

    root: Path
    kind: str
    utterances: tuple[Utterance, ...]
    dropped: tuple[tuple[str, int], ...] = ()
    missing_audio: int = 0
    warnings: tuple[CorpusWarning, ...] = ()

    def summary(self) -> dict:
        """Counts for reports and ``main.py corpus --json``.

        Keys: utterances (int); labels, speakers, sessions, genders, languages (name -> count,
        sorted by name; utterances without a session, gender or language are not counted
        there); dropped
        (label -> count); missing_audio (int); kind; root; warnings (list of {code, count,
        examples, message}).
        """
        return {
            "kind": self.kind,
            "root": str(self.root),
            "utterances": len(self.utterances),
            **self.counts(),
            "dropped": dict(self.dropped),
            "missing_audio": self.missing_audio,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def detect_kind(path: Path) -> str:
    """"manifest", "iemocap" or "ravdess" for ``path``; CorpusError saying what was looked for."""
    if not path.exists():
        raise CorpusError(f"{path}: does not exist")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "manifest"
        raise CorpusError(
            f"{path}: a file that is not a .csv manifest; give a manifest "
            "(path,label,speaker[,gender,session,language]) or a corpus folder"
        )
    if session_dirs(path):
        return "iemocap"
    if has_ravdess_files(path):
        return "ravdess"
    hints = []
    if SESSION_DIR.match(path.name):
        hints.append(
            f"this looks like one IEMOCAP session: give the folder holding it, {path.parent}"
        )
    csvs = sorted(p.name for p in path.glob("*.csv"))
    if csvs:
        hints.append(f"it holds {', '.join(csvs[:5])}: give a manifest file itself")
    raise CorpusError(
        f"{path}: not a corpus folder. Looked for SessionN subfolders (IEMOCAP full release), "
        "audio files named like 03-01-05-01-02-01-12.wav searched recursively (RAVDESS), "
        "or a .csv manifest file (path,label,speaker[,gender,session,language])"
        + "".join(f"; {h}" for h in hints)
    )


def _read(path: Path, kind: str) -> tuple[list[Utterance], int, list[CorpusWarning]]:
    """Raw utterances (labels as the corpus wrote them), the count missing audio, warnings."""
    if kind == "iemocap":
        return read_iemocap(path)
    if kind == "ravdess":
        return read_ravdess(path), 0, []
    return read_manifest(path), 0, []


def _select(
    mapped: list[tuple[Utterance, str | None]], root: Path, kind: str,
    classes: Sequence[str] | None,
) -> tuple[list[Utterance], Counter]:
    """Keep the chosen classes of (utterance, mapped label) pairs; returns (kept, dropped
    label counts)."""
    default_classes = _DEFAULTS[kind][1]
    available = sorted({label for _, label in mapped if label is not None})
    if classes is not None:
        keep = canonical_classes(classes)
        absent = [c for c in keep if c not in available]
        if absent:
            raise CorpusError(
                f"{root}: class(es) {', '.join(absent)} not in this corpus after label mapping; "
                f"available labels: {', '.join(available)}"
            )
    else:
        keep = list(default_classes) if default_classes is not None else available
    kept, dropped = [], Counter()
    for utt, label in mapped:
        if label is not None and label in keep:
            kept.append(replace(utt, label=label))
        else:
            dropped[label if label is not None else utt.label.strip().lower()] += 1
    return kept, dropped


def _map_labels(raw: list[Utterance], kind: str, label_map: Mapping[str, str],
                root: Path, drop_conflicts: bool
                ) -> tuple[list[tuple[Utterance, str | None]], list[CorpusWarning]]:
    """(utterance, mapped label or None) once per audio file, and duplicate/conflict warnings
    (judged on the mapped labels: "exc" and "happy" mapped together agree)."""
    default_map = _DEFAULTS[kind][0]
    pairs = [(u, resolve_label(u.label, label_map, default_map)) for u in raw]
    return deduplicate(pairs, root, drop_conflicts=drop_conflicts)


def load_corpus(
    path,
    label_map: Mapping[str, str] | str | None = None,
    classes: Sequence[str] | None = None,
    *,
    drop_conflicts: bool = False,
) -> Corpus:
    """Read the corpus at ``path`` (kind detected from the path), map labels, keep classes.

    label_map: {"calm": "neutral", "exc": "happy"} or the string "calm=neutral,exc=happy";
    keys may be corpus codes or canonical names. classes: labels to keep (after mapping);
    default: IEMOCAP the seed's four, other corpora every label present. A file listed twice
    counts once; a file listed under two labels is an error unless ``drop_conflicts`` (then it
    is left out). Raises CorpusError naming the file and the problem, or, for an absent class,
    the labels available. What is odd but usable is in ``Corpus.warnings`` (and the log).
    """
    root = Path(path).expanduser()
    user_map = parse_label_map(label_map) if isinstance(label_map, str) else dict(label_map or {})
    user_map = {k.strip().lower(): v.strip().lower() for k, v in user_map.items()}
    kind = detect_kind(root)
    raw, missing, found = _read(root, kind)
    mapped, merged = _map_labels(raw, kind, user_map, root, drop_conflicts)
    kept, dropped = _select(mapped, root, kind, classes)
    if not kept:
        raise CorpusError(f"{root}: no utterance left after label mapping and class selection")
    kept.sort(key=lambda u: str(u.path))
    if dropped:
        log.info(
            "%s: dropped %d utterances with other labels: %s", root, sum(dropped.values()),
            ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())),
        )
    found += merged + class_warnings(sorted({u.label for u in kept}))
    log_warnings(root, found)
    corpus = Corpus(
        root.resolve(), kind, tuple(kept), tuple(sorted(dropped.items())), missing, tuple(found),
    )
    log.info(
        "%s corpus %s: %d utterances, %d speakers, labels %s", kind, corpus.root,
        len(kept), len(corpus.speakers), ", ".join(corpus.labels),
    )
    return corpus
