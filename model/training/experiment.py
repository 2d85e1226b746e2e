"""Speaker-independent cross-validation run: folds, per-fold training and testing, the final
model, and the run folder (checkpoints, metrics.json, plots, report.md). On several corpora
(model.corpora.multi) the folds are speaker CV over the pool or, train.protocol "loco", one
held-out corpus per fold; each fold's test is also scored per corpus.

Ensembles (ModelConfig.ensemble = M > 1) are trained member by member (model.training.members), in
every fold and for the final model; the ensemble is what is tested and saved.

Final model: after cross-validation a model is trained on every speaker of the corpus for the
median of the folds' best epochs (of every member's, for an ensemble; rounded up), with no
validation speakers (the folds already chose the epoch; the schedules span
``TrainConfig.epochs`` as in the folds, so the refit follows the same learning-rate and alpha
trajectory). Skipped with ``final=False`` or after a cancel.

Progress: ``progress(event)`` gets model.training.progress.ProgressEvent records (that module
lists the kinds); the final model's epochs come as "final_epoch" events after "final_start".
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ser_studio.model.config.checks import fill_derived
from ser_studio.model.config.schema import (FrontendConfig, ModelConfig, TrainConfig,
                                            check_run_configs, config_to_dict)
from ser_studio.model.corpora.checks import check_trainable
from ser_studio.model.corpora.multi import run_entry
from ser_studio.model.evaluation.metrics import aggregate_folds, compute_metrics
from ser_studio.model.evaluation.plots import plot_confusion, plot_per_speaker, plot_training_curves
from ser_studio.model.evaluation.report import write_report
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.training.data import FeatureDataset, FeatureStore, frames_for
from ser_studio.model.training.folds import LOSO_SESSION, Fold, make_folds
from ser_studio.model.training.members import combine_members, member_folds, member_jobs
from ser_studio.model.training.progress import FileProgress, ProgressEvent, done_figures
from ser_studio.model.training.trainer import (Progress, TrainedModel, TrainingCancelled,
                                               predict_dataset, train_fold)
from ser_studio.model.training.variants import render_variants

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "model.safetensors"
METRICS_NAME = "metrics.json"


@dataclasses.dataclass
class _Run:
    """What every fold of one run shares."""

    corpus: object
    labels: list[str]
    features: Mapping
    frontend_cfg: FrontendConfig
    frame_rate: float
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    out_dir: Path
    progress: Progress
    cancel: object
    device: object
    frontend: object = None  # renders channel variants (model.training.variants); None: none
    cache_dir: object = None
    feature_bar: bool = False
    # model.training.speaker_norms.SpanCache when train_cfg.speaker_norm is "speaker"
    spans: object = None
    # trains the networks elsewhere (model.cluster.training.RayTrainer: submitted(key),
    # submit(key, jobs, combine), collect(key, cancel)); None: here, one after another
    runner: object = None


def _emit(progress: Progress | None, event: ProgressEvent) -> None:
    if progress is not None:
        progress(event)


def _checkpoint(run: _Run, trained: TrainedModel, metrics: dict, path: Path) -> Path:
    state = {k: v.detach().cpu().contiguous() for k, v in trained.network.state_dict().items()}
    ckpt = Checkpoint(frontend=run.frontend_cfg, model=trained.model_cfg, train=run.train_cfg,
                      labels=list(run.labels), speakers=list(trained.speakers),
                      norm_mean=trained.mean.tolist(), norm_std=trained.std.tolist(),
                      metrics=metrics, state_dict=state)
    return save_checkpoint(ckpt, path)


def _test(run: _Run, trained: TrainedModel, test_utts: list, adapted: bool = True) -> dict:
    """compute_metrics of ``trained`` on ``test_utts`` (centre crops of eval_max_seconds).
    With per-speaker standardisation (and ``adapted``), each test speaker is standardised by
    the statistics of all of their own test audio, without labels (model.training.speaker_norms)."""
    norms = None
    if adapted and run.spans is not None:
        from ser_studio.model.training.speaker_norms import speaker_norms

        norms = speaker_norms(test_utts, run.features, run.spans, run.frame_rate,
                              trained.mean, trained.std)
    dataset = FeatureDataset(run.features, test_utts, run.labels, trained.mean, trained.std,
                             max_frames=frames_for(run.train_cfg.eval_max_seconds,
                                                   run.frame_rate), train=False, norms=norms)
    probs, _ = predict_dataset(trained.network, dataset, run.train_cfg.batch_size,
                               cancel=run.cancel)
    y_pred = [run.labels[i] for i in probs.argmax(1)]
    several = len({u.corpus for u in run.corpus.utterances}) > 1  # per corpus, never pooled only
    return compute_metrics([u.label for u in test_utts], y_pred, run.labels,
                           speakers=[u.speaker for u in test_utts],
                           genders=[u.gender for u in test_utts],
                           sessions=[u.session for u in test_utts],
                           corpora=[u.corpus for u in test_utts] if several else None)


def _variants(run: _Run, folds: list[Fold]) -> dict:
    """Channel variants of every utterance some member trains on, with babble drawn only from
    speakers that no member validates or tests on ({} when the recipe has none)."""
    if run.train_cfg.channel.variants == 0 or run.frontend is None:
        return {}
    training = {s for f in folds for s in f.train_speakers}
    forbidden = {s for f in folds for s in (*f.val_speakers, *f.test_speakers)}
    utts = run.corpus.utterances
    return render_variants(
        [u for u in utts if u.speaker in training],
        [u for u in utts if u.speaker in training - forbidden], run.frontend,
        run.train_cfg.channel, seed=run.train_cfg.seed, forbidden_speakers=sorted(forbidden),
        cache_dir=run.cache_dir, progress=run.feature_bar, cancel=run.cancel,
        on_file=FileProgress(run.progress, "channel variants"), runner=run.runner)


def _fold_jobs(run: _Run, fold: Fold, epochs: int | None = None, progress=None
               ) -> tuple[list[dict], object]:
    """train_fold's keyword arguments for each network of ``fold`` (one, or one per ensemble
    member; fold index 0: the final model, every speaker in training) and the function that
    makes their results one TrainedModel."""
    utts = run.corpus.utterances
    progress = progress or run.progress
    members = run.model_cfg.ensemble
    if members > 1:
        folds = ([fold] * members if fold.index == 0 else
                 member_folds(utts, run.corpus.kind, run.train_cfg, fold, members))
        jobs = member_jobs(utts, folds, run.features, run.labels, run.model_cfg,
                           run.train_cfg, frame_rate=run.frame_rate, fold=fold.index,
                           epochs=epochs, progress=progress, cancel=run.cancel,
                           device=run.device, variants=_variants(run, folds),
                           spans=run.spans)
        return jobs, lambda trained: combine_members(trained, folds, fold.index)
    job = dict(train_utts=[u for u in utts if u.speaker in set(fold.train_speakers)],
               val_utts=[u for u in utts if u.speaker in set(fold.val_speakers)],
               features=run.features, labels=run.labels, model_cfg=run.model_cfg,
               cfg=run.train_cfg, frame_rate=run.frame_rate,
               test_speakers=fold.test_speakers, fold=fold.index, epochs=epochs,
               progress=progress, cancel=run.cancel, device=run.device,
               variants=_variants(run, [fold]), spans=run.spans)
    return [job], lambda trained: trained[0]


def _train(run: _Run, fold: Fold, epochs: int | None = None, progress=None) -> TrainedModel:
    """A single network, or an ensemble's members one by one, trained on ``fold``'s speakers
    (fold index 0: the final model, every speaker in training); with ``run.runner``, trained
    there (submitted now unless it already was)."""
    if run.runner is None:
        jobs, combine = _fold_jobs(run, fold, epochs, progress)
        return combine([train_fold(**job) for job in jobs])
    if not run.runner.submitted(fold.index):
        run.runner.submit(fold.index, *_fold_jobs(run, fold, epochs, progress))
    return run.runner.collect(fold.index, run.cancel)


def _run_fold(run: _Run, fold: Fold, protocol: str) -> dict:
    """Train, test and save one fold; returns its entry of the summary's "folds"."""
    test_utts = [u for u in run.corpus.utterances if u.speaker in set(fold.test_speakers)]
    trained = _train(run, fold)
    metrics = _test(run, trained, test_utts)
    rel = Path(f"fold_{fold.index}") / CHECKPOINT_NAME
    entry = {**fold.to_dict(), "metrics": metrics, "best_epoch": trained.best_epoch,
             "checkpoint": rel.as_posix(), "history": trained.history}
    if run.spans is not None:
        entry["uncalibrated_metrics"] = _test(run, trained, test_utts, adapted=False)
    if trained.member_best_epochs:
        entry.update(member_best_epochs=trained.member_best_epochs,
                     member_val_speakers=trained.member_val_speakers)
    if protocol == LOSO_SESSION:
        entry["test_sessions"] = sorted({u.session for u in test_utts})
    _checkpoint(run, trained, {k: v for k, v in entry.items() if k != "history"},
                run.out_dir / rel)
    plot_training_curves(trained.history, run.out_dir / f"curves_fold{fold.index}.png",
                         best_epoch=trained.best_epoch, title=f"Fold {fold.index}")
    entry["model_config"] = config_to_dict(trained.model_cfg)
    return entry


def _train_final(run: _Run, folds_done: list[dict], aggregate: dict) -> Path | None:
    """The model on every speaker for the median best epoch; None when cancelled."""
    best = [e for f in folds_done for e in f.get("member_best_epochs", [f["best_epoch"]])]
    epochs = max(1, math.ceil(float(np.median(best))))
    _emit(run.progress, ProgressEvent("final_start", epochs=epochs,
                                      train_speakers=list(run.corpus.speakers)))

    def relay(event: ProgressEvent) -> None:
        _emit(run.progress, dataclasses.replace(event, kind="final_epoch", fold=None))

    everyone = Fold(0, "", (), (), tuple(run.corpus.speakers))
    try:
        trained = _train(run, everyone, epochs=epochs, progress=relay)
    except TrainingCancelled:
        log.info("final model cancelled")
        return None
    metrics = {"cross_validation": {k: aggregate[k] for k in ("wa", "ua", "macro_f1")},
               "epochs": epochs, "history": trained.history}
    if aggregate.get("per_corpus"):
        metrics["cross_validation"].update(per_corpus=aggregate["per_corpus"],
                                           corpus_mean=aggregate["corpus_mean"])
    return _checkpoint(run, trained, metrics, run.out_dir / CHECKPOINT_NAME)


def _write_outputs(run: _Run, summary: dict, folds_done: list[dict]) -> None:
    """Plots, metrics.json and report.md of the run folder (``summary`` gains "plots")."""
    plots = {f"curves_fold{f['fold']}": f"curves_fold{f['fold']}.png" for f in folds_done}
    agg = summary["aggregate"]
    if agg:
        plot_per_speaker(agg["per_speaker"], run.out_dir / "per_speaker.png")
        plot_confusion(agg["confusion"], agg["labels"], run.out_dir / "confusion.png")
        plots.update(per_speaker="per_speaker.png", confusion="confusion.png")
    summary["plots"] = plots
    (run.out_dir / METRICS_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    write_report(run.out_dir, summary)


def _done_event(run: _Run, summary: dict) -> ProgressEvent:
    final = summary["final_model"]
    return ProgressEvent(
        "done", run_dir=str(run.out_dir), model=str(run.out_dir / final) if final else None,
        report=str(run.out_dir / "report.md"), metrics=str(run.out_dir / METRICS_NAME),
        summary=done_figures(summary["aggregate"]),
        folds_completed=len(summary["folds"]), cancelled=summary["cancelled"])


def _clear_previous_run(out_dir: Path, keep: Sequence[int] = ()) -> None:
    """Remove what an earlier run wrote into ``out_dir`` (only the names a run writes), so a
    rerun with fewer folds or without a final model leaves no stale files behind. The folds
    numbered in ``keep`` (a resumed run's) keep their checkpoints and curves."""
    names = [METRICS_NAME, "report.md", "per_speaker.png", "confusion.png", CHECKPOINT_NAME,
             Path(CHECKPOINT_NAME).with_suffix(".json").name]
    stale = [out_dir / n for n in names if (out_dir / n).is_file()]
    kept = {f"fold_{k}" for k in keep}
    stale += [p for p in sorted(out_dir.glob("curves_fold*.png"))
              if p.name not in {f"curves_fold{k}.png" for k in keep}]
    stale += [p / n for p in sorted(out_dir.glob("fold_*")) if p.is_dir() and p.name not in kept
              for n in (CHECKPOINT_NAME, Path(CHECKPOINT_NAME).with_suffix(".json").name)
              if (p / n).is_file()]
    if stale:
        log.warning("%s: replacing the outputs of an earlier run (%d files)", out_dir, len(stale))
    for path in stale:
        path.unlink()
    for folder in out_dir.glob("fold_*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _load_features(corpus, frontend, cache_dir, bar: bool, progress: Progress | None = None,
                   cancel=None, runner=None) -> tuple[Mapping, object]:
    """Every clip's features (computed once, then from the cache; with ``runner``, the missing
    ones extracted on its cluster first), reported as "extract" events; TrainingCancelled
    between two files once ``cancel`` is set."""
    from ser_studio.model.features.cache import FeatureCache

    report = FileProgress(progress, "features")

    def on_file(done: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled(f"cancelled after the features of {done} of {total} files")
        report(done, total)

    cache = FeatureCache(frontend, cache_dir)
    paths = [u.path for u in corpus.utterances]
    if runner is not None:
        runner.features(cache, paths, on_file=report, cancel=cancel)
    store = FeatureStore(cache, paths, progress=bar,
                         on_file=on_file if runner is None else None)
    log.info("features: %d cache hits, %d computed", cache.stats.hits, cache.stats.misses)
    return store, cache


def _summary(run: _Run, protocol: str, all_folds: list[Fold], folds_done: list[dict],
             aggregate: dict | None, cancelled: bool, final_path: Path | None) -> dict:
    """The run summary (metrics.json; layout in model.evaluation.report's docstring), without
    plots."""
    return {
        "protocol": protocol,
        "corpus": run_entry(run.corpus),
        "configs": {"frontend": config_to_dict(run.frontend_cfg),
                    "model": (folds_done[-1]["model_config"] if folds_done
                              else config_to_dict(run.model_cfg)),
                    "train": config_to_dict(run.train_cfg)},
        "labels": run.labels, "folds_planned": [f.to_dict() for f in all_folds],
        "folds": folds_done,
        "aggregate": aggregate,
        "final_model": CHECKPOINT_NAME if final_path else None, "cancelled": cancelled,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _kept(fold: Fold, resume: Sequence[dict]) -> dict | None:
    """The resumed entry of ``fold`` (same index and speakers), if any."""
    for entry in resume:
        if (entry["fold"] == fold.index
                and entry["test_speakers"] == list(fold.test_speakers)
                and entry["val_speakers"] == list(fold.val_speakers)):
            return entry
    return None


def _run_folds(run: _Run, folds: list[Fold], protocol: str,
               resume: Sequence[dict] = ()) -> tuple[list[dict], bool]:
    """Train and test each fold in turn (a fold found in ``resume`` is kept as it is);
    returns (finished fold entries, cancelled)."""
    done: list[dict] = []
    for fold in folds:
        if run.cancel is not None and run.cancel.is_set():
            return done, True
        kept = _kept(fold, resume)
        if kept is not None:
            done.append(kept)
            _emit(run.progress, ProgressEvent("fold_resumed", fold=fold.index,
                                              ua=kept["metrics"]["ua"]))
            continue
        log.info("fold %d: testing %s (held out: %s), validating on %s, training on %d "
                 "speakers", fold.index, ", ".join(fold.test_speakers), fold.held_out,
                 ", ".join(fold.val_speakers), len(fold.train_speakers))
        _emit(run.progress, ProgressEvent("fold_start", fold=fold.index,
                                          test_speakers=list(fold.test_speakers),
                                          val_speakers=list(fold.val_speakers),
                                          train_speakers=list(fold.train_speakers)))
        try:
            entry = _run_fold(run, fold, protocol)
        except TrainingCancelled:
            log.info("fold %d cancelled and discarded", fold.index)
            return done, True
        done.append(entry)
        m = entry["metrics"]
        _emit(run.progress, ProgressEvent("fold_end", fold=fold.index, wa=m["wa"], ua=m["ua"],
                                          macro_f1=m["macro_f1"],
                                          best_epoch=entry["best_epoch"],
                                          checkpoint=str(run.out_dir / entry["checkpoint"])))
    return done, False


def run_cross_validation(corpus, frontend_cfg: FrontendConfig, model_cfg: ModelConfig,
                         train_cfg: TrainConfig, out_dir, *, cache_dir=None, frontend=None,
                         features: Mapping | None = None, progress: Progress | None = None,
                         cancel=None, final: bool = True, max_folds: int | None = None,
                         device=None, feature_bar: bool = False,
                         resume: Sequence[dict] = (), runner=None) -> dict:
    """Cross-validate on ``corpus`` (a model.corpora.corpus.Corpus, or a
    model.corpora.multi.CorpusSet of several) and fill the run folder ``out_dir``.
    train_cfg.protocol "loco" holds out one corpus per fold.

    frontend: an already built frontend (default: ``build_frontend(frontend_cfg)``, once per
    run). features: a path -> features mapping used instead of the FeatureCache under
    ``cache_dir`` (benchmarks). model_cfg's derived fields (input_dim, input_layers, n_classes,
    n_speakers; model.config.checks.derived) are set from the frontend, the corpus and each
    fold. max_folds: run only the first folds
    (tests, quick looks; 0 or None: all). feature_bar: a tqdm bar on stderr while features are
    loaded or computed. device: torch device (default: cuda when available). cancel: any
    object with ``is_set()``; a cancelled fold is discarded, finished folds are summarised and
    "done" is still emitted with cancelled true. The "start" event comes before features are
    computed. resume: fold entries of an earlier metrics.json in ``out_dir`` (same configs)
    whose folds are kept rather than trained again. runner: trains the networks elsewhere
    (model.cluster.training.RayTrainer: every fold's are submitted at once, then collected in
    order; the summary gains "cluster" with its ``record()``). Returns the summary written to
    metrics.json (layout: model.evaluation.report's docstring).
    """
    started = time.monotonic()
    check_run_configs(frontend_cfg, train_cfg)
    check_trainable(corpus)
    out_dir = Path(out_dir)
    if max_folds is not None and max_folds < 0:
        raise ValueError(f"max_folds must be >= 1 (0 or None: every fold), got {max_folds}")
    protocol, all_folds = make_folds(corpus.utterances, kind=corpus.kind,
                                     folds=train_cfg.folds, val_speakers=train_cfg.val_speakers,
                                     seed=train_cfg.seed, protocol=train_cfg.protocol)
    folds = all_folds[:max_folds] if max_folds else all_folds
    labels = list(corpus.labels)
    _emit(progress, ProgressEvent("start", protocol=protocol, folds=len(folds),
                                  epochs=train_cfg.epochs, labels=labels))
    if frontend is None:
        from ser_studio.model.features.registry import build_frontend

        frontend = build_frontend(frontend_cfg)
    cache = None
    if features is None:
        try:
            features, cache = _load_features(corpus, frontend, cache_dir, feature_bar,
                                             progress, cancel, runner)
        except TrainingCancelled as exc:  # no fold starts (cancel is set): "done", 0 folds
            log.info("%s", exc)
            features = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous_run(out_dir, keep=[int(f["fold"]) for f in resume])
    model_cfg = fill_derived(model_cfg, input_dim=frontend.dim, input_layers=frontend.layers,
                             n_classes=len(labels))  # n_speakers: per fold (trainer)
    run = _Run(corpus, labels, features, frontend.config, float(frontend.frame_rate), model_cfg,
               train_cfg, out_dir, progress, cancel, device, frontend=frontend,
               cache_dir=cache_dir, feature_bar=feature_bar, runner=runner)
    if train_cfg.speaker_norm == "speaker":
        from ser_studio.model.training.speaker_norms import SpanCache

        run.spans = SpanCache(cache_dir)
    if runner is not None:  # every fold's networks start at once; _train collects them
        for fold in folds:
            if _kept(fold, resume) is None and not (cancel is not None and cancel.is_set()):
                runner.submit(fold.index, *_fold_jobs(run, fold))
    folds_done, cancelled = _run_folds(run, folds, protocol, resume)
    aggregate = aggregate_folds([f["metrics"] for f in folds_done]) if folds_done else None

    final_path = None
    if final and folds_done and not cancelled:
        final_path = _train_final(run, folds_done, aggregate)
        cancelled = final_path is None
    summary = _summary(run, protocol, all_folds, folds_done, aggregate, cancelled, final_path)
    if folds_done and run.spans is not None:
        summary["uncalibrated_aggregate"] = aggregate_folds([f["uncalibrated_metrics"]
                                                             for f in folds_done])
    summary.update(max_folds=max_folds, elapsed_s=time.monotonic() - started,
                   cache=dataclasses.asdict(cache.stats) if cache is not None else None)
    if runner is not None:
        summary["cluster"] = runner.record()
    _write_outputs(run, summary, folds_done)
    _emit(progress, _done_event(run, summary))
    return summary
