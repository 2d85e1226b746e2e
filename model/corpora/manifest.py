"""CSV manifest reader: ``path,label,speaker[,gender,session,language]`` with a header row.

Paths are relative to the folder holding the CSV file (absolute paths are kept). Other columns
are allowed and ignored. Every problem is reported as "<file>:<line>: <problem>".
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

from ser_studio.model.corpora.checks import EXAMPLES
from ser_studio.model.corpora.record import CorpusError, Utterance

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "label", "speaker")
OPTIONAL_COLUMNS = ("gender", "session", "language")

_GENDERS = {
    "": "", "f": "F", "female": "F", "w": "F", "woman": "F",
    "m": "M", "male": "M", "man": "M",
}


def _gender(value: str, where: str) -> str:
    """"F", "M" or "" from a manifest's gender cell; CorpusError for anything else."""
    key = value.strip().lower()
    if key not in _GENDERS:
        raise CorpusError(f"{where}: gender {value!r} is not one of F, M, female, male or empty")
    return _GENDERS[key]


def _header(reader: csv.DictReader, csv_path: Path) -> None:
    """Normalise the header (case, spaces) and check the required columns are there."""
    if reader.fieldnames is None:
        raise CorpusError(f"{csv_path}: empty file; expected a header row path,label,speaker")
    reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames]
    missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
    if missing:
        raise CorpusError(
            f"{csv_path}:1: missing column(s) {', '.join(missing)}; the header has "
            f"{', '.join(reader.fieldnames)}; expected path,label,speaker"
            "[,gender,session,language]"
        )


def _row(row: dict, csv_path: Path, line: int) -> Utterance:
    """One manifest row as an utterance with the label as written."""
    where = f"{csv_path}:{line}"
    if None in row:
        raise CorpusError(f"{where}: more cells than header columns")
    values = {k: (row.get(k) or "").strip() for k in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    empty = [c for c in REQUIRED_COLUMNS if not values[c]]
    if empty:
        raise CorpusError(f"{where}: empty {', '.join(empty)}")
    audio = Path(values["path"]).expanduser()
    if not audio.is_absolute():
        audio = csv_path.parent / audio
    return Utterance(
        audio.resolve(), values["label"], values["speaker"],
        _gender(values["gender"], where), values["session"], language=values["language"],
    )


def _check_audio_exists(rows: list[tuple[int, Utterance]], csv_path: Path) -> None:
    """CorpusError when audio files listed (rows: (line, utterance)) do not exist: the line and
    file of one, or how many of all and the first EXAMPLES of them."""
    missing = [(line, u.path) for line, u in rows if not u.path.is_file()]
    if len(missing) == 1:
        raise CorpusError(f"{csv_path}:{missing[0][0]}: audio file {missing[0][1]} does not exist")
    if missing:
        shown = missing[:EXAMPLES]
        first = "; ".join(f"line {line}: {path}" for line, path in shown)
        raise CorpusError(f"{csv_path}: {len(missing)} of the {len(rows)} audio files listed do "
                          f"not exist; the first {len(shown)}: {first}")


def read_manifest(csv_path: Path) -> list[Utterance]:
    """The utterances a CSV manifest lists, in file order, labels as written.

    Raises CorpusError naming the file (and line) for an unreadable file, missing columns,
    empty cells, unknown gender values, missing audio files (all of them counted) or a manifest
    without rows.
    """
    csv_path = csv_path.resolve()
    rows: list[tuple[int, Utterance]] = []
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            _header(reader, csv_path)
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # blank line
                rows.append((reader.line_num, _row(row, csv_path, reader.line_num)))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CorpusError(f"{csv_path}: cannot read as a CSV manifest: {err}") from None
    _check_audio_exists(rows, csv_path)
    utterances = [u for _, u in rows]
    if not utterances:
        raise CorpusError(f"{csv_path}: the manifest has a header but no rows")
    log.info("%s: %d utterances listed", csv_path, len(utterances))
    return utterances
