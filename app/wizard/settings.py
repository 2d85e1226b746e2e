"""What the wizard's corpus and setup pages chose, and the ``main.py train`` arguments for it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs


def default_run_dir() -> Path:
    """A fresh run folder under the user data dir: .../ser-studio/runs/run-YYYYmmdd-HHMMSS."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(platformdirs.user_data_dir("ser-studio")) / "runs" / f"run-{stamp}"


@dataclass(frozen=True)
class TrainSettings:
    """One training run as the wizard describes it.

    corpus: folder or .csv manifest; label_map: "calm=neutral,exc=happy" or ""; classes: the
    labels to keep (empty: the corpus default). frontend: "logmel" | "speech_embedding" |
    "ge2e" | "hubert"; encoder: hub id
    or local folder (hubert only, "" = default); weighted_layers: learn a mix of all encoder
    layers. folds: k of grouped k-fold, 0 = leave-one-speaker-out (corpora with sessions use
    one fold per session); max_folds: run only the first K folds (0 = all); final_model:
    train the all-speaker model after cross-validation. ensemble: networks trained one by one
    whose probabilities are averaged (1 = a single network); stats_branch: fuse each network
    with a linear classifier on utterance statistics. loudness: the BS.1770 loudness
    normaliser in front of the frontend; band_norm: per-utterance CMVN of the log-mel bands
    (log-mel only); channel_variants: K channel-augmented variants per
    training file (0 = off). recipe: a config JSON (``train --config``; the shipped model's is
    assets/recipe_ravdess.json) whose frontend, model and training settings are used instead
    of the fields above; folds, max_folds and final_model still apply ("" = no recipe).
    """

    corpus: str
    out_dir: str
    label_map: str = ""
    classes: tuple[str, ...] = ()
    frontend: str = "logmel"
    encoder: str = ""
    weighted_layers: bool = False
    arch: str = "enhanced"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    hidden: int = 256
    ensemble: int = 1
    stats_branch: bool = False
    folds: int = 5
    max_folds: int = 0
    augment: bool = True
    loudness: bool = True
    band_norm: bool = True
    channel_variants: int = 4
    adversarial_weight: float = 0.1
    final_model: bool = True
    recipe: str = ""

    def frontend_spec(self) -> str:
        """The --frontend value: "logmel", "speech_embedding", "ge2e", "hubert",
        "hubert:ID_OR_DIR[@weighted]"."""
        if self.frontend != "hubert":
            return self.frontend
        spec = "hubert" + (f":{self.encoder.strip()}" if self.encoder.strip() else "")
        return spec + ("@weighted" if self.weighted_layers else "")

    def to_args(self) -> list[str]:
        """Arguments after ``main.py``: ``train --progress-json --corpus ...``."""
        if self.recipe:
            return ["train", "--progress-json", "--corpus", self.corpus, "--out",
                    self.out_dir, "--config", self.recipe, "--folds", str(self.folds),
                    *self._run_args()] + ([] if self.final_model else ["--no-final"])
        args = ["train", "--progress-json", "--corpus", self.corpus, "--out", self.out_dir,
                "--frontend", self.frontend_spec(), "--arch", self.arch,
                "--epochs", str(self.epochs), "--batch-size", str(self.batch_size),
                "--lr", repr(float(self.lr)), "--hidden", str(self.hidden),
                "--folds", str(self.folds),
                "--adversarial-weight", repr(float(self.adversarial_weight)),
                "--loudness", "bs1770" if self.loudness else "none",
                "--band-norm", "cmvn" if self.band_norm and self.frontend == "logmel" else "none",
                "--channel-variants", str(self.channel_variants)]
        args += self._run_args()
        if self.ensemble > 1:
            args += ["--ensemble", str(self.ensemble)]
        if self.stats_branch:
            args.append("--stats-branch")
        if not self.augment:
            args.append("--no-augment")
        if not self.final_model:
            args.append("--no-final")
        return args

    def _run_args(self) -> list[str]:
        """The corpus options every run gets (label map, classes) and the folds to run."""
        args = ["--map", self.label_map.strip()] if self.label_map.strip() else []
        if self.classes:
            args += ["--classes", ",".join(self.classes)]
        if self.max_folds:
            args += ["--max-folds", str(self.max_folds)]
        return args
