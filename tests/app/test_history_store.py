"""HistoryStore: rows, filters, clips, CSV, persistence and survival of a killed writer."""
from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ser_studio.app.history.history_store import (MICROPHONE, NO_SPEECH, SCHEMA_VERSION,
                                                  HistoryError, HistoryStore, default_history_path)

REPO = Path(__file__).resolve().parents[2]


def _fill(store: HistoryStore) -> list[int]:
    ids = [
        store.add(source=MICROPHONE, label="happy", probs={"happy": 0.7, "sad": 0.3},
                  duration_s=2.0, model="m1", time=1000.0),
        store.add(source="/data/a.wav", label="sad", probs={"happy": 0.1, "sad": 0.9},
                  duration_s=4.5, model="m1", time=2000.0),
        store.add(source=MICROPHONE, label=None, probs={}, duration_s=0.5, model="m2",
                  time=3000.0),
    ]
    return ids


def test_add_and_query_newest_first_with_filters(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    ids = _fill(store)
    rows = store.query()
    assert [r.id for r in rows] == ids[::-1]
    assert rows[1].source == "/data/a.wav" and rows[1].probs == {"happy": 0.1, "sad": 0.9}
    assert rows[1].confidence == pytest.approx(0.9)
    assert rows[0].label is None and rows[0].confidence == 0.0
    assert [r.id for r in store.query(source=MICROPHONE)] == [ids[2], ids[0]]
    assert [r.id for r in store.query(source_contains="A.WAV")] == [ids[1]]
    assert [r.id for r in store.query(label="happy")] == [ids[0]]
    assert [r.id for r in store.query(label=NO_SPEECH)] == [ids[2]]
    assert [r.id for r in store.query(since=1500, until=2500)] == [ids[1]]
    assert [r.id for r in store.query(limit=1)] == [ids[2]]
    assert store.sources() == [MICROPHONE, "/data/a.wav"]
    assert store.labels() == ["happy", "sad"]
    assert store.count() == 3


def test_wal_mode_and_schema_version(tmp_path):
    path = tmp_path / "h.sqlite3"
    HistoryStore(path).add(source=MICROPHONE, label="sad", probs={"sad": 1.0}, duration_s=1,
                           model="m")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_audio_clip_round_trip_and_missing(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    t = np.arange(16000) / 16000
    clip = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    with_audio = store.add(source=MICROPHONE, label="sad", probs={"sad": 1.0}, duration_s=1.0,
                           model="m", audio=clip)
    without = store.add(source=MICROPHONE, label="sad", probs={"sad": 1.0}, duration_s=1.0,
                        model="m")
    back = store.audio(with_audio)
    assert back.dtype == np.float32 and back.shape == clip.shape
    assert np.max(np.abs(back - clip)) < 1e-3  # 16-bit quantisation
    assert store.audio(without) is None
    flags = {r.id: r.has_audio for r in store.query()}
    assert flags == {with_audio: True, without: False}
    with pytest.raises(ValueError, match="shape"):
        store.add(source=MICROPHONE, label="sad", probs={}, duration_s=1, model="m",
                  audio=np.zeros((2, 10), np.float32))


def test_delete_removes_rows_and_clips(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    ids = _fill(store)
    clip_id = store.add(source=MICROPHONE, label="sad", probs={"sad": 1.0}, duration_s=1,
                        model="m", audio=np.zeros(1600, np.float32))
    assert store.delete([ids[0], clip_id]) == 2
    assert [r.id for r in store.query()] == [ids[2], ids[1]]
    assert store.audio(clip_id) is None
    assert store.delete([]) == 0


def test_export_csv_has_one_column_per_label(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    _fill(store)
    out = tmp_path / "out.csv"
    assert store.export_csv(out) == 3
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["source"] for r in rows] == [MICROPHONE, "/data/a.wav", MICROPHONE]
    assert rows[1]["label"] == "sad" and float(rows[1]["prob_sad"]) == pytest.approx(0.9)
    assert rows[0]["label"] == "" and rows[0]["prob_happy"] == ""
    subset = store.query(label="happy")
    store.export_csv(out, subset)
    with open(out, newline="") as fh:
        assert [r["label"] for r in csv.DictReader(fh)] == ["happy"]
    with pytest.raises(HistoryError, match="cannot write CSV"):
        store.export_csv(tmp_path / "missing_dir" / "x.csv")


def test_history_survives_close_and_reopen(tmp_path):
    path = tmp_path / "sub" / "h.sqlite3"
    store = HistoryStore(path)
    ids = _fill(store)
    store.close()
    again = HistoryStore(path)
    assert [r.id for r in again.query()] == ids[::-1]


def test_each_thread_uses_its_own_connection(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    errors = []

    def writer(n):
        try:
            for i in range(20):
                store.add(source=f"thread{n}", label="sad", probs={"sad": 1.0}, duration_s=1,
                          model="m", time=float(i))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 60
    assert len(store.query(source="thread1")) == 20


def test_not_a_database_names_the_file(tmp_path):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(HistoryError, match="bad.sqlite3"):
        HistoryStore(bad)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer"):
        HistoryStore(path)


def test_default_history_path_is_in_user_data_dir():
    path = default_history_path()
    assert path.name == "history.sqlite3" and "ser-studio" in str(path)


_WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from ser_studio.app.history.history_store import HistoryStore
    store = HistoryStore(sys.argv[1])
    for i in range(100000):
        store.add(source="microphone", label="sad", probs={"sad": 1.0}, duration_s=0.5,
                  model="m", time=float(i))
        print(i, flush=True)
        time.sleep(0.002)
""")


def test_killed_writer_keeps_committed_rows(tmp_path):
    """A writer killed with SIGKILL mid-way: every row it reported as added survives."""
    path = tmp_path / "h.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(REPO)],
                            stdout=subprocess.PIPE, text=True)
    reported = -1
    deadline = time.monotonic() + 30
    while reported < 40 and time.monotonic() < deadline:
        reported = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert reported >= 40
    store = HistoryStore(path)
    count = store.count()
    assert count >= reported + 1  # every printed row was committed before the print
    assert sorted(r.time for r in store.query()) == [float(i) for i in range(count)]
    store.add(source=MICROPHONE, label="happy", probs={"happy": 1.0}, duration_s=1, model="m")
    assert store.count() == count + 1
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
