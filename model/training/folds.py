"""Speaker-independent cross-validation folds.

Protocol choice (``choose_protocol``):
- "leave-one-session-out" when the corpus is IEMOCAP (``kind == "iemocap"``) or when every
  utterance has a session, there are at least two sessions and no speaker appears in two
  sessions (otherwise holding out a session would not hold out its speakers). One fold per
  session; the session's speakers are tested.
- otherwise "grouped-k-fold" by speaker with k = ``TrainConfig.folds``, or
  "leave-one-speaker-out" when folds is 0. Speakers are dealt round-robin into the k folds,
  female speakers first, then male, then unknown (each group sorted by name), with the dealing
  position carried across groups: folds differ in size by at most one speaker and, whenever a
  gender has at least k speakers, every fold tests both genders. Deterministic, no seed.

Leave-one-corpus-out ("loco", ``TrainConfig.protocol``): one fold per corpus of a run on several
corpora (model.corpora.multi), in the order given; the fold tests every speaker of that corpus and
trains on all the others. Refused with fewer than two corpora.

Validation speakers (for early stopping) are drawn from each fold's training side only, with a
``random.Random`` seeded by (seed, fold): genders are visited in turn so that two or more
validation speakers are gender-balanced when the training side allows it.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from ser_studio.model.config.schema import PROTOCOLS
from ser_studio.model.corpora.record import Utterance

LOSO_SESSION = "leave-one-session-out"
GROUPED = "grouped-k-fold"
LOSO_SPEAKER = "leave-one-speaker-out"
LOCO = "leave-one-corpus-out"


class SpeakerLeakError(AssertionError):
    """A fold whose test, validation and training speakers are not disjoint."""


class FoldError(ValueError):
    """Folds cannot be built from this corpus with these settings."""


@dataclass(frozen=True)
class Fold:
    """One fold; ``index`` is 1-based. ``held_out`` names what is tested (a session or
    a list of speakers) for the report."""

    index: int
    held_out: str
    test_speakers: tuple[str, ...]
    val_speakers: tuple[str, ...]
    train_speakers: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"fold": self.index, "held_out": self.held_out,
                "test_speakers": list(self.test_speakers),
                "val_speakers": list(self.val_speakers),
                "train_speakers": list(self.train_speakers)}


def speaker_genders(utterances: Sequence[Utterance]) -> dict[str, str]:
    """Speaker -> gender ("" when unknown or inconsistent across utterances)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for utt in utterances:
        seen[utt.speaker].add(utt.gender)
    return {spk: (g.pop() if len(g) == 1 else "") for spk, g in seen.items()}


def speaker_sessions(utterances: Sequence[Utterance]) -> dict[str, set[str]]:
    """Speaker -> set of sessions the speaker was recorded in."""
    sessions: dict[str, set[str]] = defaultdict(set)
    for utt in utterances:
        sessions[utt.speaker].add(utt.session)
    return sessions


def choose_protocol(utterances: Sequence[Utterance], kind: str, folds: int) -> str:
    """The cross-validation protocol for a corpus (see the module docstring)."""
    by_speaker = speaker_sessions(utterances)
    sessions = {s for ss in by_speaker.values() for s in ss}
    sessions_ok = ("" not in sessions and len(sessions) >= 2
                   and all(len(ss) == 1 for ss in by_speaker.values()))
    if kind == "iemocap" and not sessions_ok:
        if len(sessions) == 1 and "" not in sessions:
            raise FoldError(f"IEMOCAP corpus with one session ({next(iter(sessions))}): "
                            "leave-one-session-out needs at least two sessions; give the "
                            "folder holding two or more SessionN folders")
        raise FoldError(f"IEMOCAP corpus without usable sessions (found {sorted(sessions)}); "
                        "every utterance needs one session and each speaker one session")
    if sessions_ok:
        return LOSO_SESSION
    return LOSO_SPEAKER if folds == 0 else GROUPED


def corpus_order(utterances: Sequence[Utterance]) -> list[str]:
    """The corpus names of ``utterances`` in first-seen order ("" for untagged ones)."""
    return list(dict.fromkeys(u.corpus for u in utterances))


def check_loco(utterances: Sequence[Utterance]) -> list[str]:
    """The corpora of a leave-one-corpus-out run; FoldError unless there are two or more."""
    names = [n for n in corpus_order(utterances) if n]
    if len(names) < 2:
        raise FoldError(f"protocol loco (leave one corpus out) needs at least two corpora "
                        f"(--corpus A --corpus B ...); this run has {len(names)}"
                        + (f": {names[0]}" if names else ""))
    return names


def _test_groups(utterances: Sequence[Utterance], protocol: str,
                 folds: int) -> list[tuple[str, list[str]]]:
    """(held_out name, test speakers) per fold."""
    if protocol == LOCO:
        return [(name, sorted({u.speaker for u in utterances if u.corpus == name}))
                for name in check_loco(utterances)]
    if protocol == LOSO_SESSION:
        by_session: dict[str, set[str]] = defaultdict(set)
        for utt in utterances:
            by_session[utt.session].add(utt.speaker)
        return [(s, sorted(by_session[s])) for s in sorted(by_session)]
    genders = speaker_genders(utterances)
    speakers = sorted(genders)
    k = len(speakers) if protocol == LOSO_SPEAKER else folds
    if k > len(speakers):
        raise FoldError(f"{k} folds need at least {k} speakers; the corpus has "
                        f"{len(speakers)}: {speakers}")
    groups: list[list[str]] = [[] for _ in range(k)]
    order = sorted(speakers, key=lambda s: ({"F": 0, "M": 1}.get(genders[s], 2), s))
    for position, spk in enumerate(order):
        groups[position % k].append(spk)
    return [(", ".join(sorted(g)), sorted(g)) for g in groups]


def pick_validation(train_speakers: Sequence[str], genders: dict[str, str], n: int,
                    rng: random.Random) -> list[str]:
    """``n`` validation speakers from ``train_speakers``, visiting genders in turn."""
    if n < 1:
        raise FoldError(f"val_speakers must be >= 1 (early stopping needs them), got {n}")
    if n >= len(train_speakers):
        raise FoldError(f"val_speakers={n} leaves no training speaker out of "
                        f"{len(train_speakers)}: {sorted(train_speakers)}")
    pools: dict[str, list[str]] = defaultdict(list)
    for spk in sorted(train_speakers):
        pools[genders.get(spk, "")].append(spk)
    order = sorted(pools)
    for g in order:
        rng.shuffle(pools[g])
    rng.shuffle(order)
    picked: list[str] = []
    while len(picked) < n:
        for g in order:
            if pools[g] and len(picked) < n:
                picked.append(pools[g].pop())
    return sorted(picked)


def make_folds(utterances: Sequence[Utterance], *, kind: str, folds: int = 5,
               val_speakers: int = 1, seed: int = 0,
               protocol: str = "cv") -> tuple[str, list[Fold]]:
    """Build the protocol name and its folds; every fold is checked with ``check_fold``.
    ``protocol``: "cv" (speaker cross-validation, ``choose_protocol``) or "loco" (one fold
    per corpus)."""
    if not utterances:
        raise FoldError("no utterances to build folds from")
    if protocol not in PROTOCOLS:
        raise FoldError(f"protocol {protocol!r}: choose one of {list(PROTOCOLS)}")
    protocol = LOCO if protocol == "loco" else choose_protocol(utterances, kind, folds)
    genders = speaker_genders(utterances)
    everyone = sorted(genders)
    result = []
    for index, (held_out, test) in enumerate(_test_groups(utterances, protocol, folds), 1):
        rest = [s for s in everyone if s not in set(test)]
        val = pick_validation(rest, genders, val_speakers, random.Random(f"{seed}:{index}"))
        train = tuple(s for s in rest if s not in set(val))
        fold = Fold(index, held_out, tuple(test), tuple(val), train)
        check_fold(fold)
        result.append(fold)
    return protocol, result


def check_speakers(train: Sequence[str], val: Sequence[str], test: Sequence[str]) -> None:
    """Raise SpeakerLeakError unless the three speaker sets are pairwise disjoint and
    training is non-empty."""
    train_s, val_s, test_s = set(train), set(val), set(test)
    if not train_s:
        raise SpeakerLeakError("fold has no training speakers")
    for name, a, b in (("test/train", test_s, train_s), ("test/validation", test_s, val_s),
                       ("validation/train", val_s, train_s)):
        if a & b:
            raise SpeakerLeakError(f"speakers in both {name}: {sorted(a & b)}")


def check_fold(fold: Fold) -> None:
    """Raise SpeakerLeakError when the fold's speaker sets overlap."""
    try:
        check_speakers(fold.train_speakers, fold.val_speakers, fold.test_speakers)
    except SpeakerLeakError as exc:
        raise SpeakerLeakError(f"fold {fold.index}: {exc}") from None
