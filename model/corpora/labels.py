"""Emotion label names: corpus codes, canonical names, user label maps and class subsets.

Every reader hands over the label as the corpus wrote it (IEMOCAP "neu", a manifest's "Neutral",
RAVDESS already decoded to "neutral"); ``resolve_label`` turns that into the canonical name the
rest of the pipeline sees, applying the user's label map first and the corpus default second.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ser_studio.model.corpora.record import CorpusError

CANONICAL_LABELS = (
    "angry", "happy", "neutral", "sad", "excited", "frustrated", "surprised", "fearful",
    "disgust", "calm", "other",
)

# The seed's four classes (IEMOCAP, with "exc" merged into "happy").
SEED_CLASSES = ("angry", "happy", "neutral", "sad")

# IEMOCAP EmoEvaluation codes. "xxx" means the annotators did not agree: never a class.
IEMOCAP_CODES: dict[str, str | None] = {
    "ang": "angry", "hap": "happy", "exc": "excited", "neu": "neutral", "sad": "sad",
    "fru": "frustrated", "sur": "surprised", "fea": "fearful", "dis": "disgust",
    "oth": "other", "xxx": None,
}

# RAVDESS file-name emotion field (EE in 03-01-EE-II-SS-RR-AA).
RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}

# Spellings other corpora and manifests use for the canonical names.
_ALIASES = {
    "anger": "angry", "happiness": "happy", "joy": "happy", "sadness": "sad",
    "fear": "fearful", "disgusted": "disgust", "surprise": "surprised",
    "frustration": "frustrated", "excitement": "excited",
}


def canonical_label(name: str) -> str | None:
    """Canonical form of one label: IEMOCAP codes and common aliases decoded, lower case.

    Unknown names are kept (lower-cased) so a manifest may bring its own classes;
    returns None for IEMOCAP's "xxx" (no agreement), which is never a class.
    """
    key = name.strip().lower()
    if key in IEMOCAP_CODES:
        return IEMOCAP_CODES[key]
    return _ALIASES.get(key, key)


def parse_classes(items: Iterable[str] | None) -> list[str] | None:
    """Class names from --classes values, space or comma separated ("a b", "a,b", "a, b c");
    None when none are given."""
    if not items:
        return None
    names = [c.strip() for item in items for c in item.split(",") if c.strip()]
    return names or None


def parse_label_map(text: str | Iterable[str] | None) -> dict[str, str]:
    """Parse "calm=neutral,exc=happy" (or a list of such strings) into {"calm": "neutral", ...}.

    Keys and values are lower-cased; keys may be corpus codes ("exc") or canonical names
    ("excited"). Raises CorpusError naming the malformed item.
    """
    if text is None:
        return {}
    parts = [text] if isinstance(text, str) else list(text)
    result: dict[str, str] = {}
    for part in parts:
        for item in part.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip().lower()
            if not sep or not key or not value or "=" in value:
                raise CorpusError(
                    f"label map {part!r}: item {item.strip()!r} is not of the form name=name "
                    "(example: calm=neutral,exc=happy)"
                )
            result[key] = value
    return result


def resolve_label(
    raw: str, label_map: Mapping[str, str], default_map: Mapping[str, str] | None = None
) -> str | None:
    """The canonical label for a corpus label ``raw``, or None when it is never a class.

    The user's ``label_map`` wins over the corpus ``default_map``; in each, the raw code is
    looked up before its canonical name, so both "exc=happy" and "excited=happy" work.
    """
    key = raw.strip().lower()
    canon = canonical_label(key)
    for mapping in (label_map, default_map or {}):
        if key in mapping:
            return canonical_label(mapping[key])
        if canon is not None and canon in mapping:
            return canonical_label(mapping[canon])
    return canon


def canonical_classes(classes: Sequence[str]) -> list[str]:
    """Canonical names of a user's class list (codes such as "ang" allowed), order kept,
    duplicates removed. Raises CorpusError for a name that can never be a class."""
    result: list[str] = []
    for name in classes:
        canon = canonical_label(name)
        if canon is None or not canon:
            raise CorpusError(f"classes: {name!r} cannot be a class")
        if canon not in result:
            result.append(canon)
    return result
