"""Plots are valid PNGs in edge cases; the report states the protocol and links the plots."""
from __future__ import annotations

import math
import struct

import pytest

from ser_studio.model.evaluation.metrics import aggregate_folds, compute_metrics
from ser_studio.model.evaluation.plots import plot_confusion, plot_per_speaker, plot_training_curves
from ser_studio.model.evaluation.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS = ["angry", "happy", "neutral", "sad"]


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, checking its signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.02 * e, "train_f1": 0.4,
             "val_loss": 1.2 / e, "val_acc": 0.4, "val_f1": 0.35, "val_ua": 0.42,
             "lr": 1e-3 / e, "alpha": min(1.0, 0.1 * e)} for e in range(1, epochs + 1)]


@pytest.mark.parametrize("rows", [history(12), history(1), [], [{"epoch": 1, "train_loss": 0.5}],
                                  [{"epoch": 1, "val_loss": math.nan, "lr": None}]])
def test_training_curves_png(tmp_path, rows):
    path = plot_training_curves(rows, tmp_path / "sub" / "curves.png", best_epoch=1)
    width, height = png_size(path)
    assert width > 1000 and height > 600          # the 2x3 grid
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("speakers", [
    {f"Ses0{i}F": {"accuracy": 0.5 + 0.04 * i, "f1": 0.4, "n": 10} for i in range(1, 6)},
    {"only": {"accuracy": 1.0, "f1": 0.0, "n": 3}},
    {f"Actor_{i:02d}": {"accuracy": 0.6, "f1": 0.5, "n": 5, "fold": i % 4} for i in range(1, 25)},
    {},
])
def test_per_speaker_png(tmp_path, speakers):
    path = plot_per_speaker(speakers, tmp_path / "per_speaker.png")
    width, height = png_size(path)
    assert width >= 600 and height >= 400


@pytest.mark.parametrize("confusion,labels", [
    ([[5, 1, 0, 0], [0, 3, 2, 0], [1, 0, 7, 0], [0, 0, 0, 0]], LABELS),   # an empty row
    ([[4]], ["neutral"]),
    ([[1, 2, 3, 4, 5, 6, 7]] * 7, [f"class{i}" for i in range(7)]),
])
def test_confusion_png(tmp_path, confusion, labels):
    path = plot_confusion(confusion, labels, tmp_path / "confusion.png")
    width, height = png_size(path)
    assert width >= 400 and height >= 400


def test_confusion_shape_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        plot_confusion([[1, 2], [3, 4]], LABELS, tmp_path / "c.png")


def _fold(k: int, speakers: list[str], true, pred) -> dict:
    spk = [speakers[i % len(speakers)] for i in range(len(true))]
    metrics = compute_metrics(true, pred, LABELS, speakers=spk, genders=[s[-1] for s in spk],
                              sessions=[s[:5] for s in spk])
    return {"fold": k, "test_speakers": speakers, "val_speakers": [f"Ses0{k + 2}F"],
            "train_speakers": ["Ses03F", "Ses03M", "Ses04F", "Ses04M"], "metrics": metrics,
            "best_epoch": 3 + k, "checkpoint": f"fold_{k}/model.safetensors",
            "test_sessions": [speakers[0][:5]]}


def _summary(tmp_path, cancelled=False) -> dict:
    folds = [
        _fold(0, ["Ses01F", "Ses01M"], ["angry", "happy", "sad", "neutral"] * 2,
              ["angry", "happy", "neutral", "neutral"] * 2),
        _fold(1, ["Ses02F", "Ses02M"], ["angry", "happy", "sad", "neutral"] * 2,
              ["angry", "sad", "sad", "neutral"] * 2),
    ]
    agg = aggregate_folds([f["metrics"] for f in folds])
    plot_confusion(agg["confusion"], agg["labels"], tmp_path / "confusion.png")
    plot_per_speaker(agg["per_speaker"], tmp_path / "per_speaker.png")
    plot_training_curves(history(3), tmp_path / "curves_fold0.png")
    return {
        "protocol": "leave-one-session-out",
        "corpus": {"path": "/data/iemocap", "summary": {"kind": "iemocap", "utterances": 16,
                                                         "speakers": {"Ses01F": 4}}},
        "configs": {"frontend": {"name": "logmel", "n_mels": 80},
                    "model": {"arch": "enhanced", "hidden": 64},
                    "train": {"epochs": 5, "lr": 0.001}},
        "folds": folds, "aggregate": agg,
        "plots": {"confusion": "confusion.png", "per_speaker": "per_speaker.png",
                  "curves_fold0": "curves_fold0.png"},
        "final_model": None if cancelled else "model.safetensors",
        "cancelled": cancelled,
    }


def test_report_states_protocol_figures_and_links_plots(tmp_path):
    summary = _summary(tmp_path)
    path = write_report(tmp_path, summary)
    text = path.read_text()
    assert path == tmp_path / "report.md"
    assert "leave-one-session-out" in text and "/data/iemocap" in text
    assert "| 0 | Ses01F, Ses01M (sessions Ses01) | Ses02F |" in text
    assert "| 1 | Ses02F, Ses02M (sessions Ses02) | Ses03F |" in text
    agg = summary["aggregate"]
    wa = f"{100 * agg['wa']['mean']:.1f} ± {100 * agg['wa']['std']:.1f}"
    assert f"| WA (accuracy) | {wa} |" in text
    assert "| Ses02M | 1 | 4 |" in text                  # per-speaker table names the fold
    assert "### Per gender" in text and "### Per session" in text and "Ses02M" in text
    for rel in ("confusion.png", "per_speaker.png", "curves_fold0.png"):
        assert f"]({rel})" in text and (tmp_path / rel).exists()
    assert '"arch": "enhanced"' in text and "Frontend: logmel" in text
    assert "Cancelled" not in text and "`model.safetensors`" in text


def test_report_of_a_cancelled_run_without_folds(tmp_path):
    planned = [{"fold": k, "test_speakers": [f"s{k}"], "val_speakers": [],
                "train_speakers": []} for k in (1, 2)]
    summary = {"protocol": "grouped-k-fold", "folds": [], "aggregate": None, "plots": {},
               "final_model": None, "cancelled": True, "corpus": {"path": "x.csv"},
               "configs": {}, "folds_planned": planned}
    text = write_report(tmp_path / "run", summary).read_text()
    assert "**Cancelled**: 0 fold(s)" in text and "No fold finished." in text
    assert "fold 1 (test speakers s1); fold 2 (test speakers s2)" in text
    assert "final model was not trained" in text


def test_report_lists_each_members_validation_speakers_and_best_epoch(tmp_path):
    summary = _summary(tmp_path)
    summary["folds"][1].update(member_val_speakers=[["Ses03F"], ["Ses04M"]],
                               member_best_epochs=[3, 6], best_epoch=5)
    text = write_report(tmp_path, summary).read_text()
    assert "| 1 | Ses02F, Ses02M (sessions Ses02) | Ses03F / Ses04M | 4 | 5 (members 3, 6) |" \
        in text
    assert "each member validates on its own speakers" in text
    assert "- Architecture: enhanced\n" in text
    summary["configs"]["model"].update(stats_branch=True, ensemble=5)
    text = write_report(tmp_path, summary).read_text()
    assert ("- Architecture: enhanced + utterance-statistics branch, ensemble of 5 networks "
            "trained one by one") in text
    assert "| 0 | Ses01F, Ses01M (sessions Ses01) | Ses02F | 4 | 3 |" in text


def _captured_figure(monkeypatch):
    """Make the plotting functions hand their Figure to the test instead of only saving it."""
    from ser_studio.model.evaluation import plots

    figures = []
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or real(fig, path))
    return figures


def test_each_curve_is_drawn_in_its_own_panel(tmp_path, monkeypatch):
    """Accuracy values land on the Accuracy panel and F1 values on the Macro-F1 panel."""
    figures = _captured_figure(monkeypatch)
    rows = history(5)
    plot_training_curves(rows, tmp_path / "c.png", best_epoch=3)
    panels = {ax.get_title(): ax for ax in figures[0].axes}
    def drawn(panel):
        return {line.get_label(): list(line.get_ydata()) for line in panels[panel].get_lines()}
    assert drawn("Accuracy")["train"] == [r["train_acc"] for r in rows]
    assert drawn("Accuracy")["validation UA"] == [r["val_ua"] for r in rows]
    assert drawn("Macro-F1")["train"] == [r["train_f1"] for r in rows]
    assert drawn("Macro-F1")["validation"] == [r["val_f1"] for r in rows]
    assert drawn("Learning rate")["lr"] == [r["lr"] for r in rows]


def test_per_speaker_bars_show_accuracy_and_f1_of_each_speaker(tmp_path, monkeypatch):
    figures = _captured_figure(monkeypatch)
    speakers = {"b": {"accuracy": 0.9, "f1": 0.2, "n": 4}, "a": {"accuracy": 0.6, "f1": 0.5}}
    plot_per_speaker(speakers, tmp_path / "s.png")
    ax = figures[0].axes[0]
    bars = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert bars == {"accuracy": [0.6, 0.9], "macro-F1": [0.5, 0.2]}  # speakers sorted by name


def test_report_names_the_level_and_channel_treatment(tmp_path):
    summary = _summary(tmp_path)
    text = write_report(tmp_path, summary).read_text()
    assert "LUFS" not in text and "recording-chain" not in text  # an older run: neither
    summary["configs"]["frontend"].update(loudness="bs1770", target_lufs=-23.0,
                                          band_norm="cmvn")
    summary["configs"]["train"] = {**summary["configs"].get("train", {}),
                                   "channel": {"variants": 4, "prob": 0.6}}
    text = write_report(tmp_path, summary).read_text()
    assert ("Frontend: logmel, loudness normalised to -23.0 LUFS (BS.1770), per-utterance band "
            "CMVN; trained on 4 recording-chain variants per clip") in text
