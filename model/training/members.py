"""Ensembles trained member by member (ModelConfig.ensemble = M > 1).

Each member is an ordinary single-network training run with its own seed (seed, seed + 1, ...):
its own initialisation, batch order, augmentation, validation speakers and early stopping. The
members of a fold all test the fold's speakers; member m draws its validation speakers from the
training side with seed + m (``make_folds`` picks the test speakers without a seed, so every
member's fold has the same test speakers, which is checked). The ensemble predicts the mean of
the members' probabilities (model.networks.ensemble.Ensemble).

Shared by the members, so that one checkpoint describes them all: the standardisation is the
statistics of every training-side speaker of the fold (validation speakers included: unlabelled
feature statistics), and the adversarial speaker head (enhanced network) has as many outputs as
each member has training speakers (the same count for every member).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from ser_studio.model.config.schema import ModelConfig, TrainConfig
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.networks.ensemble import Ensemble
from ser_studio.model.training.folds import Fold, make_folds
from ser_studio.model.training.trainer import Progress, TrainedModel, train_fold

log = logging.getLogger(__name__)


def member_folds(utterances: Sequence[Utterance], kind: str, cfg: TrainConfig, fold: Fold,
                 members: int) -> list[Fold]:
    """Fold ``fold.index`` as each of ``members`` members sees it (member m: seed + m)."""
    result = []
    for m in range(members):
        _, folds = make_folds(utterances, kind=kind, folds=cfg.folds,
                              val_speakers=cfg.val_speakers, seed=cfg.seed + m,
                              protocol=cfg.protocol)
        mine = folds[fold.index - 1]
        if mine.test_speakers != fold.test_speakers:
            raise RuntimeError(f"fold {fold.index}: member {m + 1} would test "
                               f"{mine.test_speakers}, not {fold.test_speakers}")
        result.append(mine)
    return result


def _relay(progress: Progress | None, member: int, members: int) -> Progress | None:
    """Progress events of one member, tagged with "member" (1-based) and "members"."""
    if progress is None:
        return None
    return lambda event: progress(dataclasses.replace(event, member=member, members=members))


def member_jobs(utterances: Sequence[Utterance], folds: Sequence[Fold], features: Mapping,
                labels: Sequence[str], model_cfg: ModelConfig, cfg: TrainConfig, *,
                frame_rate: float, fold: int = 1, epochs: int | None = None,
                progress: Progress | None = None, cancel=None, device=None,
                variants: Mapping | None = None, spans=None) -> list[dict]:
    """train_fold's keyword arguments for each member, one per entry of ``folds`` (member m:
    seed + m, its fold's train/validation speakers, the shared standardisation speakers and
    its progress tagged with member/members). Trained here (``train_members``) or elsewhere
    (a Ray cluster, model.cluster.training); ``combine_members`` makes the ensemble."""
    members = len(folds)
    single = dataclasses.replace(model_cfg, ensemble=1)
    by_speaker = {s for f in folds for s in (*f.train_speakers, *f.val_speakers)}
    norm_utts = [u for u in utterances if u.speaker in by_speaker]
    jobs = []
    for m, member_fold in enumerate(folds):
        log.info("fold %d, member %d of %d: seed %d, validating on %s", fold, m + 1, members,
                 cfg.seed + m, ", ".join(member_fold.val_speakers) or "nobody")
        jobs.append(dict(
            train_utts=[u for u in utterances if u.speaker in set(member_fold.train_speakers)],
            val_utts=[u for u in utterances if u.speaker in set(member_fold.val_speakers)],
            features=features, labels=labels, model_cfg=single,
            cfg=dataclasses.replace(cfg, seed=cfg.seed + m), frame_rate=frame_rate,
            test_speakers=member_fold.test_speakers, fold=fold, epochs=epochs,
            norm_utts=norm_utts, progress=_relay(progress, m + 1, members), cancel=cancel,
            device=device, variants=variants, spans=spans))
    return jobs


def combine_members(trained: Sequence[TrainedModel], folds: Sequence[Fold],
                    fold: int = 1) -> TrainedModel:
    """The members trained on ``folds`` (in order) as one TrainedModel whose network is an
    Ensemble. history: member 1's epochs; best_epoch: the median of the members' best epochs
    (rounded up)."""
    configs = {t.model_cfg for t in trained}
    if len(configs) != 1:
        raise RuntimeError(f"fold {fold}: members ended with different configs {configs}")
    best = int(np.ceil(np.median([t.best_epoch for t in trained])))
    network = Ensemble([t.network for t in trained]).eval()
    speakers = sorted({s for t in trained for s in t.speakers})
    return TrainedModel(network, dataclasses.replace(trained[0].model_cfg, ensemble=len(trained)),
                        trained[0].mean, trained[0].std, speakers, trained[0].history, best,
                        member_best_epochs=[t.best_epoch for t in trained],
                        member_val_speakers=[list(f.val_speakers) for f in folds])


def train_members(utterances: Sequence[Utterance], folds: Sequence[Fold], features: Mapping,
                  labels: Sequence[str], model_cfg: ModelConfig, cfg: TrainConfig, *,
                  frame_rate: float, fold: int = 1, epochs: int | None = None,
                  progress: Progress | None = None, cancel=None, device=None,
                  variants: Mapping | None = None, spans=None) -> TrainedModel:
    """Train one member per entry of ``folds`` (their train/validation speakers; for the final
    model pass folds with every speaker in training and none in validation) and return them as
    one TrainedModel whose network is an Ensemble (``combine_members``).

    variants: channel-augmented features shared by every member, spans: speech spans for
    per-speaker standardisation (both as train_fold takes them). Raises
    TrainingCancelled as train_fold does.
    """
    jobs = member_jobs(utterances, folds, features, labels, model_cfg, cfg,
                       frame_rate=frame_rate, fold=fold, epochs=epochs, progress=progress,
                       cancel=cancel, device=device, variants=variants, spans=spans)
    return combine_members([train_fold(**job) for job in jobs], folds, fold)
