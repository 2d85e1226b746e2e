"""Prediction history: one SQLite row per live speech segment and per analysed file.

No Qt here. The database runs in WAL mode and every ``add`` commits at once, so a killed
process loses at most the segment it was writing. Each thread gets its own connection
(SQLite connections must not be shared between threads). Audio clips are kept as 16-bit
FLAC in a separate table so listing the history never reads them.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import threading
import time as _time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import platformdirs
import soundfile as sf

from ser_studio.model.constants import SAMPLE_RATE

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MICROPHONE = "microphone"
NO_SPEECH = ""  # query(label=NO_SPEECH) selects the rows whose label is NULL ("no speech")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    source TEXT NOT NULL,
    label TEXT,
    probs TEXT NOT NULL,
    duration_s REAL NOT NULL,
    model TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_time ON segments(time);
CREATE TABLE IF NOT EXISTS clips (
    segment_id INTEGER PRIMARY KEY REFERENCES segments(id) ON DELETE CASCADE,
    flac BLOB NOT NULL
);
"""


class HistoryError(ValueError):
    """A history database that cannot be opened or used; the message names the file."""


@dataclass(frozen=True)
class HistoryRow:
    """One history entry.

    time: unix seconds; source: "microphone" or a file path; label: None for no speech;
    probs: label -> probability; duration_s: seconds of audio analysed; model: model name;
    has_audio: whether a clip is stored (fetch it with HistoryStore.audio(id)).
    """

    id: int
    time: float
    source: str
    label: str | None
    probs: dict[str, float]
    duration_s: float
    model: str
    has_audio: bool

    @property
    def confidence(self) -> float:
        """Probability of the predicted label (0 when no speech)."""
        return float(self.probs.get(self.label, 0.0)) if self.label else 0.0


def default_history_path() -> Path:
    """The per-user history database: platformdirs user data dir / "history.sqlite3"."""
    return Path(platformdirs.user_data_dir("ser-studio")) / "history.sqlite3"


def encode_clip(audio: np.ndarray) -> bytes:
    """(N,) float32 16 kHz in [-1, 1] -> FLAC bytes (16-bit PCM)."""
    wav = np.asarray(audio, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"audio clip must be a non-empty (N,) array, got shape {wav.shape}")
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_clip(data: bytes) -> np.ndarray:
    """FLAC bytes -> (N,) float32 at 16 kHz."""
    wav, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if rate != SAMPLE_RATE:
        raise ValueError(f"stored clip has rate {rate}, expected {SAMPLE_RATE}")
    return wav


class HistoryStore:
    """The history database at ``path`` (created, with its folder, when missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot create the folder: {exc}") from exc
        self._migrate(self._conn())

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=10.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as exc:
                raise HistoryError(f"{self.path}: not a usable history database: {exc}") from exc
            self._local.conn = conn
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the schema, or refuse a database written by a newer version."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path}: history schema version {version} is newer than this "
                    f"program's ({SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                with conn:
                    conn.executescript(_SCHEMA)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a usable history database: {exc}") from exc

    def close(self) -> None:
        """Close the calling thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writing -----------------------------------------------------------------------
    def add(self, *, source: str, label: str | None, probs: dict[str, float], duration_s: float,
            model: str, time: float | None = None, audio: np.ndarray | None = None) -> int:
        """Append one row and commit it at once; returns its id.

        audio: optional (N,) float32 clip at 16 kHz, stored as 16-bit FLAC.
        """
        stamp = _time.time() if time is None else float(time)
        probs_json = json.dumps({str(k): float(v) for k, v in probs.items()})
        clip = encode_clip(audio) if audio is not None else None
        conn = self._conn()
        with conn:
            cur = conn.execute(
                "INSERT INTO segments (time, source, label, probs, duration_s, model) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (stamp, str(source), label or None, probs_json, float(duration_s), str(model)))
            row_id = int(cur.lastrowid)
            if clip is not None:
                conn.execute("INSERT INTO clips (segment_id, flac) VALUES (?, ?)", (row_id, clip))
        return row_id

    def delete(self, ids: Iterable[int]) -> int:
        """Delete the rows (and their clips) with these ids; returns how many were deleted."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        conn = self._conn()
        with conn:
            conn.execute(f"DELETE FROM clips WHERE segment_id IN ({marks})", ids)
            cur = conn.execute(f"DELETE FROM segments WHERE id IN ({marks})", ids)
        return cur.rowcount

    # -- reading -----------------------------------------------------------------------
    def query(self, *, source: str | None = None, label: str | None = None,
              since: float | None = None, until: float | None = None,
              source_contains: str | None = None, limit: int | None = None) -> list[HistoryRow]:
        """Rows newest first, filtered by exact source, label (NO_SPEECH for none), time range
        [since, until] in unix seconds and a case-insensitive source substring."""
        where, params = [], []
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if source_contains:
            where.append("instr(lower(source), lower(?)) > 0")
            params.append(source_contains)
        if label is not None:
            where.append("label IS NULL" if label == NO_SPEECH else "label = ?")
            params.extend([] if label == NO_SPEECH else [label])
        if since is not None:
            where.append("time >= ?")
            params.append(float(since))
        if until is not None:
            where.append("time <= ?")
            params.append(float(until))
        sql = ("SELECT s.id, s.time, s.source, s.label, s.probs, s.duration_s, s.model, "
               "EXISTS(SELECT 1 FROM clips c WHERE c.segment_id = s.id) FROM segments s")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.time DESC, s.id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._row(r) for r in self._conn().execute(sql, params)]

    def _row(self, r: Sequence) -> HistoryRow:
        try:
            probs = {str(k): float(v) for k, v in json.loads(r[4]).items()}
        except (ValueError, AttributeError):
            log.warning("%s: row %s has unreadable probabilities", self.path, r[0])
            probs = {}
        return HistoryRow(id=int(r[0]), time=float(r[1]), source=r[2], label=r[3], probs=probs,
                          duration_s=float(r[5]), model=r[6], has_audio=bool(r[7]))

    def audio(self, row_id: int) -> np.ndarray | None:
        """The stored clip of a row as (N,) float32 at 16 kHz, or None when it has none."""
        hit = self._conn().execute(
            "SELECT flac FROM clips WHERE segment_id = ?", (int(row_id),)).fetchone()
        return decode_clip(hit[0]) if hit else None

    def sources(self) -> list[str]:
        """Distinct sources, most recently used first."""
        rows = self._conn().execute(
            "SELECT source FROM segments GROUP BY source ORDER BY max(time) DESC")
        return [r[0] for r in rows]

    def labels(self) -> list[str]:
        """Distinct predicted labels (no-speech rows excluded), sorted."""
        rows = self._conn().execute(
            "SELECT DISTINCT label FROM segments WHERE label IS NOT NULL ORDER BY label")
        return [r[0] for r in rows]

    def count(self) -> int:
        """Number of rows."""
        return int(self._conn().execute("SELECT count(*) FROM segments").fetchone()[0])

    def audio_usage(self) -> tuple[int, int]:
        """(stored clips, their bytes)."""
        clips, size = self._conn().execute(
            "SELECT count(*), COALESCE(SUM(LENGTH(flac)), 0) FROM clips").fetchone()
        return int(clips), int(size)

    def prune_audio(self, before: float) -> int:
        """Delete the stored audio of rows older than ``before`` (epoch seconds); the rows
        stay. Returns how many clips were deleted."""
        conn = self._conn()
        with conn:
            cur = conn.execute("DELETE FROM clips WHERE segment_id IN "
                               "(SELECT id FROM segments WHERE time < ?)", (float(before),))
        return int(cur.rowcount)

    # -- export ------------------------------------------------------------------------
    def export_csv(self, path: str | Path, rows: Sequence[HistoryRow] | None = None) -> int:
        """Write rows (default: all, newest first) as CSV with one prob_<label> column per
        label seen; returns the number of rows written."""
        rows = self.query() if rows is None else list(rows)
        labels: list[str] = []
        for row in rows:
            labels.extend(k for k in row.probs if k not in labels)
        header = ["id", "time", "time_iso", "source", "label", "confidence", "duration_s",
                  "model", "has_audio"] + [f"prob_{k}" for k in labels]
        try:
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                for r in rows:
                    iso = datetime.fromtimestamp(r.time).astimezone().isoformat(timespec="seconds")
                    writer.writerow(
                        [r.id, f"{r.time:.3f}", iso, r.source, r.label or "", f"{r.confidence:.4f}",
                         f"{r.duration_s:.3f}", r.model, int(r.has_audio)]
                        + [f"{r.probs[k]:.4f}" if k in r.probs else "" for k in labels])
        except OSError as exc:
            raise HistoryError(f"{path}: cannot write CSV: {exc}") from exc
        return len(rows)
