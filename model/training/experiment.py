"""Speaker-independent cross-validation run: folds, per-fold training and testing
(model.training.fold_run), the final model, and the run folder (model.training.run_folder:
checkpoints, metrics.json, plots, report.md). On several corpora (model.corpora.multi) the folds
are speaker CV over the pool or, train.protocol "loco", one held-out corpus per fold; each
fold's test is also scored per corpus.

Ensembles (ModelConfig.ensemble = M > 1) are trained member by member (model.training.members), in
every fold and for the final model; the ensemble is what is tested and saved.

Progress: ``progress(event)`` gets model.training.progress.ProgressEvent records (that module
lists the kinds); the final model's epochs come as "final_epoch" events after "final_start".
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ser_studio.model.config.checks import fill_derived
from ser_studio.model.config.schema import (FrontendConfig, ModelConfig, TrainConfig,
                                            check_run_configs)
from ser_studio.model.corpora.checks import check_trainable
from ser_studio.model.evaluation.metrics import aggregate_folds
from ser_studio.model.training.data import FeatureStore
from ser_studio.model.training.fold_run import FoldRun, emit, fold_jobs, run_fold, train_final
from ser_studio.model.training.folds import Fold, make_folds
from ser_studio.model.training.progress import FileProgress, ProgressEvent
from ser_studio.model.training.run_folder import (clear_previous_run, done_event, run_summary,
                                                  write_outputs)
from ser_studio.model.training.trainer import Progress, TrainingCancelled

log = logging.getLogger(__name__)

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


def _kept(fold: Fold, resume: Sequence[dict]) -> dict | None:
    """The resumed entry of ``fold`` (same index and speakers), if any."""
    for entry in resume:
        if (entry["fold"] == fold.index
                and entry["test_speakers"] == list(fold.test_speakers)
                and entry["val_speakers"] == list(fold.val_speakers)):
            return entry
    return None


def _run_folds(run: FoldRun, folds: list[Fold], protocol: str,
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
            emit(run.progress, ProgressEvent("fold_resumed", fold=fold.index,
                                              ua=kept["metrics"]["ua"]))
            continue
        log.info("fold %d: testing %s (held out: %s), validating on %s, training on %d "
                 "speakers", fold.index, ", ".join(fold.test_speakers), fold.held_out,
                 ", ".join(fold.val_speakers), len(fold.train_speakers))
        emit(run.progress, ProgressEvent("fold_start", fold=fold.index,
                                          test_speakers=list(fold.test_speakers),
                                          val_speakers=list(fold.val_speakers),
                                          train_speakers=list(fold.train_speakers)))
        try:
            entry = run_fold(run, fold, protocol)
        except TrainingCancelled:
            log.info("fold %d cancelled and discarded", fold.index)
            return done, True
        done.append(entry)
        m = entry["metrics"]
        emit(run.progress, ProgressEvent("fold_end", fold=fold.index, wa=m["wa"], ua=m["ua"],
                                          macro_f1=m["macro_f1"],
                                          best_epoch=entry["best_epoch"],
                                          checkpoint=str(run.out_dir / entry["checkpoint"])))
    return done, False


def _submit_folds(run: FoldRun, folds: list[Fold], resume: Sequence[dict]) -> None:
    """Start every fold's networks on ``run.runner`` (their channel variants are rendered
    first, fold by fold); a cancel meanwhile stops the submitting, and the folds are then
    summarised as cancelled (the runner's outstanding tasks are cancelled when it closes)."""
    for fold in folds:
        if run.cancel is not None and run.cancel.is_set():
            return
        if _kept(fold, resume) is None:
            try:
                run.runner.submit(fold.index, *fold_jobs(run, fold))
            except TrainingCancelled as exc:
                log.info("%s", exc)
                return


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
    emit(progress, ProgressEvent("start", protocol=protocol, folds=len(folds),
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
    clear_previous_run(out_dir, keep=[int(f["fold"]) for f in resume])
    model_cfg = fill_derived(model_cfg, input_dim=frontend.dim, input_layers=frontend.layers,
                             n_classes=len(labels))  # n_speakers: per fold (trainer)
    run = FoldRun(corpus, labels, features, frontend.config, float(frontend.frame_rate), model_cfg,
               train_cfg, out_dir, progress, cancel, device, frontend=frontend,
               cache_dir=cache_dir, feature_bar=feature_bar, runner=runner)
    if train_cfg.speaker_norm != "global":
        from ser_studio.model.training.speaker_norms import SpanCache

        run.spans = SpanCache(cache_dir)
    if runner is not None:  # every fold's networks start at once; train_networks collects them
        _submit_folds(run, folds, resume)
    folds_done, cancelled = _run_folds(run, folds, protocol, resume)
    aggregate = aggregate_folds([f["metrics"] for f in folds_done]) if folds_done else None

    final_path = None
    if final and folds_done and not cancelled:
        final_path = train_final(run, folds_done, aggregate)
        cancelled = final_path is None
    summary = run_summary(run, protocol, all_folds, folds_done, aggregate, cancelled, final_path)
    if folds_done and run.spans is not None:
        summary["uncalibrated_aggregate"] = aggregate_folds([f["uncalibrated_metrics"]
                                                             for f in folds_done])
    summary.update(max_folds=max_folds, elapsed_s=time.monotonic() - started,
                   cache=dataclasses.asdict(cache.stats) if cache is not None else None)
    if runner is not None:
        summary["cluster"] = runner.record()
    write_outputs(run, summary, folds_done)
    emit(progress, done_event(run, summary))
    return summary
