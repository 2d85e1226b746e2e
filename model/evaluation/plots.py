"""PNG figures of a training run: training curves, per-speaker bars, confusion matrix.

matplotlib's non-interactive Agg backend is used through explicit Figure objects (never pyplot
state), so plotting works in worker threads and on machines without a display, and never touches
Qt. Every function writes one PNG and returns its path.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110

# (title, [(history key, legend)], y label) of the seed's 2x3 grid, in its order.
_CURVE_PANELS = (
    ("Loss", [("train_loss", "train"), ("val_loss", "validation")], "cross-entropy"),
    ("Accuracy", [("train_acc", "train"), ("val_acc", "validation"), ("val_ua", "validation UA")],
     "accuracy"),
    ("Macro-F1", [("train_f1", "train"), ("val_f1", "validation")], "F1"),
    ("Learning rate", [("lr", "lr")], "learning rate"),
    ("Adversarial alpha", [("alpha", "alpha")], "alpha"),
    ("Validation loss", [("val_loss", "validation")], "cross-entropy"),
)
# The same series keeps its colour in every panel.
_COLOURS = {"train_loss": "tab:blue", "train_acc": "tab:blue", "train_f1": "tab:blue",
            "val_loss": "tab:orange", "val_acc": "tab:orange", "val_f1": "tab:orange",
            "val_ua": "tab:green"}


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _series(history: Sequence[dict], key: str) -> np.ndarray:
    """Values of ``key`` per epoch, NaN where a row lacks it (gaps in the line)."""
    values = []
    for row in history:
        value = row.get(key)
        values.append(float(value) if isinstance(value, (int, float)) else math.nan)
    return np.asarray(values, dtype=float)


def plot_training_curves(history: Sequence[dict], path: str | Path, *,
                         best_epoch: int | None = None, title: str | None = None) -> Path:
    """The seed's 2x3 grid: loss, accuracy, F1, learning rate, alpha, validation loss per epoch.

    history: one dict per epoch with "epoch", "train_loss", "train_acc", "train_f1", "val_loss",
    "val_acc", "val_f1", "val_ua", "lr", "alpha" (missing keys leave gaps).
    best_epoch: drawn as a dashed vertical line when given (the restored epoch).
    """
    fig = Figure(figsize=(15, 8.5), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    epochs = np.asarray([row.get("epoch", i + 1) for i, row in enumerate(history)], dtype=float)
    for ax, (name, keys, ylabel) in zip(axes, _CURVE_PANELS):
        drawn = False
        for key, legend in keys:
            values = _series(history, key)
            if values.size and not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o" if len(values) < 30 else None,
                        markersize=3, label=legend, color=_COLOURS.get(key, "tab:purple"))
                drawn = True
        if best_epoch is not None and drawn:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="best epoch")
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        elif len(keys) > 1 or best_epoch is not None:
            ax.legend(fontsize=8)
        if keys[0][0] == "lr" and drawn:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Training curves")
    return _save(fig, path)


def plot_per_speaker(per_speaker: dict[str, dict], path: str | Path, *,
                     title: str | None = None) -> Path:
    """Grouped bars of accuracy and F1 per speaker (speakers sorted by name).

    per_speaker: {speaker: {"accuracy", "f1", "n", ...}} as in compute_metrics/aggregate_folds.
    Dashed lines show the mean over speakers.
    """
    names = sorted(per_speaker)
    acc = np.asarray([per_speaker[n]["accuracy"] for n in names], dtype=float)
    f1 = np.asarray([per_speaker[n]["f1"] for n in names], dtype=float)
    fig = Figure(figsize=(max(7.0, 0.7 * len(names) + 2.0), 4.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    width = 0.38
    ax.bar(x - width / 2, acc, width, label="accuracy", color="tab:blue")
    ax.bar(x + width / 2, f1, width, label="macro-F1", color="tab:orange")
    if names:
        ax.axhline(acc.mean(), color="tab:blue", linestyle="--", linewidth=1,
                   label=f"mean accuracy {acc.mean():.2f}")
        ax.axhline(f1.mean(), color="tab:orange", linestyle="--", linewidth=1,
                   label=f"mean F1 {f1.mean():.2f}")
    else:
        ax.text(0.5, 0.5, "no speakers", ha="center", va="center", transform=ax.transAxes)
    sep = "\n" if len(names) <= 10 else " "
    ticks = [f"{n}{sep}(n={per_speaker[n]['n']})" if "n" in per_speaker[n] else n for n in names]
    ax.set_xticks(x, ticks, rotation=45 if len(names) > 10 else 0,
                  ha="right" if len(names) > 10 else "center", fontsize=8)
    ax.set_ylim(0, 1.2)                       # headroom for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score")
    ax.set_title(title or "Per-speaker accuracy and macro-F1 (speakers unseen in training)",
                 fontsize=11)
    ax.legend(fontsize=8, loc="upper center", ncol=4, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str],
                   path: str | Path, *, title: str | None = None) -> Path:
    """Confusion matrix (rows = true, columns = predicted, in ``labels`` order).

    Colours are row-normalised (recall per true class); each cell shows its count and the row
    percentage. A row without utterances is drawn empty.
    """
    cm = np.asarray(confusion, dtype=float)
    k = len(labels)
    if cm.shape != (k, k):
        raise ValueError(f"confusion has shape {cm.shape}, expected ({k}, {k}) for labels "
                         f"{list(labels)}")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = max(4.5, 1.0 * k + 2.5)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    for i in range(k):
        for j in range(k):
            colour = "white" if norm[i, j] > 0.55 else "black"
            text = f"{int(cm[i, j])}\n{100 * norm[i, j]:.0f}%" if rows[i, 0] else "0"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(range(k), list(labels), rotation=30 if k > 4 else 0,
                  ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"Confusion matrix (n={int(cm.sum())})")
    return _save(fig, path)
