"""Training of one network on one fold's speakers (no Qt, no files written).

Recipe: AdamW; loss = CE(emotion; class-weighted by the training side's inverse class
frequency when ``class_weighted``, label smoothing from the config; a training side from
several corpora is balanced per (corpus, class) by loss weights or a sampler, ``balance``) + adversarial_weight *
CE(speaker) (enhanced network with its speaker head; speakers are the fold's training speakers)
+ l2_reg * sum of squared weight matrices (parameters with 2+ dims; biases and norms excluded);
a network with fused branches (model.networks.stats_branch) averages its branches' CE terms;
alpha and learning rate from ``model.training.schedules`` stepped per epoch; gradient clipping and
accumulation; early stopping on validation UA (ties broken by the lower validation loss) with
the best epoch's weights restored.

Progress goes to ``progress(event)`` as "epoch" events (model.training.progress);
``cancel.is_set()`` is checked before every batch and raises TrainingCancelled.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from ser_studio.model.config.checks import fill_derived
from ser_studio.model.config.schema import ModelConfig, TrainConfig
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.evaluation.metrics import compute_metrics
from ser_studio.model.networks.registry import build_network
from ser_studio.model.training.data import (FeatureDataset, balance_weights, eval_loader,
                                            frames_for, norm_stats, train_loader)
from ser_studio.model.training.folds import check_speakers
from ser_studio.model.training.progress import ProgressEvent
from ser_studio.model.training.schedules import alpha_at, lr_at

log = logging.getLogger(__name__)

Progress = Callable[[ProgressEvent], None]


class TrainingCancelled(Exception):
    """The cancel flag was set; the fold being trained is discarded."""


@dataclass
class TrainedModel:
    """A trained network (eval mode, best epoch's weights) and what inference needs with it.

    mean/std: (D,) standardisation of the inputs; speakers: the training speakers (index order
    of the speaker head); history: one row per epoch (keys of plots.plot_training_curves;
    val_* None when there was no validation); best_epoch: 1-based; member_best_epochs: each
    member's best epoch and validation speakers when the network is an ensemble
    (model.training.members), else empty.
    """

    network: nn.Module
    model_cfg: ModelConfig
    mean: torch.Tensor
    std: torch.Tensor
    speakers: list[str]
    history: list[dict]
    best_epoch: int
    member_best_epochs: list[int] = dataclasses.field(default_factory=list)
    member_val_speakers: list[list[str]] = dataclasses.field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_devices() -> list[str]:
    """The torch devices this machine can train on: cpu, each cuda:K, mps where present."""
    found = ["cpu"] + [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    return found + (["mps"] if mps is not None and mps.is_available() else [])


def check_device(name: str | None, option: str = "device") -> torch.device:
    """The torch device ``name`` names (None: default_device()), checked before any work:
    ValueError naming ``option``, the value and the devices available when ``name`` is not a
    torch device string or that device is not on this machine (torch would say so only when
    the first tensor moves, after the features have loaded)."""
    if name is None:
        return default_device()
    available = ", ".join(available_devices())
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{option} {name}: not a torch device ({exc}); available here: "
                         f"{available}") from None
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError, ValueError) as exc:  # not compiled in, no such index
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = reason if len(reason) <= 120 else reason[:119] + "…"
        raise ValueError(f"{option} {name}: not available on this machine ({reason}); "
                         f"available here: {available}") from None
    return device


def class_weights(utterances: Sequence[Utterance], labels: Sequence[str]) -> torch.Tensor:
    """(C,) inverse class frequency, n / (C * n_c); 0 for a class with no utterance."""
    counts = torch.tensor([sum(u.label == name for u in utterances) for name in labels],
                          dtype=torch.float32)
    weights = len(utterances) / (len(labels) * counts.clamp_min(1.0))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


def balance_plan(train_utts: Sequence[Utterance], labels: Sequence[str], cfg: TrainConfig
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(class weights (C,), per-item loss weights (N,), per-item draw weights (N,)), each or
    None, for cfg.balance on this training side. One corpus, or balance "none": today's
    pooled class weights (class_weighted) and nothing else. Several: ``balance_weights`` over
    (corpus, class) cells (corpora alone without class_weighted) as loss weights ("weights")
    or as the sampler's draw weights ("sampler")."""
    if cfg.balance == "none" or len({u.corpus for u in train_utts}) < 2:
        return (class_weights(train_utts, labels) if cfg.class_weighted else None), None, None
    cells = balance_weights(train_utts, by_class=cfg.class_weighted)
    return (None, cells, None) if cfg.balance == "weights" else (None, None, cells)


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled("training cancelled")


def _output_loss(out, batch, weights: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    """Emotion CE + adversarial speaker CE of one network's output; an output with ``members``
    (branches fused by averaging probabilities) has the mean of its members' losses, so each
    branch learns as a classifier on its own."""
    if out.members:
        return torch.stack([_output_loss(m, batch, weights, cfg) for m in out.members]).mean()
    if batch.weights is not None:  # per-item weights (corpus x class balance): weighted mean
        each = F.cross_entropy(out.logits, batch.labels, reduction="none",
                               label_smoothing=cfg.label_smoothing)
        loss = (each * batch.weights).sum() / batch.weights.sum().clamp_min(1e-12)
    else:
        loss = F.cross_entropy(out.logits, batch.labels, weight=weights,
                               label_smoothing=cfg.label_smoothing)
    if out.speaker_logits is not None and cfg.adversarial_weight > 0:
        known = batch.speakers >= 0
        if known.any():
            loss = loss + cfg.adversarial_weight * F.cross_entropy(
                out.speaker_logits[known], batch.speakers[known])
    return loss


def training_loss(out, batch, weights: torch.Tensor | None, cfg: TrainConfig,
                  network: nn.Module) -> torch.Tensor:
    """Scalar loss of one batch: emotion CE (class ``weights`` (C,) or None, label smoothing)
    + adversarial_weight * speaker CE over items with a known speaker (index >= 0) when the
    network has a speaker head + l2_reg * squared weight matrices. For fused branches the CE
    terms are averaged over the branches."""
    loss = _output_loss(out, batch, weights, cfg)
    if cfg.l2_reg > 0:
        loss = loss + cfg.l2_reg * sum(p.pow(2).sum() for p in network.parameters()
                                       if p.requires_grad and p.dim() > 1)
    return loss


def _train_epoch(network, loader, optimizer, weights, cfg: TrainConfig, alpha: float,
                 device, cancel) -> dict:
    """One pass over the training batches; returns train_loss, train_acc, train_f1."""
    network.train()
    optimizer.zero_grad(set_to_none=True)
    total, n_seen, y_true, y_pred = 0.0, 0, [], []
    n_batches = len(loader)
    for i, batch in enumerate(loader):
        _check_cancel(cancel)
        batch = batch.to(device)
        out = network(batch.x, batch.lengths, alpha=alpha)
        loss = training_loss(out, batch, weights, cfg, network)
        (loss / cfg.accumulation_steps).backward()
        if (i + 1) % cfg.accumulation_steps == 0 or i + 1 == n_batches:
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        total += float(loss.detach()) * len(batch.labels)
        n_seen += len(batch.labels)
        y_true += batch.labels.tolist()
        y_pred += out.logits.argmax(-1).tolist()
    return {"train_loss": total / n_seen,
            "train_acc": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
            "train_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0))}


@torch.no_grad()
def predict_dataset(network: nn.Module, dataset: FeatureDataset, batch_size: int,
                    device=None, cancel=None) -> tuple[np.ndarray, float]:
    """Class probabilities (N, C) in dataset order and the mean unweighted CE loss."""
    device = device or next(network.parameters()).device
    was_training = network.training
    network.eval()
    loader, order = eval_loader(dataset, batch_size)
    probs, loss_sum = [], 0.0
    for batch in loader:
        _check_cancel(cancel)
        batch = batch.to(device)
        logits = network(batch.x, batch.lengths).logits
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        probs.append(torch.softmax(logits, -1).cpu())
    network.train(was_training)
    out = np.empty((len(dataset), len(dataset.label_index)), dtype=np.float32)
    out[order] = torch.cat(probs).numpy()
    return out, loss_sum / max(1, len(dataset))


def _validate(network, dataset, labels, cfg, device, cancel) -> dict:
    probs, loss = predict_dataset(network, dataset, cfg.batch_size, device, cancel)
    y_true = [u.label for u in dataset.utterances]
    y_pred = [labels[i] for i in probs.argmax(1)]
    m = compute_metrics(y_true, y_pred, labels)
    return {"val_loss": loss, "val_acc": m["wa"], "val_f1": m["macro_f1"], "val_ua": m["ua"]}


def _setup(train_utts, labels, model_cfg, cfg, device):
    """Model config with n_classes and n_speakers set, training speakers and the freshly built
    network on ``device``."""
    speakers = sorted({u.speaker for u in train_utts})
    adversary = (model_cfg.arch == "enhanced" and model_cfg.use_speaker_adversary
                 and cfg.adversarial_weight > 0)
    model_cfg = fill_derived(model_cfg, n_classes=len(labels),
                             n_speakers=len(speakers) if adversary else 0)
    network = build_network(model_cfg).to(device)
    return model_cfg, speakers, network


def _standardisation(cfg, utts, norm_utts, features, spans, frame_rate):
    """(mean, std) (D,) of ``norm_utts`` and, for cfg.speaker_norm "speaker" or "corpus",
    speaker -> (mean, std) of every speaker (or their corpus) of ``utts``
    (model.training.speaker_norms; the global statistics are then those of the speech frames),
    else None."""
    if cfg.speaker_norm == "global":
        return (*norm_stats([features[u.path] for u in norm_utts]), None)
    from ser_studio.model.training.speaker_norms import group_norms, speech_norm

    if spans is None:
        raise ValueError(f"speaker_norm {cfg.speaker_norm!r} needs the utterances' speech "
                         "spans (train_fold(spans=SpanCache(...)))")
    mean, std = speech_norm(norm_utts, features, spans, frame_rate)
    return mean, std, group_norms(cfg.speaker_norm, utts, features, spans, frame_rate, mean,
                                  std)


def train_fold(train_utts: Sequence[Utterance], val_utts: Sequence[Utterance],
               features: Mapping, labels: Sequence[str], model_cfg: ModelConfig,
               cfg: TrainConfig, *, frame_rate: float, test_speakers: Sequence[str] = (),
               fold: int = 1, epochs: int | None = None,
               norm_utts: Sequence[Utterance] | None = None, progress: Progress | None = None,
               cancel=None, device=None, variants: Mapping | None = None,
               spans=None) -> TrainedModel:
    """Train a network on ``train_utts``, early-stopping on ``val_utts``.

    features: path -> (T, D) or (L, T, D) float tensor (a FeatureStore); labels: class names
    (output order); frame_rate: feature frames per second (for the crops of cfg.max_seconds
    and cfg.eval_max_seconds); test_speakers: only checked against the other two sets
    (SpeakerLeakError on overlap). With no validation utterances, trains exactly ``epochs``
    epochs (default cfg.epochs) and keeps the last; the schedules always span cfg.epochs.
    norm_utts: the utterances whose features give the standardisation (default
    ``train_utts``). variants: path -> channel-augmented features (model.training.variants) that
    training items use with probability cfg.channel.prob. spans: a
    model.training.speaker_norms.SpanCache, needed unless cfg.speaker_norm is "global": each
    training and validation speaker is then standardised by their own (or their corpus's)
    speech statistics, and the returned mean/std are those of the training side's speech frames
    (what an uncalibrated user gets). Raises
    TrainingCancelled when ``cancel.is_set()`` before a batch. An ensemble config
    (ModelConfig.ensemble > 1) is refused: model.training.members.train_members trains its members
    one by one.
    """
    if model_cfg.ensemble > 1:
        raise ValueError("train_fold trains one network; train an ensemble's members with "
                         "ser_studio.model.training.members.train_members")
    labels = list(labels)
    check_speakers({u.speaker for u in train_utts}, {u.speaker for u in val_utts},
                   test_speakers)
    device = torch.device(device) if device is not None else default_device()
    seed_everything(cfg.seed * 1000 + fold)
    model_cfg, speakers, network = _setup(train_utts, labels, model_cfg, cfg, device)
    mean, std, norms = _standardisation(cfg, list(train_utts) + list(val_utts),
                                        norm_utts or train_utts, features, spans, frame_rate)
    weights, item_weights, draw = balance_plan(train_utts, labels, cfg)
    train_set = FeatureDataset(features, train_utts, labels, mean, std,
                               max_frames=frames_for(cfg.max_seconds, frame_rate), train=True,
                               augment_cfg=cfg.augment, speakers=speakers, seed=cfg.seed + fold,
                               variants=variants, variant_prob=cfg.channel.prob, norms=norms,
                               item_weights=item_weights)
    val_set = FeatureDataset(features, val_utts, labels, mean, std,
                             max_frames=frames_for(cfg.eval_max_seconds, frame_rate), train=False,
                             norms=norms)
    loader = train_loader(train_set, cfg.batch_size, seed=cfg.seed + fold, draw_weights=draw)
    weights = weights.to(device) if weights is not None else None
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history, best = _fit(network, loader, val_set, optimizer, weights, labels, cfg,
                         epochs or cfg.epochs, fold, progress, cancel, device)
    network.load_state_dict(best[1])
    network.eval()
    return TrainedModel(network, model_cfg, mean, std, speakers, history, best[0])


def _score(row: dict, epoch: int) -> tuple[float, float]:
    """Model-selection score, compared lexicographically: validation UA, then lower validation
    loss (UA of a few validation utterances ties often). Without validation: the latest."""
    if row["val_ua"] is None:
        return (float(epoch), 0.0)
    return (row["val_ua"], -row["val_loss"])


def _fit(network, loader, val_set, optimizer, weights, labels, cfg: TrainConfig, epochs: int,
         fold: int, progress, cancel, device) -> tuple[list[dict], tuple[int, dict]]:
    """The epoch loop; returns the history and (best epoch, its state dict).

    Stops after ``cfg.patience`` epochs in a row without a higher validation UA (loss-only
    gains choose among tied epochs but do not extend training). Epochs before
    ``cfg.min_epochs`` are neither candidates for the best epoch nor counted for patience: a
    few validation speakers make early scores noisy, and an epoch-1 "best" is luck.
    """
    history: list[dict] = []
    best_epoch, best_score, best_state = 0, (-math.inf, -math.inf), None
    last_gain, top_ua = 0, -math.inf
    for epoch in range(epochs):
        lr, alpha = lr_at(epoch, cfg), alpha_at(epoch, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        row = {"epoch": epoch + 1, **_train_epoch(network, loader, optimizer, weights, cfg,
                                                  alpha, device, cancel)}
        if len(val_set):
            row.update(_validate(network, val_set, labels, cfg, device, cancel))
        else:
            row.update(val_loss=None, val_acc=None, val_f1=None, val_ua=None)
        row.update(lr=lr, alpha=alpha)
        history.append(row)
        log.debug("fold %d epoch %d: %s", fold, epoch + 1, row)
        if progress is not None:
            progress(ProgressEvent("epoch", fold=fold, epochs=epochs, **row))
        settling = epoch + 1 < cfg.min_epochs  # too early to judge: never best, no patience
        score = (-math.inf, float(epoch)) if settling else _score(row, epoch)
        if score > best_score:
            best_epoch, best_score = epoch + 1, score
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in
                                        network.state_dict().items()})
        if row["val_ua"] is None or settling:
            last_gain = epoch + 1
            continue
        if row["val_ua"] > top_ua:
            last_gain, top_ua = epoch + 1, row["val_ua"]
        elif epoch + 1 - last_gain >= cfg.patience:
            log.info("fold %d: early stop at epoch %d, best epoch %d (val UA %.3f)",
                     fold, epoch + 1, best_epoch, best_score[0])
            break
    return history, (best_epoch, best_state)
