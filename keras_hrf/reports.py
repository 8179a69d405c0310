"""Run folders and readable reports: Markdown tables, confusion matrices and training curves.

A run folder (written by :func:`save_run`) holds::

    model.keras          train-time model (HRF layers, if any)
    model_merged.keras   the deployable model (deHRF)
    history.csv          per-epoch loss / val_loss / val_ua / lr
    metrics.json         val / test / merged-test metrics, parameters, MACs, merge check
    confusion.png        test confusion matrix
    curves.png           training curves
    config.json          TrainConfig + labels + feature parameters + normaliser
    representative.npy   normalised training examples for int8 calibration
    device/              int8 artefacts from keras_hrf.tflite.export (unless export=False)
    REPORT.md            the numbers in tables
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data) -> None:
    """JSON version of :func:`atomic_write_text` (indented, keys in insertion order)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured Markdown table."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal (``-`` for None)."""
    return "-" if x is None else f"{100 * x:.1f}"


def plot_confusion(confusion, labels: Sequence[str], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix (true rows, predicted columns) with counts, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.6 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                int(cm[i, j]),
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    fig.colorbar(im, ax=ax, fraction=0.046, label="recall")
    ax.set_title(title)
    fig.tight_layout()
    _save_fig(fig, path)


def plot_curves(history, path: str | Path, title: str = "") -> None:
    """Training/validation loss and validation UA per epoch, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(history["epoch"], history["loss"], label="train loss")
    if "val_loss" in history:
        a.plot(history["epoch"], history["val_loss"], label="val loss")
    a.set_xlabel("epoch")
    a.legend()
    b.plot(history["epoch"], 100 * history["val_ua"], color="C2")
    b.set_xlabel("epoch")
    b.set_ylabel("validation UA (%)")
    fig.suptitle(title)
    fig.tight_layout()
    _save_fig(fig, path)


def _save_fig(fig, path):
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
