"""Several corpora in one run: each read by its own reader, then pooled.

``load_corpora([A, B, ...])`` reads every corpus with ``load_corpus`` (its own reader and its
kind's default label map, the user's map, for all or "NAME:a=b" for one, and classes on top), names each one (``corpus_name``)
and pools the utterances. With two or more corpora every utterance carries its corpus name
(``Utterance.corpus``) and its speaker and session are namespaced as "NAME/ID"
("ravdess-dev/03"), so two corpora cannot share a speaker by accident and folds group speakers
across all of them. A single corpus is returned as it is (speaker IDs unchanged, so fold
assignment and the results of existing runs stay the same), only tagged with its name.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ser_studio.model.corpora.corpus import Corpus, UtteranceFacts, load_corpus
from ser_studio.model.corpora.labels import parse_label_map
from ser_studio.model.corpora.record import CorpusError, Utterance

log = logging.getLogger(__name__)

MULTI_KIND = "multi"
GENERIC_STEMS = ("manifest", "metadata", "labels", "index")  # a manifest named by its folder


def corpus_name(path: Path) -> str:
    """The short name of a corpus: a folder's name; a manifest's file stem, or its folder's
    name when the stem says nothing ("nemo-pl/manifest.csv" -> "nemo-pl")."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return path.parent.name if path.stem.lower() in GENERIC_STEMS else path.stem
    return path.name


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """One name per path; names that repeat get "-2", "-3", ... in order."""
    names, seen = [], Counter()
    for path in paths:
        base = corpus_name(path) or "corpus"
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def _tag(utt: Utterance, name: str, namespaced: bool) -> Utterance:
    if not namespaced:
        return replace(utt, corpus=name)
    return replace(utt, corpus=name, speaker=f"{name}/{utt.speaker}",
                   session=f"{name}/{utt.session}" if utt.session else "")


@dataclass(frozen=True)
class CorpusSet(UtteranceFacts):
    """The corpora of one run, pooled. ``parts`` in the order given and ``names`` (one each);
    ``utterances``: every part's, tagged with its corpus and (two or more parts) namespaced.
    Offers what training reads of a Corpus: root, kind, labels, speakers, summary()."""

    parts: tuple[Corpus, ...]
    names: tuple[str, ...]
    utterances: tuple[Utterance, ...]

    @property
    def root(self) -> Path:
        """The single corpus's root; for several, the first's (logs and warnings)."""
        return self.parts[0].root

    @property
    def roots(self) -> list[Path]:
        return [p.root for p in self.parts]

    @property
    def kind(self) -> str:
        """The single corpus's kind, else "multi" (fold protocol: grouped by speaker)."""
        return self.parts[0].kind if len(self.parts) == 1 else MULTI_KIND

    def summary(self) -> dict:
        """One corpus: its Corpus.summary() as it is. Several: the pooled counts (speakers
        namespaced) with kind "multi", root the roots joined by " + ", and "corpora", one
        {"name", **Corpus.summary()} per corpus."""
        if len(self.parts) == 1:
            return self.parts[0].summary()

        return {
            "kind": MULTI_KIND, "root": " + ".join(str(r) for r in self.roots),
            "utterances": len(self.utterances), **self.counts(),
            "dropped": dict(sum((Counter(dict(p.dropped)) for p in self.parts), Counter())),
            "missing_audio": sum(p.missing_audio for p in self.parts),
            "warnings": [{**w.to_dict(), "message": f"{n}: {w.message}"}
                         for n, p in zip(self.names, self.parts) for w in p.warnings],
            "corpora": [{"name": n, **p.summary()} for n, p in zip(self.names, self.parts)],
        }


def _corpus_named(item: str, what: str, names: Sequence[str], for_all=lambda prefix: False
                  ) -> str | None:
    """The corpus an option value "NAME:..." is for, None for one without a corpus prefix (no
    colon, or ``for_all(prefix)``: it applies to every corpus). CorpusError naming ``what``,
    the value and the run's corpus names when the prefix names none of them."""
    prefix, colon, _ = item.partition(":")
    if not colon or for_all(prefix):
        return None
    if prefix.strip() not in names:
        raise CorpusError(f"{what} {item!r}: {prefix.strip()!r} is not a corpus of this "
                          f"run; corpus names: {', '.join(names)}")
    return prefix.strip()


def corpus_maps(label_map, names: Sequence[str]) -> list[dict[str, str]]:
    """The label map of each corpus in ``names``. ``label_map``: a dict (every corpus), or
    --map strings ("calm=neutral,exc=happy"; a string or a list, groups within one string
    separated by ";"), each applying to every corpus unless it starts with a corpus name and a
    colon ("ravdess-dev:calm=neutral": that corpus only, after the maps for all). CorpusError
    naming the names when a prefix names no corpus of the run."""
    if label_map is None or isinstance(label_map, Mapping):
        return [dict(label_map or {}) for _ in names]
    items = [label_map] if isinstance(label_map, str) else list(label_map)
    common, own = [], {name: [] for name in names}
    for item in (part for text in items for part in text.split(";") if part.strip()):
        name = _corpus_named(item, "label map", names, for_all=lambda prefix: "=" in prefix)
        if name is None:
            common.append(item)
        else:
            own[name].append(item.partition(":")[2])
    return [{**parse_label_map(common), **parse_label_map(own[name])} for name in names]


def corpus_languages(languages: str | Sequence[str] | None,
                     names: Sequence[str]) -> list[str | None]:
    """The language each corpus of ``names`` is set to by --language values ("Polish": every
    corpus; "nemo-pl:Polish": corpus nemo-pl, after the ones for all), None where none is
    given (its utterances keep the language their reader gives). CorpusError naming the
    names when a prefix names no corpus of the run, or a value is empty."""
    items = [languages] if isinstance(languages, str) else list(languages or [])
    common, own = None, {}
    for item in items:
        prefix, colon, rest = item.partition(":")
        language = (rest if colon else prefix).strip()
        if not language:
            raise CorpusError(f"language {item!r}: empty; expected LANGUAGE or NAME:LANGUAGE")
        name = _corpus_named(item, "language", names)
        if name is None:
            common = language
        else:
            own[name] = language
    return [own.get(name, common) for name in names]


def _with_language(corpus: Corpus, language: str | None) -> Corpus:
    if language is None:
        return corpus
    return replace(corpus, utterances=tuple(replace(u, language=language)
                                            for u in corpus.utterances))


def load_corpora(paths, label_map: Mapping[str, str] | str | Sequence[str] | None = None,
                 classes: Sequence[str] | None = None, *,
                 drop_conflicts: bool = False,
                 languages: str | Sequence[str] | None = None) -> CorpusSet:
    """Read every corpus of ``paths`` (one path or a list) with ``load_corpus`` and pool them
    (see the module docstring). Each corpus is read with its own kind's default label map,
    the label map (``corpus_maps``: for all, or "NAME:a=b" for corpus NAME alone) and the
    classes on top; ``languages`` (``corpus_languages``) sets the language of a corpus's
    utterances. CorpusError naming the path when a corpus is given twice or cannot be
    read."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    if not paths:
        raise CorpusError("no corpus given (--corpus PATH, repeat it for several)")
    resolved = [Path(p).expanduser().resolve() for p in paths]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise CorpusError(f"corpus given more than once: {', '.join(twice)}")
    names = tuple(_unique_names([Path(p).expanduser() for p in paths]))
    parts = tuple(_with_language(load_corpus(p, own, classes, drop_conflicts=drop_conflicts),
                                 language)
                  for p, own, language in zip(paths, corpus_maps(label_map, names),
                                              corpus_languages(languages, names)))
    namespaced = len(parts) > 1
    utts = tuple(_tag(u, n, namespaced) for n, p in zip(names, parts) for u in p.utterances)
    if namespaced:
        log.info("%d corpora: %s; %d utterances, %d speakers", len(parts),
                 ", ".join(f"{n} ({len(p)})" for n, p in zip(names, parts)), len(utts),
                 len({u.speaker for u in utts}))
    return CorpusSet(parts, names, utts)


def run_entry(corpus) -> dict:
    """A run summary's "corpus" (metrics.json): path and summary() of a Corpus or CorpusSet;
    for several corpora the path is their roots joined by " + " and "corpora" lists
    {"name", "path"} in the order given."""
    parts = getattr(corpus, "parts", ())
    if len(parts) < 2:
        return {"path": str(corpus.root), "summary": corpus.summary()}
    return {"path": " + ".join(str(p.root) for p in parts), "summary": corpus.summary(),
            "corpora": [{"name": n, "path": str(p.root)} for n, p in zip(corpus.names, parts)]}
