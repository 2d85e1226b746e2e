"""IEMOCAP full release reader: the folder holding Session1..Session5.

Labels come only from ``SessionN/dialog/EmoEvaluation/<dialog>.txt`` (files directly in that
folder: its Categorical/, Attribute/ and Self-evaluation/ subfolders hold per-annotator files
that are not the consensus labels). Audio is ``SessionN/sentences/wav/<dialog>/<utt>.wav``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ser_studio.model.corpora.checks import CorpusWarning, warnings_of
from ser_studio.model.corpora.record import CorpusError, Utterance

log = logging.getLogger(__name__)

SESSION_DIR = re.compile(r"^Session\d+$")

# "[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]"
LABEL_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(\S+)\s+(\S+)\s+\[.*\]\s*$")

# Ses05M_script01_3_F000: session Ses05, the speaker's gender is the last token's letter (F).
UTTERANCE_ID = re.compile(r"^(Ses\d+)[FM]_\w*?_([FM])\d+$")


def session_dirs(root: Path) -> list[Path]:
    """The SessionN subfolders of ``root``, in numeric order."""
    found = [p for p in root.iterdir() if p.is_dir() and SESSION_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(p.name[len("Session"):]))


def speaker_of(utterance_id: str) -> tuple[str, str, str]:
    """(speaker, gender, session) of an IEMOCAP utterance id.

    The speaker is the session plus the gender letter of the LAST token: in
    "Ses05M_script01_3_F000" the female of session 5 speaks, so ("Ses05F", "F", "Ses05").
    Raises ValueError for an id of another shape.
    """
    match = UTTERANCE_ID.match(utterance_id)
    if match is None:
        raise ValueError(f"utterance id {utterance_id!r} is not of the form Ses01F_impro01_F000")
    session, gender = match.group(1), match.group(2)
    return session + gender, gender, session


def label_files(session: Path) -> list[Path]:
    """The dialog label files of one session: ``dialog/EmoEvaluation/*.txt``, not recursive.

    Hidden files (such as macOS "._x.txt" resource forks) are not label files either.
    """
    folder = session / "dialog" / "EmoEvaluation"
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix == ".txt" and not p.name.startswith(".")
    )


def parse_label_file(path: Path) -> tuple[list[tuple[str, str, int]], list[int]]:
    """Label lines of one EmoEvaluation file: ([(utterance id, label code, line number)],
    numbers of malformed lines).

    A line starting with "[" is meant as a label line; one that does not parse is malformed.
    All other lines (headers, per-annotator "C-E1:" and "A-E1:" lines, blanks) are ignored.
    Raises OSError when the file cannot be read.
    """
    entries, malformed = [], []
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        match = LABEL_LINE.match(line)
        if match:
            entries.append((match.group(1), match.group(2), number))
        elif line.lstrip().startswith("["):
            malformed.append(number)
    return entries, malformed


@dataclass
class _Problems:
    """What a session's label files got wrong, as "file:line" or file names."""

    malformed: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    def warnings(self) -> list[CorpusWarning]:
        return warnings_of(
            ("malformed_label_lines", self.malformed, f"{len(self.malformed)} label line(s) "
             "in dialog/EmoEvaluation do not parse and were skipped"),
            ("unreadable_label_files", self.unreadable,
             f"{len(self.unreadable)} label file(s) cannot be read"),
            ("label_files_without_labels", self.empty,
             f"{len(self.empty)} label file(s) hold no label line"))


def _entries(label_file: Path, problems: _Problems) -> list[tuple[str, str, int]]:
    """The label lines of one file; problems are noted, not raised."""
    try:
        entries, malformed = parse_label_file(label_file)
    except OSError as err:
        problems.unreadable.append(f"{label_file.name} ({err.strerror or err})")
        return []
    problems.malformed += [f"{label_file.name}:{n}" for n in malformed]
    if not entries:
        problems.empty.append(label_file.name)
    return entries


def _read_session(session: Path, problems: _Problems) -> tuple[list[Utterance], int, int]:
    """(utterances with raw label codes, label files read, labelled utterances without audio)."""
    utterances: list[Utterance] = []
    missing: list[str] = []
    files = label_files(session)
    for label_file in files:
        wav_dir = session / "sentences" / "wav" / label_file.stem
        for utt_id, code, number in _entries(label_file, problems):
            try:
                speaker, gender, session_id = speaker_of(utt_id)
            except ValueError as err:
                raise CorpusError(f"{label_file}:{number}: {err}") from None
            wav = wav_dir / f"{utt_id}.wav"
            if not wav.is_file():
                missing.append(utt_id)
                continue
            utterances.append(Utterance(wav.resolve(), code, speaker, gender, session_id,
                                        language="English"))
    if missing:
        log.warning(
            "%s: %d labelled utterances have no wav under sentences/wav and were skipped "
            "(first: %s)", session, len(missing), ", ".join(missing[:3]),
        )
    return utterances, len(files), len(missing)


def read_iemocap(root: Path) -> tuple[list[Utterance], int, list[CorpusWarning]]:
    """All labelled utterances under ``root`` (the folder holding SessionN folders; any subset).

    Returns (utterances with the raw IEMOCAP label code as label, count skipped for missing
    audio, warnings about malformed lines and unreadable or empty label files). Raises
    CorpusError naming ``root`` when no labelled utterance with audio is found.
    """
    sessions = session_dirs(root)
    if not sessions:
        raise CorpusError(f"{root}: no Session1..Session5 folders (IEMOCAP layout)")
    utterances: list[Utterance] = []
    n_files = n_missing = 0
    problems = _Problems()
    for session in sessions:
        found, files, missing = _read_session(session, problems)
        if not files:
            log.warning("%s: no label files in dialog/EmoEvaluation", session)
        utterances += found
        n_files += files
        n_missing += missing
    if not utterances:
        raise CorpusError(
            f"{root}: no labelled utterance with audio found ({len(sessions)} session folders, "
            f"{n_files} label files in SessionN/dialog/EmoEvaluation, {n_missing} labelled "
            "utterances without SessionN/sentences/wav/<dialog>/<utterance>.wav)"
        )
    log.info(
        "%s: %d labelled utterances in %d sessions from %d label files",
        root, len(utterances), len(sessions), n_files,
    )
    return utterances, n_missing, problems.warnings()
