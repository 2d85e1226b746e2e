"""One fold of a cross-validation run: its networks' training jobs (a single network or an
ensemble's members, model.training.members, with their channel variants), trained here one after
another or on a runner (model.cluster.training.RayTrainer), then tested on the fold's test
speakers and saved; and the final model, trained on every speaker.

Final model: after cross-validation a model is trained on every speaker of the corpus for the
median of the folds' best epochs (of every member's, for an ensemble; rounded up), with no
validation speakers (the folds already chose the epoch; the schedules span
``TrainConfig.epochs`` as in the folds, so the refit follows the same learning-rate and alpha
trajectory). Its epochs come as "final_epoch" progress events after "final_start".
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ser_studio.model.config.schema import FrontendConfig, ModelConfig, TrainConfig, config_to_dict
from ser_studio.model.corpora.corpus import language_counts
from ser_studio.model.evaluation.metrics import compute_metrics
from ser_studio.model.evaluation.plots import plot_training_curves
from ser_studio.model.networks.checkpoint import Checkpoint, save_checkpoint
from ser_studio.model.training.data import FeatureDataset, frames_for
from ser_studio.model.training.folds import LOSO_SESSION, Fold
from ser_studio.model.training.members import combine_members, member_folds, member_jobs
from ser_studio.model.training.progress import FileProgress, ProgressEvent
from ser_studio.model.training.run_folder import CHECKPOINT_NAME
from ser_studio.model.training.trainer import (Progress, TrainedModel, TrainingCancelled,
                                               predict_dataset, train_fold)
from ser_studio.model.training.variants import render_variants

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FoldRun:
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
    # model.training.speaker_norms.SpanCache unless train_cfg.speaker_norm is "global"
    spans: object = None
    # trains the networks elsewhere (model.cluster.training.RayTrainer: submitted(key),
    # submit(key, jobs, combine), collect(key, cancel)); None: here, one after another
    runner: object = None


def emit(progress: Progress | None, event: ProgressEvent) -> None:
    if progress is not None:
        progress(event)


def save_trained(run: FoldRun, trained: TrainedModel, metrics: dict, path: Path) -> Path:
    state = {k: v.detach().cpu().contiguous() for k, v in trained.network.state_dict().items()}
    heard = set(trained.speakers)
    ckpt = Checkpoint(frontend=run.frontend_cfg, model=trained.model_cfg, train=run.train_cfg,
                      labels=list(run.labels), speakers=list(trained.speakers),
                      norm_mean=trained.mean.tolist(), norm_std=trained.std.tolist(),
                      metrics=metrics, state_dict=state,
                      languages=language_counts(u for u in run.corpus.utterances
                                                if u.speaker in heard))
    return save_checkpoint(ckpt, path)


def test_trained(run: FoldRun, trained: TrainedModel, test_utts: list,
                 adapted: bool = True) -> dict:
    """compute_metrics of ``trained`` on ``test_utts`` (centre crops of eval_max_seconds).
    With per-speaker (per-corpus) standardisation and ``adapted``, each test speaker (corpus)
    is standardised by the statistics of all of their (its) own test audio, without labels
    (model.training.speaker_norms)."""
    norms = None
    if adapted and run.spans is not None:
        from ser_studio.model.training.speaker_norms import group_norms

        norms = group_norms(run.train_cfg.speaker_norm, test_utts, run.features, run.spans,
                            run.frame_rate, trained.mean, trained.std)
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


def fold_variants(run: FoldRun, folds: list[Fold]) -> dict:
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


def fold_jobs(run: FoldRun, fold: Fold, epochs: int | None = None, progress=None
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
                           device=run.device, variants=fold_variants(run, folds),
                           spans=run.spans)
        return jobs, lambda trained: combine_members(trained, folds, fold.index)
    job = dict(train_utts=[u for u in utts if u.speaker in set(fold.train_speakers)],
               val_utts=[u for u in utts if u.speaker in set(fold.val_speakers)],
               features=run.features, labels=run.labels, model_cfg=run.model_cfg,
               cfg=run.train_cfg, frame_rate=run.frame_rate,
               test_speakers=fold.test_speakers, fold=fold.index, epochs=epochs,
               progress=progress, cancel=run.cancel, device=run.device,
               variants=fold_variants(run, [fold]), spans=run.spans)
    return [job], lambda trained: trained[0]


def train_networks(run: FoldRun, fold: Fold, epochs: int | None = None,
                   progress=None) -> TrainedModel:
    """A single network, or an ensemble's members one by one, trained on ``fold``'s speakers
    (fold index 0: the final model, every speaker in training); with ``run.runner``, trained
    there (submitted now unless it already was)."""
    if run.runner is None:
        jobs, combine = fold_jobs(run, fold, epochs, progress)
        return combine([train_fold(**job) for job in jobs])
    if not run.runner.submitted(fold.index):
        run.runner.submit(fold.index, *fold_jobs(run, fold, epochs, progress))
    return run.runner.collect(fold.index, run.cancel)


def run_fold(run: FoldRun, fold: Fold, protocol: str) -> dict:
    """Train, test and save one fold; returns its entry of the summary's "folds"."""
    test_utts = [u for u in run.corpus.utterances if u.speaker in set(fold.test_speakers)]
    trained = train_networks(run, fold)
    metrics = test_trained(run, trained, test_utts)
    rel = Path(f"fold_{fold.index}") / CHECKPOINT_NAME
    entry = {**fold.to_dict(), "metrics": metrics, "best_epoch": trained.best_epoch,
             "checkpoint": rel.as_posix(), "history": trained.history}
    if run.spans is not None:
        entry["uncalibrated_metrics"] = test_trained(run, trained, test_utts, adapted=False)
    if trained.member_best_epochs:
        entry.update(member_best_epochs=trained.member_best_epochs,
                     member_val_speakers=trained.member_val_speakers)
    if protocol == LOSO_SESSION:
        entry["test_sessions"] = sorted({u.session for u in test_utts})
    save_trained(run, trained, {k: v for k, v in entry.items() if k != "history"},
                run.out_dir / rel)
    plot_training_curves(trained.history, run.out_dir / f"curves_fold{fold.index}.png",
                         best_epoch=trained.best_epoch, title=f"Fold {fold.index}")
    entry["model_config"] = config_to_dict(trained.model_cfg)
    return entry


def train_final(run: FoldRun, folds_done: list[dict], aggregate: dict) -> Path | None:
    """The model on every speaker for the median best epoch; None when cancelled."""
    best = [e for f in folds_done for e in f.get("member_best_epochs", [f["best_epoch"]])]
    epochs = max(1, math.ceil(float(np.median(best))))
    emit(run.progress, ProgressEvent("final_start", epochs=epochs,
                                      train_speakers=list(run.corpus.speakers)))

    def relay(event: ProgressEvent) -> None:
        emit(run.progress, dataclasses.replace(event, kind="final_epoch", fold=None))

    everyone = Fold(0, "", (), (), tuple(run.corpus.speakers))
    try:
        trained = train_networks(run, everyone, epochs=epochs, progress=relay)
    except TrainingCancelled:
        log.info("final model cancelled")
        return None
    metrics = {"cross_validation": {k: aggregate[k] for k in ("wa", "ua", "macro_f1")},
               "epochs": epochs, "history": trained.history}
    if aggregate.get("per_corpus"):
        metrics["cross_validation"].update(per_corpus=aggregate["per_corpus"],
                                           corpus_mean=aggregate["corpus_mean"])
    return save_trained(run, trained, metrics, run.out_dir / CHECKPOINT_NAME)
