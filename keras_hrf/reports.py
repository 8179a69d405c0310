"""Readable outputs: atomic file writes, Markdown tables and their cell formats, PNG plots.

The one place where tables are made (:func:`markdown_table`) and where numbers become cells
(:func:`pct`, :func:`num`, :func:`count`; an absent value is :data:`MISSING` everywhere). Imports
nothing of keras_hrf: every layer of the package writes its reports with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
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


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Build a folder in a temporary sibling (yielded) that replaces ``path`` when the block
    ends without an error and is deleted when it raises, so ``path`` is never half-written (a
    run folder with ``metrics.json`` is a finished run: that is what lets a grid resume)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured Markdown table."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


#: How every table of the project shows a value that is absent (not measured, not exported).
MISSING = "-"


def _absent(v) -> bool:
    return v is None or (isinstance(v, float | np.floating) and not np.isfinite(v))


def pct(x: float | None, unit: str = "", signed: bool = False) -> str:
    """A fraction as a percentage with one decimal (``45.3``; ``unit="%"`` gives ``45.3 %``,
    ``signed`` gives ``+1.2``); :data:`MISSING` for None or a non-finite value."""
    if _absent(x):
        return MISSING
    text = f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"
    return f"{text} {unit}" if unit else text


def num(v, fmt: str = ".4g", unit: str = "") -> str:
    """A number for a table: ints with thousands separators, floats with ``fmt``, an optional
    unit after a space; :data:`MISSING` for None or a non-finite value."""
    if _absent(v):
        return MISSING
    if isinstance(v, bool):
        text = str(v)
    elif isinstance(v, int | np.integer):
        text = f"{int(v):,}"
    elif isinstance(v, float | np.floating):
        text = format(float(v), fmt)
    else:
        text = str(v)
    return f"{text}{unit}"


def count(v) -> str:
    """An integer count (bytes, parameters) with thousands separators, or :data:`MISSING`."""
    return num(v)


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
