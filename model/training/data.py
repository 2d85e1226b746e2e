"""Training and evaluation data: cached features held in memory, crops, standardisation,
augmentation and padded batches.

Features are read from the FeatureCache once per file per run (``FeatureStore``); epochs only
slice tensors that are already in memory, so the encoder never runs inside the training loop.

Standardisation (``norm_stats``): mean and std per feature dimension over every frame of the
training side's utterances (whole utterances, before cropping). For layer stacks (L, T, D) the
statistics are pooled over layers as well as frames, giving vectors of length D as the
checkpoint stores them; the network's learnable layer mix then sees comparably scaled layers.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from tqdm import tqdm

from ser_studio.model.audio.io import AudioError
from ser_studio.model.augmentation.spec import augment, random_level
from ser_studio.model.config.schema import AugmentConfig
from ser_studio.model.corpora.record import Utterance
from ser_studio.model.features.cache import FillError

log = logging.getLogger(__name__)

MIN_STD = 1e-5  # a constant dimension is left unscaled instead of divided by zero


class FeatureStore(Mapping):
    """Path -> features (T, D) or (L, T, D) float32, each read from ``cache`` exactly once.

    ``cache`` is anything with ``get(path) -> Tensor`` (a FeatureCache: computed on a miss,
    read from disk on a hit). Files that fail do not stop the others; afterwards one
    FillError lists every bad file. ``on_file(files_done, files_total)`` is called before the
    first file (0) and after each one (progress events; an exception it raises, such as a
    cancel, stops the loop).
    """

    def __init__(self, cache, paths: Sequence[Path], progress: bool = False,
                 on_file: Callable[[int, int], None] | None = None) -> None:
        unique = list(dict.fromkeys(Path(p) for p in paths))
        self._features: dict[Path, torch.Tensor] = {}
        failures: list[AudioError] = []
        report = on_file or (lambda done, total: None)
        report(0, len(unique))
        for done, path in enumerate(tqdm(unique, desc="features", unit="file",
                                         disable=not progress), 1):
            try:
                self._features[path] = cache.get(path).float()
            except AudioError as exc:
                failures.append(exc)
            report(done, len(unique))
        if failures:
            raise FillError(failures, len(unique))
        frames = sum(f.shape[-2] for f in self._features.values())
        log.info("holding features of %d files (%d frames) in memory", len(unique), frames)

    def __getitem__(self, path) -> torch.Tensor:
        return self._features[Path(path)]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)


def frames_for(seconds: float, frame_rate: float) -> int:
    """Number of feature frames in ``seconds`` at ``frame_rate`` frames per second (>= 1)."""
    return max(1, int(round(seconds * frame_rate)))


def norm_stats(features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (each (D,), float32) over all frames (and layers) of ``features``."""
    if not features:
        raise ValueError("no features to compute normalisation statistics from")
    dim = features[0].shape[-1]
    total = torch.zeros(dim, dtype=torch.float64)
    square = torch.zeros(dim, dtype=torch.float64)
    count = 0
    for feats in features:
        flat = feats.reshape(-1, dim).double()
        total += flat.sum(0)
        square += (flat * flat).sum(0)
        count += flat.shape[0]
    mean = total / count
    var = (square / count - mean * mean).clamp_min(0.0)
    return mean.float(), var.sqrt().clamp_min(MIN_STD).float()


def balance_weights(utterances: Sequence[Utterance], by_class: bool = True) -> torch.Tensor:
    """(N,) float32 weight per utterance so that every cell carries the same total weight:
    cells are (corpus, label) pairs (``by_class``) or corpora alone. w_i = N / (M * n_cell(i))
    for M non-empty cells, so the weights sum to N (their mean is 1) and each cell's sum is
    N / M: a corpus of 300 clips weighs as much per epoch as one of 3000."""
    if not utterances:
        raise ValueError("no utterances to balance")
    cells = [(u.corpus, u.label if by_class else "") for u in utterances]
    sizes: dict[tuple[str, str], int] = {}
    for cell in cells:
        sizes[cell] = sizes.get(cell, 0) + 1
    n, m = len(cells), len(sizes)
    return torch.tensor([n / (m * sizes[c]) for c in cells], dtype=torch.float32)


def centre_crop(feats: torch.Tensor, n_frames: int) -> torch.Tensor:
    """The middle ``n_frames`` frames (time axis -2); shorter inputs are returned whole."""
    extra = feats.shape[-2] - n_frames
    if extra <= 0:
        return feats
    start = extra // 2
    return feats[..., start:start + n_frames, :]


def random_crop(feats: torch.Tensor, n_frames: int, gen: torch.Generator) -> torch.Tensor:
    """``n_frames`` consecutive frames starting at a random frame; shorter inputs whole."""
    extra = feats.shape[-2] - n_frames
    if extra <= 0:
        return feats
    start = int(torch.randint(0, extra + 1, (), generator=gen))
    return feats[..., start:start + n_frames, :]


def eval_item(feats: torch.Tensor, mean: torch.Tensor | None, std: torch.Tensor | None,
              max_frames: int | None) -> torch.Tensor:
    """The test-time input of one utterance, for the trainer's test folds and for every use of
    a trained model (model.inference.predictor): the middle ``max_frames`` frames (None: all), then
    standardised with ``mean``/``std`` (D,) (None: as they are). (T, D) or (L, T, D)."""
    feats = feats.float()
    if max_frames is not None:
        feats = centre_crop(feats, max_frames)
    return feats if mean is None else (feats - mean) / std


def pad_batch(items: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Items (T_i, D) or (L, T_i, D) zero-padded along time to (B, [L,] T_max, D), and their
    lengths (B,) long."""
    lengths = torch.tensor([f.shape[-2] for f in items], dtype=torch.long)
    first = items[0]
    x = first.new_zeros((len(items), *first.shape[:-2], int(lengths.max()), first.shape[-1]))
    for i, feats in enumerate(items):
        x[i, ..., :feats.shape[-2], :] = feats
    return x, lengths


def length_batches(n_frames: Sequence[int], batch_size: int) -> list[list[int]]:
    """Item indices in batches of similar length (sorted by frames, stable): less padding."""
    order = sorted(range(len(n_frames)), key=lambda i: n_frames[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


class FeatureDataset(Dataset):
    """Utterances as (features, label index, speaker index[, loss weight]) items.

    Training mode: with probability ``variant_prob`` one of the utterance's channel variants
    (``variants``: path -> list of features, model.training.variants) replaces its clean
    features, then random crop of ``max_frames``, standardise, then augment (when ``augment`` is
    given). Evaluation mode: centre crop of ``max_frames``, standardise. Speakers missing from
    ``speaker_index`` get index -1 (ignored by the adversarial loss). norms: speaker ->
    (mean, std) (D,) that standardise that speaker's items instead of ``mean``/``std``
    (per-speaker standardisation, model.training.speaker_norms). item_weights: (N,) loss weight
    per utterance (``balance_weights``); training items then carry it as a fourth element.
    """

    def __init__(self, features: Mapping, utterances: Sequence[Utterance],
                 labels: Sequence[str], mean: torch.Tensor, std: torch.Tensor, *,
                 max_frames: int, train: bool, augment_cfg: AugmentConfig | None = None,
                 speakers: Sequence[str] = (), seed: int = 0,
                 variants: Mapping | None = None, variant_prob: float = 0.0,
                 norms: Mapping | None = None,
                 item_weights: torch.Tensor | None = None) -> None:
        self.features = features
        self.item_weights = item_weights
        self.norms = norms or {}
        self.variants, self.variant_prob = (variants or {}), variant_prob
        self.utterances = list(utterances)
        self.label_index = {name: i for i, name in enumerate(labels)}
        self.speaker_index = {name: i for i, name in enumerate(speakers)}
        self.mean, self.std = mean, std
        self.max_frames, self.train, self.augment_cfg = max_frames, train, augment_cfg
        self.generator = torch.Generator().manual_seed(seed)
        # frames per item, for length-sorted evaluation batches (looked up once, not per pass)
        self._frames = None if train else [min(features[u.path].shape[-2], max_frames)
                                           for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def n_frames(self, index: int) -> int:
        """Frames item ``index`` has before augmentation (for length-sorted evaluation)."""
        if self._frames is not None:
            return self._frames[index]
        return min(self.features[self.utterances[index].path].shape[-2], self.max_frames)

    def __getitem__(self, index: int) -> tuple:
        utt = self.utterances[index]
        feats = self.features[utt.path]
        mean, std = self.norms.get(utt.speaker, (self.mean, self.std))
        label, speaker = self.label_index[utt.label], self.speaker_index.get(utt.speaker, -1)
        if not self.train:
            return eval_item(feats, mean, std, self.max_frames), label, speaker
        feats = self._variant_or(feats, utt.path)
        feats = random_crop(feats, self.max_frames, self.generator)
        if self.augment_cfg is not None:
            feats = random_level(feats, self.augment_cfg, self.generator)
        feats = (feats - mean) / std
        if self.augment_cfg is not None:
            feats = augment(feats, self.augment_cfg, self.generator)
        if self.item_weights is not None:
            return feats, label, speaker, float(self.item_weights[index])
        return feats, label, speaker

    def _variant_or(self, clean: torch.Tensor, path) -> torch.Tensor:
        """One of ``path``'s channel variants with probability variant_prob, else ``clean``."""
        options = self.variants.get(path)
        if not options or self.variant_prob <= 0:
            return clean
        if float(torch.rand((), generator=self.generator)) >= self.variant_prob:
            return clean
        return options[int(torch.randint(len(options), (), generator=self.generator))]


@dataclass
class Batch:
    """x: (B, T, D) or (B, L, T, D) zero-padded; lengths, labels, speakers: (B,) long;
    weights: (B,) float loss weight per item, or None (items without one)."""

    x: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    speakers: torch.Tensor
    weights: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.x.to(device), self.lengths.to(device), self.labels.to(device),
                     self.speakers.to(device),
                     None if self.weights is None else self.weights.to(device))


def collate(items: Sequence[tuple]) -> Batch:
    """Pad items along time (axis -2) to the longest one; lengths are the valid frames. Items
    are (features, label, speaker[, loss weight])."""
    x, lengths = pad_batch([item[0] for item in items])
    labels = torch.tensor([item[1] for item in items], dtype=torch.long)
    speakers = torch.tensor([item[2] for item in items], dtype=torch.long)
    weights = (torch.tensor([item[3] for item in items], dtype=torch.float32)
               if len(items[0]) > 3 else None)
    return Batch(x, lengths, labels, speakers, weights)


def train_loader(dataset: FeatureDataset, batch_size: int, seed: int,
                 draw_weights: torch.Tensor | None = None) -> DataLoader:
    """Shuffled batches in an order fixed by ``seed`` (single process, reproducible). With
    ``draw_weights`` (N,) an epoch is len(dataset) items drawn with replacement, item i with
    probability proportional to draw_weights[i] (``balance_weights``: every cell drawn
    equally often)."""
    generator = torch.Generator().manual_seed(seed)
    if draw_weights is None:
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                          generator=generator)
    sampler = WeightedRandomSampler(draw_weights.double(), num_samples=len(dataset),
                                    replacement=True, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)


def eval_loader(dataset: FeatureDataset, batch_size: int) -> tuple[DataLoader, list[int]]:
    """Batches of similar length (length_batches, as model.inference.predictor batches) and the item
    order they follow."""
    batches = length_batches([dataset.n_frames(i) for i in range(len(dataset))], batch_size)
    order = [i for batch in batches for i in batch]
    return DataLoader(dataset, batch_sampler=batches, collate_fn=collate), order
