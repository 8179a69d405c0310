"""Run folders: saving a trained run atomically, reading it back, and its ``REPORT.md``.

A run folder (written by :func:`save_run`) holds::

    model.keras          train-time model (HRF layers, if any)
    model_merged.keras   the deployable model (deHRF)
    model_deployed.keras the QAT-tuned merged model (runs with qat_epochs only)
    history.csv          per-epoch loss / val_loss / val_ua / lr
    metrics.json         RunMetrics: val / test / merged-test metrics, parameters, MACs, int8
    confusion.png        test confusion matrix
    curves.png           training curves
    config.json          TrainConfig + labels + feature parameters + normaliser + split speakers
                         + data (corpora and label selection) + environment (versions, CPU)
    representative.npy   normalised training examples for int8 calibration
    teacher_logits.npy   the teachers' logits per training example (distilled runs only)
    device/              int8 artefacts (keras_hrf.export.runs adds them)
    REPORT.md            the numbers in tables
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from data_prep.features import FeatureParams, Normalizer
from keras_hrf import reports
from keras_hrf.training.config import TrainConfig
from keras_hrf.training.results import RunMetrics, RunResult
from keras_hrf.training.splits import split_speakers

#: ``fn(tmp_folder, result) -> RunMetrics``: adds files to a run folder before it is swapped in
#: (the int8 device artefacts of :mod:`keras_hrf.export.runs`) and returns the metrics to write.
RunExtra = Callable[[Path, RunResult], RunMetrics]


@dataclasses.dataclass
class LoadedRun:
    """A run folder read back: models, labels and the feature recipe.

    ``deployed`` is the QAT-tuned model of a run trained with ``qat_epochs``, else ``None``.
    """

    path: Path
    config: TrainConfig
    labels: list[str]
    feature_params: FeatureParams
    normalizer: Normalizer
    metrics: RunMetrics
    model: keras.Model
    merged: keras.Model
    deployed: keras.Model | None = None
    split: dict | None = None
    data: dict | None = None

    @property
    def to_deploy(self) -> keras.Model:
        """The model the device gets: the QAT-tuned one if there is one, else ``merged``."""
        return self.deployed if self.deployed is not None else self.merged


def environment() -> dict[str, str]:
    """What a run's numbers depend on beyond its config: the library versions and the CPU.

    The same seed gives the same weights on one machine and software stack; another
    TensorFlow build or CPU (oneDNN picks kernels by instruction set) changes float sums in
    the last digits, and 100 epochs amplify that into a different run (measured: a RAVDESS
    ds_cnn run retrained elsewhere ended 7 UA points away from the committed one).
    """
    import tensorflow as tf

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
    }


def save_run(result: RunResult, out_dir: str | Path, *, extra: RunExtra | None = None) -> Path:
    """Write a run folder for ``result``; atomically (a temp folder renamed into place).

    Args:
        result: From :func:`keras_hrf.training.fit`.
        out_dir: The run folder; replaced if it exists (a finished run is complete or absent,
            never half-written, which is what lets ``reproduce`` resume).
        extra: Adds files to the folder before it is swapped in and returns the metrics to
            write (how :func:`keras_hrf.export.runs.save_run` adds the int8 device files).

    Returns:
        The run folder.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with reports.atomic_folder(out_dir) as tmp:
        result.model.save(tmp / "model.keras")
        result.merged.save(tmp / "model_merged.keras")
        if result.deployed is not None:
            result.deployed.save(tmp / "model_deployed.keras")
        result.history.to_csv(tmp / "history.csv", index=False)
        np.save(tmp / "representative.npy", result.representative)
        if result.teacher_logits is not None:
            np.save(tmp / "teacher_logits.npy", result.teacher_logits)
        metrics = extra(tmp, result) if extra is not None else result.metrics
        reports.atomic_write_json(tmp / "metrics.json", metrics.to_dict())
        reports.atomic_write_json(
            tmp / "config.json",
            {
                "train": result.config.to_dict(),
                "labels": result.labels,
                "feature_params": result.feature_params.to_dict(),
                "normalizer": result.normalizer.to_dict(),
                **({"split": split_speakers(result.split)} if result.split is not None else {}),
                **({"data": result.data} if result.data is not None else {}),
                "environment": environment(),
            },
        )
        title = f"{result.config.family} {result.config.variant} (seed {result.config.seed})"
        reports.plot_confusion(metrics.test.confusion, result.labels, tmp / "confusion.png", title)
        reports.plot_curves(result.history, tmp / "curves.png", title)
        reports.atomic_write_text(tmp / "REPORT.md", run_report(result.config, metrics))
    return out_dir


def update_metrics(run_dir: str | Path, metrics: RunMetrics) -> None:
    """Rewrite ``metrics.json`` and ``REPORT.md`` of a run folder (atomically, one file each)."""
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text())["train"])
    reports.atomic_write_json(run_dir / "metrics.json", metrics.to_dict())
    reports.atomic_write_text(run_dir / "REPORT.md", run_report(config, metrics))


def read_metrics(run_dir: str | Path) -> RunMetrics:
    """The :class:`RunMetrics` of a run folder, without loading its models."""
    return RunMetrics.from_dict(json.loads((Path(run_dir) / "metrics.json").read_text()))


def run_report(config: TrainConfig, metrics: RunMetrics) -> str:
    """``REPORT.md`` of one run."""
    p = reports.pct

    def row(name, m):
        return [name, p(m.wa), p(m.ua), p(m.macro_f1)]

    rows = [
        row("validation", metrics.val),
        row("test, trained", metrics.test),
        row("test, merged (deHRF)", metrics.test_merged),
    ]
    if metrics.test_deployed is not None:
        rows.append(row("test, QAT-tuned (deployed)", metrics.test_deployed))
    int8 = metrics.int8 or {}
    if "test" in int8:
        t = int8["test"]
        rows.append(["test, int8 (LiteRT)", p(t["wa"]), p(t["ua"]), p(t["macro_f1"])])
    lines = [
        f"# {config.family} {config.variant} (seed {config.seed})",
        "",
        reports.markdown_table(["split / model", "WA %", "UA %", "macro-F1 %"], rows),
        "",
        reports.markdown_table(
            ["figure", "value"],
            [
                [
                    "parameters (train / deployed / plain)",
                    f"{metrics.params_train:,} / {metrics.params_deployed:,} / "
                    f"{metrics.params_plain:,}",
                ],
                ["MACs (train / deployed)", f"{metrics.macs_train:,} / {metrics.macs_deployed:,}"],
                ["merge: max abs logit difference", f"{metrics.merge_max_abs_diff:.2e}"],
                ["best epoch / epochs run", f"{metrics.best_epoch} / {metrics.epochs_run}"],
                ["training time (s)", f"{metrics.seconds:.1f}"],
            ]
            + _int8_rows(int8),
        ),
        "",
        "Per-class test recall (%): "
        + ", ".join(f"{k} {p(v)}" for k, v in metrics.test.per_class_recall.items()),
        "",
        "![confusion](confusion.png) ![curves](curves.png)",
        "",
    ]
    return "\n".join(lines)


def _int8_rows(int8: dict) -> list[list[str]]:
    if not int8:
        return []
    rows = [
        ["int8 flatbuffer (bytes)", reports.count(int8.get("flatbuffer_bytes"))],
        ["TFLM arena, recommended (bytes)", reports.count(int8.get("arena_recommended"))],
    ]
    if "agreement_with_float" in int8:
        agreement = reports.pct(int8["agreement_with_float"], "%")
        rows.append(["int8 vs float argmax agreement (test)", agreement])
    return rows


def load_run(path: str | Path) -> LoadedRun:
    """Read a run folder back (models loaded with ``safe_mode=True``)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a run folder (no config.json); pass a folder written by "
            "'keras-hrf train' or 'keras-hrf demo'"
        )
    cfg = json.loads((path / "config.json").read_text())
    return LoadedRun(
        path=path,
        config=TrainConfig.from_dict(cfg["train"]),
        labels=list(cfg["labels"]),
        feature_params=FeatureParams.from_dict(cfg["feature_params"]),
        normalizer=Normalizer.from_dict(cfg["normalizer"]),
        metrics=read_metrics(path),
        model=keras.models.load_model(path / "model.keras", safe_mode=True),
        merged=keras.models.load_model(path / "model_merged.keras", safe_mode=True),
        deployed=(
            keras.models.load_model(path / "model_deployed.keras", safe_mode=True)
            if (path / "model_deployed.keras").is_file()
            else None
        ),
        split=cfg.get("split"),
        data=cfg.get("data"),
    )


def history_frame(path: str | Path) -> pd.DataFrame:
    """``history.csv`` of a run folder."""
    return pd.read_csv(Path(path) / "history.csv")
