"""Cross-validation end to end on the synthetic IEMOCAP-layout corpus.

To stay fast, runs use ``max_folds=2`` (the first two of the five leave-one-session-out folds),
small networks (hidden 32, one GRU layer, frame pooling) and few epochs.
"""
from __future__ import annotations

import json
import threading

import pytest

from ser_studio.model.config.schema import AugmentConfig, FrontendConfig, ModelConfig, TrainConfig
from ser_studio.model.corpora.corpus import load_corpus
from ser_studio.model.features.base import CountingFrontend
from ser_studio.model.features.cache import FeatureCache
from ser_studio.model.features.registry import build_frontend, parse_frontend_spec
from ser_studio.model.networks.checkpoint import load_checkpoint
from ser_studio.model.training.data import FeatureStore
from ser_studio.model.training.experiment import run_cross_validation

SPEAKERS = [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"]




@pytest.fixture(scope="module")
def corpus(synth_corpus):
    return load_corpus(synth_corpus)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


def _train_cfg(**over) -> TrainConfig:
    base = dict(epochs=8, batch_size=16, lr=3e-3, warmup_epochs=1, alpha_start_epoch=2,
                patience=8, val_speakers=2, seed=0)
    return TrainConfig(**{**base, **over})


SMALL = ModelConfig(arch="enhanced", hidden=32, gru_layers=1, attn_heads=4, frame_pool=4)


@pytest.fixture(scope="module")
def logmel_run(corpus, cache_dir, tmp_path_factory):
    events: list[dict] = []
    out = tmp_path_factory.mktemp("run_logmel")
    frontend = CountingFrontend(build_frontend(FrontendConfig()))
    summary = run_cross_validation(corpus, FrontendConfig(), SMALL, _train_cfg(), out,
                                   cache_dir=cache_dir, frontend=frontend,
                                   progress=lambda e: events.append(e.to_dict()), max_folds=2)
    return summary, events, out, frontend


def test_logmel_cross_validation_beats_chance(logmel_run):
    summary, *_ = logmel_run
    agg = summary["aggregate"]
    assert agg["folds"] == 2 and agg["n"] == 64
    assert agg["ua"]["mean"] > 0.45, agg["ua"]  # chance is 0.25
    assert all(f["metrics"]["ua"] > 0.3 for f in summary["folds"])


def test_folds_hold_out_sessions_and_validate_on_training_speakers(logmel_run):
    summary, events, *_ = logmel_run
    assert summary["protocol"] == "leave-one-session-out"
    assert len(summary["folds_planned"]) == 5 and summary["max_folds"] == 2
    for k, fold in enumerate(summary["folds"], 1):
        assert fold["test_speakers"] == [f"Ses0{k}F", f"Ses0{k}M"]
        assert fold["test_sessions"] == [f"Ses0{k}"]
        assert len(fold["val_speakers"]) == 2 and len(fold["train_speakers"]) == 6
        assert not set(fold["val_speakers"]) & set(fold["test_speakers"])
        assert sorted(fold["metrics"]["per_speaker"]) == fold["test_speakers"]
    starts = [e for e in events if e["event"] == "fold_start"]
    assert [e["test_speakers"] for e in starts] == [f["test_speakers"] for f in summary["folds"]]


def test_events_follow_the_contract(logmel_run):
    summary, events, out, _ = logmel_run
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert events[0] == {"event": "start", "protocol": "leave-one-session-out", "folds": 2,
                         "epochs": 8, "labels": ["angry", "happy", "neutral", "sad"]}
    fold_ends = [e for e in events if e["event"] == "fold_end"]
    assert [e["fold"] for e in fold_ends] == [1, 2]
    for e in fold_ends:
        assert set(e) == {"event", "fold", "wa", "ua", "macro_f1", "best_epoch", "checkpoint"}
        assert e["checkpoint"] == str(out / f"fold_{e['fold']}" / "model.safetensors")
    epoch_keys = {"fold", "epoch", "epochs", "train_loss", "train_acc", "val_loss", "val_acc",
                  "val_ua", "lr", "alpha"}
    assert all(epoch_keys <= set(e) for e in events if e["event"] == "epoch")
    assert kinds.index("final_start") > kinds.index("fold_end")
    extract = [e for e in events if e["event"] == "extract"]  # before any fold starts
    assert kinds.index("extract") == 1 and kinds.index("fold_start") > kinds.index("extract")
    assert all(e["stage"] == "features" and e["files_total"] == 160 for e in extract)
    assert extract[0]["files_done"] == 0 and extract[-1]["files_done"] == 160
    assert [e["files_done"] for e in extract] == sorted(e["files_done"] for e in extract)
    done = events[-1]
    assert done["cancelled"] is False and done["folds_completed"] == 2
    assert done["model"] == str(out / "model.safetensors")
    assert done["summary"]["ua"]["mean"] == pytest.approx(summary["aggregate"]["ua"]["mean"])
    json.dumps(events)  # every event is JSON-able


def test_run_folder_holds_checkpoints_plots_metrics_and_report(logmel_run):
    summary, _, out, _ = logmel_run
    for name in ("metrics.json", "report.md", "per_speaker.png", "confusion.png",
                 "curves_fold1.png", "curves_fold2.png", "model.safetensors", "model.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text())["aggregate"]["ua"]["mean"] == \
        pytest.approx(summary["aggregate"]["ua"]["mean"])
    fold = load_checkpoint(out / "fold_1" / "model.safetensors")
    assert fold.labels == ["angry", "happy", "neutral", "sad"]
    assert fold.speakers == summary["folds"][0]["train_speakers"]
    assert fold.model.n_speakers == 6 and fold.model.input_dim == 80
    assert len(fold.norm_mean) == 80 and min(fold.norm_std) > 0
    assert fold.metrics["metrics"]["ua"] == summary["folds"][0]["metrics"]["ua"]
    assert fold.metrics["test_speakers"] == ["Ses01F", "Ses01M"]
    final = load_checkpoint(out / "model.safetensors")
    assert final.speakers == SPEAKERS and final.model.n_speakers == 10
    median = sorted(f["best_epoch"] for f in summary["folds"])
    assert final.metrics["epochs"] == -(-(median[0] + median[1]) // 2)  # median, rounded up
    report = (out / "report.md").read_text()
    assert "Ses01F, Ses01M" in report and "leave-one-session-out" in report


def test_encoder_runs_once_per_file_per_run(logmel_run, corpus, cache_dir):
    *_, frontend = logmel_run
    assert frontend.calls == len(corpus.utterances)  # not once per epoch or fold
    again = CountingFrontend(build_frontend(FrontendConfig()))
    FeatureStore(FeatureCache(again, cache_dir), [u.path for u in corpus.utterances])
    assert again.calls == 0  # a second run reads the cache


def test_tiny_hubert_cross_validation_beats_chance(corpus, tiny_hubert_dir, tmp_path,
                                                    cache_dir):
    spec = parse_frontend_spec(f"hubert:{tiny_hubert_dir}")
    model = ModelConfig(arch="baseline", hidden=32, gru_layers=1, frame_pool=2)
    summary = run_cross_validation(corpus, spec, model, _train_cfg(epochs=10, lr=1e-2),
                                   tmp_path, cache_dir=cache_dir, max_folds=2, final=False)
    assert summary["configs"]["model"]["input_dim"] == 32
    # a random tiny encoder keeps only part of the cues: chance is 0.25
    assert summary["aggregate"]["ua"]["mean"] > 0.375, summary["aggregate"]["ua"]
    assert summary["final_model"] is None and not (tmp_path / "model.safetensors").exists()


def test_cancel_after_the_first_fold_keeps_it(corpus, cache_dir, tmp_path):
    cancel = threading.Event()
    events = []

    def progress(event):
        events.append(event.to_dict())
        if event.kind == "fold_end":
            cancel.set()

    summary = run_cross_validation(corpus, FrontendConfig(), SMALL,
                                   _train_cfg(epochs=2, augment=AugmentConfig().off()),
                                   tmp_path, cache_dir=cache_dir, progress=progress,
                                   cancel=cancel)
    assert summary["cancelled"] is True and len(summary["folds"]) == 1
    assert summary["aggregate"]["folds"] == 1
    assert (tmp_path / "fold_1" / "model.safetensors").is_file()
    assert not (tmp_path / "fold_2").exists() and not (tmp_path / "model.safetensors").exists()
    assert [e["event"] for e in events].count("fold_start") == 1
    done = events[-1]
    assert done["event"] == "done" and done["cancelled"] is True
    assert done["folds_completed"] == 1 and done["model"] is None
    assert "Cancelled" in (tmp_path / "report.md").read_text()


def test_cancel_inside_the_first_fold_discards_it(corpus, cache_dir, tmp_path):
    cancel = threading.Event()

    def progress(event):
        if event.kind == "epoch":
            cancel.set()

    summary = run_cross_validation(corpus, FrontendConfig(), SMALL, _train_cfg(epochs=3),
                                   tmp_path, cache_dir=cache_dir, progress=progress,
                                   cancel=cancel)
    assert summary["cancelled"] and summary["folds"] == [] and summary["aggregate"] is None
    assert not (tmp_path / "fold_1").exists()
    assert (tmp_path / "report.md").is_file() and (tmp_path / "metrics.json").is_file()


def test_cancel_during_feature_extraction_stops_it_and_reports_no_fold(corpus, tmp_path):
    """Stop pressed while features are computed: the loop stops at the next file and the run
    still ends with "done" (cancelled, 0 folds) instead of computing the rest first."""
    cancel = threading.Event()
    events = []

    def progress(event):
        events.append(event.to_dict())
        if event.kind == "extract":
            cancel.set()

    frontend = CountingFrontend(build_frontend(FrontendConfig()))
    summary = run_cross_validation(corpus, FrontendConfig(), SMALL, _train_cfg(), tmp_path,
                                   cache_dir=tmp_path / "fresh_cache", frontend=frontend,
                                   progress=progress, cancel=cancel)
    assert frontend.calls <= 1  # not the corpus's 160 files
    assert summary["cancelled"] and summary["folds"] == []
    assert [e["event"] for e in events] == ["start", "extract", "done"]
    assert events[-1]["folds_completed"] == 0 and events[-1]["cancelled"] is True


def test_a_rerun_into_the_same_folder_leaves_no_stale_outputs(corpus, cache_dir, tmp_path):
    for name in ("fold_3/model.safetensors", "fold_3/model.json", "curves_fold3.png",
                 "model.safetensors", "model.json", "metrics.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    cancel = threading.Event()
    cancel.set()  # nothing is trained: only the clean-up and the empty summary remain
    summary = run_cross_validation(corpus, FrontendConfig(), SMALL, _train_cfg(), tmp_path,
                                   cache_dir=cache_dir, cancel=cancel)
    assert summary["folds"] == [] and summary["cancelled"]
    assert not (tmp_path / "fold_3").exists() and not (tmp_path / "curves_fold3.png").exists()
    assert not (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "metrics.json").read_text())["folds"] == []


def test_an_ensemble_run_trains_members_in_folds_and_for_the_final_model(corpus, cache_dir,
                                                                          tmp_path):
    events: list[dict] = []
    model = ModelConfig(arch="baseline", hidden=16, gru_layers=1, frame_pool=4, ensemble=2,
                        stats_branch=True)
    summary = run_cross_validation(corpus, FrontendConfig(), model, _train_cfg(epochs=3),
                                   tmp_path, cache_dir=cache_dir, progress=lambda e: events.append(e.to_dict()),
                                   max_folds=1)
    fold = summary["folds"][0]
    assert len(fold["member_best_epochs"]) == 2 and len(fold["member_val_speakers"]) == 2
    assert fold["member_val_speakers"][0] == fold["val_speakers"]
    for val in fold["member_val_speakers"]:
        assert not set(val) & set(fold["test_speakers"])
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["member"] for e in epochs] == [1] * 3 + [2] * 3    # 3 epochs each, in turn
    finals = [e for e in events if e["event"] == "final_epoch"]
    assert sorted({e["member"] for e in finals}) == [1, 2]
    assert len(finals) == 2 * events[[e["event"] for e in events].index("final_start")]["epochs"]
    for path in (tmp_path / fold["checkpoint"], tmp_path / "model.safetensors"):
        ckpt = load_checkpoint(path)
        assert ckpt.model.ensemble == 2 and ckpt.model.stats_branch
        assert any(k.startswith("members.1.stats_classifier") for k in ckpt.state_dict)


def test_channel_variants_are_rendered_once_per_fold_for_every_member(corpus, cache_dir,
                                                                      tmp_path, monkeypatch):
    """A real (tiny) run with recording-chain augmentation: the variants are cached beside the
    features, every member trains with them, and babble never comes from a speaker that any
    member validates on or that the fold tests."""
    from ser_studio.model.config.schema import ChannelConfig
    from ser_studio.model.training import fold_run

    calls = []
    real = fold_run.render_variants

    def recording(utts, pool, *args, **kwargs):
        calls.append((utts, pool, kwargs["forbidden_speakers"]))
        return real(utts, pool, *args, **kwargs)

    monkeypatch.setattr(fold_run, "render_variants", recording)
    model = ModelConfig(arch="baseline", hidden=16, gru_layers=1, frame_pool=4, ensemble=2)
    cfg = _train_cfg(epochs=2, channel=ChannelConfig(variants=1, prob=1.0, babble_share=1.0))
    events = []
    summary = run_cross_validation(corpus, FrontendConfig(), model, cfg, tmp_path,
                                   cache_dir=cache_dir, max_folds=1, final=False,
                                   progress=events.append)
    fold = summary["folds"][0]
    assert len(calls) == 1  # one rendering shared by both members
    variants = [e for e in events if e.kind == "extract" and e.stage == "channel variants"]
    kinds = [e.kind for e in events]
    assert kinds.index("fold_start") < events.index(variants[0]) < kinds.index("epoch")
    assert variants[-1].files_done == variants[-1].files_total == len(calls[0][0])
    utts, pool, forbidden = calls[0]
    held = set(fold["test_speakers"]) | {s for v in fold["member_val_speakers"] for s in v}
    assert set(forbidden) == held and pool and not {u.speaker for u in pool} & held
    assert not {u.speaker for u in utts} & set(fold["test_speakers"])
    entries = list((cache_dir / "variants").rglob("*.safetensors"))
    assert len(entries) == len(utts)
    assert summary["configs"]["train"]["channel"]["variants"] == 1
