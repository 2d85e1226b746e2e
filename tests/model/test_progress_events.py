"""The progress record: one JSON line per event, read back as the same record."""
from __future__ import annotations

import json
import math

import pytest

from ser_studio.model.training.progress import FIELDS, FileProgress, ProgressEvent, time_left


def test_every_kind_round_trips_through_json():
    values = {"protocol": "grouped-k-fold", "folds": 4, "epochs": 40, "labels": ["a", "b"],
              "fold": 2, "test_speakers": ["s1"], "val_speakers": ["s2"],
              "train_speakers": ["s3"], "epoch": 3, "train_loss": 0.5, "train_acc": 0.6,
              "train_f1": 0.55, "val_loss": None, "val_acc": 0.4, "val_f1": 0.3, "val_ua": 0.45,
              "lr": 1e-3, "alpha": 0.2, "wa": 0.7, "ua": 0.65, "macro_f1": 0.6, "best_epoch": 9,
              "checkpoint": "/r/fold_2/model.safetensors", "run_dir": "/r", "model": None,
              "report": "/r/report.md", "metrics": "/r/metrics.json",
              "summary": {"ua": {"mean": 0.6, "std": 0.1}}, "folds_completed": 3,
              "cancelled": True, "message": "boom", "stage": "features", "files_done": 3,
              "files_total": 10, "elapsed_s": 1.5}
    for kind, names in FIELDS.items():
        event = ProgressEvent(kind, **{n: values[n] for n in names})
        line = event.to_json()
        assert "\n" not in line
        data = json.loads(line)
        assert list(data) == ["event", *names]  # the kind's fields, nulls included
        assert ProgressEvent.from_json(line) == event


def test_members_are_written_only_when_set_and_nan_becomes_null():
    plain = ProgressEvent("epoch", fold=1, epoch=1, epochs=2, train_loss=0.5)
    assert "member" not in plain.to_dict() and plain.to_dict()["val_ua"] is None
    member = ProgressEvent("final_epoch", epoch=1, train_loss=math.nan, member=2, members=3)
    data = json.loads(member.to_json())
    assert data["member"] == 2 and data["members"] == 3 and data["train_loss"] is None
    assert "fold" not in data


def test_the_json_lines_of_earlier_versions_still_parse():
    line = ('{"event": "epoch", "fold": 1, "epoch": 2, "epochs": 4, "train_loss": 1.0, '
            '"train_acc": 0.5, "val_loss": 1.2, "val_acc": 0.4, "val_ua": 0.45, "lr": 0.001, '
            '"alpha": 0.0}')
    event = ProgressEvent.from_json(line)
    assert (event.kind, event.fold, event.epoch, event.val_ua) == ("epoch", 1, 2, 0.45)
    assert ProgressEvent.from_json('{"event": "fold_start", "fold": 1}').test_speakers is None


@pytest.mark.parametrize("line,message", [
    ('{"event": "party"}', "'party' not known; available = \\['start'"),
    ('{"event": "fold_end", "fold": 1, "speed": 3}', "unknown keys \\['speed'\\]"),
    ('[1, 2]', "not a progress event"),
    ('{"fold": 1}', "not a progress event"),
])
def test_anything_else_is_refused_with_a_reason(line, message):
    with pytest.raises(ValueError, match=message):
        ProgressEvent.from_json(line)


def test_a_kind_refuses_fields_it_does_not_carry():
    with pytest.raises(ValueError, match="'start' has no fields \\['wa'\\]"):
        ProgressEvent("start", wa=0.5)


def test_file_progress_sends_the_first_then_at_most_every_interval_and_the_last():
    now = [100.0]
    sent: list[ProgressEvent] = []
    report = FileProgress(sent.append, "features", clock=lambda: now[0])
    for done, t in ((0, 100.0), (1, 100.1), (2, 100.3), (3, 100.6), (4, 100.7), (5, 100.8)):
        now[0] = t
        report(done, 5)
    assert [(e.files_done, e.files_total, e.elapsed_s) for e in sent] == [
        (0, 5, 0.0), (3, 5, 0.6), (5, 5, 0.8)]
    assert {e.kind for e in sent} == {"extract"} and {e.stage for e in sent} == {"features"}
    FileProgress(None, "features")(1, 5)  # no callback: nothing to send, no error


def test_time_left_is_the_rate_so_far():
    assert time_left(0, 10, 5.0) is None  # no file done yet: no rate
    assert time_left(4, 10, 8.0) == pytest.approx(12.0)
    assert time_left(10, 10, 8.0) == 0.0
