"""The trainer's JSON-line parser, the run state built from events, and the train arguments."""
from __future__ import annotations

import contextlib
import io
import json
import math

from ser_studio.app.wizard.progress import TrainingProgress, format_duration
from ser_studio.app.wizard.settings import train_args
from ser_studio.app.wizard.train_process import JsonLineParser
from ser_studio.model.training.progress import ProgressEvent

LINES = [
    {"event": "start", "protocol": "grouped-k-fold", "folds": 2, "epochs": 3,
     "labels": ["happy", "sad"]},
    {"event": "fold_start", "fold": 1, "test_speakers": ["a", "b"], "val_speakers": ["c"],
     "train_speakers": ["d"]},
    {"event": "epoch", "fold": 1, "epoch": 1, "epochs": 3, "train_loss": 1.0, "val_loss": 1.2,
     "val_ua": 0.4},
    {"event": "epoch", "fold": 1, "epoch": 2, "epochs": 3, "train_loss": 0.8, "val_loss": None,
     "val_ua": 0.5},
    {"event": "fold_end", "fold": 1, "wa": 0.6, "ua": 0.55, "macro_f1": 0.5, "best_epoch": 2,
     "checkpoint": "/run/fold_1/model.safetensors"},
    {"event": "fold_start", "fold": 2, "test_speakers": ["c"], "val_speakers": ["a"],
     "train_speakers": ["d"]},
    {"event": "epoch", "fold": 2, "epoch": 1, "epochs": 3, "train_loss": 1.1, "val_loss": 1.3,
     "val_ua": 0.45},
]
EVENTS = [ProgressEvent.from_dict(line) for line in LINES]


def E(**fields) -> ProgressEvent:  # noqa: N802 - reads like the JSON line it stands for
    return ProgressEvent.from_dict(fields)


def _lines(lines):
    return "".join(json.dumps(e) + "\n" for e in lines).encode()


def test_parser_reassembles_lines_split_anywhere():
    data = _lines(LINES)
    for step in (1, 7, 64, len(data)):
        parser = JsonLineParser()
        got = []
        for i in range(0, len(data), step):
            got += parser.feed(data[i:i + step])
        assert got == EVENTS, step
        assert parser.flush() == [] and parser.garbage == []


def test_parser_keeps_garbage_and_skips_non_events():
    parser = JsonLineParser()
    chunk = (b"Traceback? not json\n"
             b'[1, 2]\n{"no_event": 1}\n{"event": "new_kind"}\n\n   \n'
             b'{"event": "fold_start", "fold": 1, "typo": 2}\n'
             b'{"event": "fold_start", "fold": 1}\r\n'
             b'{"event": "epoch", "fol')
    events = parser.feed(chunk)
    assert events == [E(event="fold_start", fold=1)]
    assert parser.garbage == ["Traceback? not json", "[1, 2]", '{"no_event": 1}',
                              '{"event": "new_kind"}', '{"event": "fold_start", "fold": 1, '
                                                       '"typo": 2}']
    assert parser.feed('d": 1}') == []  # still no newline
    assert parser.flush() == [E(event="epoch", fold=1)]
    assert parser.feed(b"\xff\xfe broken utf8\n") == []
    assert parser.garbage[-1].endswith("broken utf8")


def test_progress_tracks_folds_curves_and_bar():
    p = TrainingProgress()
    assert p.bar() == (0, 0, "preparing features…")
    kinds = [p.handle(e) for e in EVENTS]
    assert kinds == [e["event"] for e in LINES]
    assert (p.protocol, p.folds_total, p.epochs_total) == ("grouped-k-fold", 2, 3)
    assert p.curves.epochs == [1] and p.curves.val_ua == [0.45]  # fold 2's curves only
    rows = p.finished_folds()
    assert [r.fold for r in rows] == [1] and rows[0].test_speakers == ["a", "b"]
    assert p.folds[2].wa is None
    value, maximum, text = p.bar()
    assert (value, maximum) == (3 + 1, 6) and text == "fold 2/2 · epoch 1/3"
    p.handle(E(event="final_start", epochs=2))
    p.handle(E(event="final_epoch", epoch=1, train_loss=0.5, val_loss=None))
    assert p.bar()[:2] == (1, 2) and math.isnan(p.curves.val_loss[0])


def test_an_ensemble_shows_one_member_at_a_time():
    p = TrainingProgress()
    p.handle(E(event="start", protocol="grouped-k-fold", folds=2, epochs=4))
    p.handle(E(event="fold_start", fold=1, test_speakers=["a"]))
    for member in (1, 2):
        for epoch in (1, 2):
            p.handle(E(event="epoch", fold=1, epoch=epoch, epochs=4,
                       val_ua=0.1 * member, member=member, members=3))
    assert p.curves.epochs == [1, 2] and p.curves.val_ua == [0.2, 0.2]   # member 2's only
    assert p.bar() == (4 + 2, 2 * 3 * 4, "fold 1/2 · network 2/3 · epoch 2/4")
    p.handle(E(event="fold_end", fold=1, wa=0.5, ua=0.5, best_epoch=2))
    p.handle(E(event="fold_start", fold=2, test_speakers=["b"]))
    p.handle(E(event="epoch", fold=2, epoch=1, epochs=4, member=1, members=3))
    assert p.bar() == (12 + 1, 24, "fold 2/2 · network 1/3 · epoch 1/4")
    p.handle(E(event="final_start", epochs=2))
    p.handle(E(event="final_epoch", epoch=1, member=3, members=3))
    assert p.bar() == (1, 2, "final model on all speakers · network 3/3: epoch 1/2")


def test_nan_in_curves_for_missing_validation():
    p = TrainingProgress()
    for e in EVENTS[:4]:
        p.handle(e)
    assert p.curves.val_loss[0] == 1.2 and math.isnan(p.curves.val_loss[1])


def test_model_path_prefers_final_then_best_fold():
    p = TrainingProgress()
    for e in EVENTS:
        p.handle(e)
    p.handle(E(event="fold_end", fold=2, wa=0.7, ua=0.65, macro_f1=0.6,
               best_epoch=1, checkpoint="/run/fold_2/model.safetensors"))
    p.handle(E(event="done", run_dir="/run", model=None, folds_completed=2,
               cancelled=True, summary=None))
    assert p.best_fold().fold == 2
    assert p.model_path() == "/run/fold_2/model.safetensors"
    assert p.succeeded() and p.bar() == (2, 2, "cancelled: 2 of 2 folds")
    p.done = E(event="done", run_dir="/run", model="/run/model.safetensors",
               folds_completed=2, cancelled=False)
    assert p.model_path() == "/run/model.safetensors"


def test_nothing_finished_is_not_a_success():
    p = TrainingProgress()
    p.handle(EVENTS[0])
    p.handle(E(event="done", run_dir="/run", model=None, folds_completed=0,
               cancelled=True))
    assert not p.succeeded() and p.model_path() is None
    assert p.bar() == (0, 2, "cancelled: 0 of 2 folds")  # an empty bar, not a full one
    p.handle(E(event="error", message="boom"))
    assert p.error == "boom"


def test_train_args_run_the_written_run_json():
    assert train_args("/runs/x/run.json", "/runs/x") == [
        "train", "--progress-json", "--config", "/runs/x/run.json", "--out", "/runs/x"]


def test_the_trainers_json_lines_parse_into_the_same_record():
    """What ``train --progress-json`` writes (ProgressEvent.to_json) is what the wizard reads."""
    from ser_studio.model.cli.train import JsonLines

    written = [*EVENTS, E(event="done", run_dir="/r", model=None, summary=None,
                          folds_completed=1, cancelled=False),
               E(event="epoch", fold=1, epoch=1, val_ua=float("nan"), member=2, members=3)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for event in written:
            JsonLines()(event)
    parsed = JsonLineParser().feed(out.getvalue())
    assert parsed[:-1] == written[:-1]
    assert parsed[-1].val_ua is None and parsed[-1].member == 2  # NaN is written as null


def test_results_say_whether_the_model_expects_calibration(tmp_path):
    from ser_studio.app.wizard.results import calibration_html

    def run(speaker_norm, **extra):
        folder = tmp_path / speaker_norm
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps(
            {"configs": {"train": {"speaker_norm": speaker_norm}}, **extra}))
        return str(folder)

    assert "works without calibration" in calibration_html(run("global"))
    text = calibration_html(run("speaker", uncalibrated_aggregate={"ua": {"mean": 0.702}}))
    assert "expects calibration" in text and "0.702" in text
    assert "each speaker standardised" in text
    text = calibration_html(run("corpus"))
    assert "expects calibration" in text and "each corpus standardised by its own" in text
    assert calibration_html(str(tmp_path / "missing")) == "" and calibration_html(None) == ""


def test_extraction_shows_files_done_and_the_time_left_at_the_rate_so_far():
    p = TrainingProgress()
    p.handle(EVENTS[0])
    p.handle(E(event="extract", stage="features", files_done=0, files_total=120,
               elapsed_s=0.0))
    assert p.bar() == (0, 120, "extracting features: 0/120 files · time left unknown until "
                               "the first file is done")
    p.handle(E(event="extract", stage="features", files_done=30, files_total=120,
               elapsed_s=40.0))  # 90 files left at 4/3 s each: 120 s
    assert p.bar() == (30, 120, "extracting features: 30/120 files · about 2 min left")
    p.handle(E(event="extract", stage="features", files_done=120, files_total=120,
               elapsed_s=150.0))
    assert p.extract is None and p.bar() == (0, 6, "grouped-k-fold: starting")
    p.handle(EVENTS[1])  # fold 1 starts by making its training clips' variants
    p.handle(E(event="extract", stage="channel variants", files_done=5, files_total=50,
               elapsed_s=3.0))
    assert p.bar() == (5, 50, "extracting recording-chain variants for fold 1: 5/50 files · "
                              "about 30 s left")
    p.handle(EVENTS[2])  # its first epoch: the bar is the folds' again
    assert p.bar() == (1, 6, "fold 1/2 · epoch 1/3")


def test_durations_are_rounded_to_what_an_estimate_can_promise():
    assert [format_duration(s) for s in (3, 14, 44, 56, 150, 3599, 4800)] == [
        "less than 10 s", "10 s", "40 s", "1 min", "2 min", "1 h 0 min", "1 h 20 min"]
