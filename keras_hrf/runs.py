"""Saving and loading run folders (layout in :mod:`keras_hrf.reports`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from data_prep.features import FeatureParams, Normalizer
from keras_hrf import reports
from keras_hrf.train import RunResult, TrainConfig


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
    metrics: dict
    model: keras.Model
    merged: keras.Model
    deployed: keras.Model | None = None


def save_run(result: RunResult, out_dir: str | Path, *, export: bool = True) -> Path:
    """Write a run folder for ``result``; atomically (a temp folder renamed into place).

    Args:
        result: From :func:`keras_hrf.train.fit`.
        out_dir: The run folder; replaced if it exists (a finished run is complete or absent,
            never half-written, which is what lets ``reproduce`` resume).
        export: Also write the int8 device artefacts (``device/``) and add their figures to
            ``metrics.json["int8"]``.

    Returns:
        The run folder.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        result.model.save(tmp / "model.keras")
        result.merged.save(tmp / "model_merged.keras")
        if result.deployed is not None:
            result.deployed.save(tmp / "model_deployed.keras")
        result.history.to_csv(tmp / "history.csv", index=False)
        np.save(tmp / "representative.npy", result.representative)
        metrics = dict(result.metrics)
        if export:
            metrics["int8"] = _export_device(result, tmp / "device")
        reports.atomic_write_json(tmp / "metrics.json", metrics)
        reports.atomic_write_json(
            tmp / "config.json",
            {
                "train": result.config.to_dict(),
                "labels": result.labels,
                "feature_params": result.feature_params.to_dict(),
                "normalizer": result.normalizer.to_dict(),
                **({"split": split_speakers(result.split)} if result.split is not None else {}),
            },
        )
        title = f"{result.config.family} {result.config.variant} (seed {result.config.seed})"
        reports.plot_confusion(
            metrics["test"]["confusion"], result.labels, tmp / "confusion.png", title
        )
        reports.plot_curves(result.history, tmp / "curves.png", title)
        reports.atomic_write_text(tmp / "REPORT.md", run_report(result.config, metrics, result))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def split_speakers(split) -> dict:
    """The speakers of each part of a split (what ``config.json`` records as ``split``)."""
    return {
        "name": split.name,
        "train_speakers": list(split.train_speakers),
        "val_speakers": list(split.val_speakers),
        "test_speakers": list(split.test_speakers),
    }


def _export_device(result: RunResult, device_dir: Path) -> dict:
    """int8 export and check of a fresh run's deployed model (see :func:`device_figures`)."""
    return device_figures(
        result.to_deploy,
        device_dir,
        representative=result.representative,
        labels=result.labels,
        feature_params=result.feature_params,
        normalizer=result.normalizer,
        origin=_origin(result.config, result.metrics),
        x_test=result.predictions["x_test"],
        y_true=result.predictions["y_true"],
        y_pred_float=result.predictions.get("y_pred_deployed", result.predictions["y_pred"]),
    )


def _origin(config: TrainConfig, metrics: dict) -> dict:
    return {
        "family": config.family,
        "size": config.size,
        "hrf": config.hrf,
        "params_train": metrics["params_train"],
        "seed": config.seed,
    }


def device_figures(
    merged: keras.Model,
    device_dir: Path,
    *,
    representative: np.ndarray,
    labels: list[str],
    feature_params: FeatureParams,
    normalizer: Normalizer,
    origin: dict,
    x_test: np.ndarray,
    y_true: np.ndarray,
    y_pred_float: np.ndarray,
) -> dict:
    """Export the int8 device artefacts to ``device_dir`` and measure them on the test split.

    Returns the check report's figures plus ``test`` (int8 WA / UA / macro-F1 from LiteRT) and
    ``agreement_with_float`` (share of test examples where int8 and float argmax agree).
    """
    from keras_hrf import tflite
    from keras_hrf.metrics import classification_metrics

    exported = tflite.export(
        merged,
        device_dir,
        representative_data=representative,
        labels=labels,
        feature_params=feature_params,
        normalizer=normalizer,
        origin=origin,
        samples=x_test,
        overwrite=True,
    )
    figures = exported.report.to_dict()
    y_int8 = tflite.predict_int8(exported.int8_bytes, x_test).argmax(-1)
    m = classification_metrics(y_true, y_int8, labels)
    figures["test"] = {k: m[k] for k in ("wa", "ua", "macro_f1")}
    figures["agreement_with_float"] = float(np.mean(y_int8 == np.asarray(y_pred_float)))
    return figures


def add_device_export(run_dir: str | Path, x_test_raw: np.ndarray, y_true: np.ndarray) -> dict:
    """Add the int8 device artefacts to a run saved with ``export=False`` (resumable back-fill).

    Args:
        run_dir: The run folder.
        x_test_raw: The run's test features, *un-normalised* (the run's normaliser is applied).
        y_true: Their class indices.

    Returns:
        The int8 figures, also written into ``metrics.json["int8"]`` and ``REPORT.md``.
    """
    run = load_run(run_dir)
    x_test = run.normalizer.transform(x_test_raw)
    to_deploy = run.deployed if run.deployed is not None else run.merged
    y_pred = to_deploy.predict(x_test, verbose=0, batch_size=256).argmax(-1)
    figures = device_figures(
        to_deploy,
        run.path / "device",
        representative=np.load(run.path / "representative.npy"),
        labels=run.labels,
        feature_params=run.feature_params,
        normalizer=run.normalizer,
        origin=_origin(run.config, run.metrics),
        x_test=x_test,
        y_true=y_true,
        y_pred_float=y_pred,
    )
    metrics = dict(run.metrics, int8=figures)
    reports.atomic_write_json(run.path / "metrics.json", metrics)
    reports.atomic_write_text(run.path / "REPORT.md", run_report(run.config, metrics))
    return figures


def run_report(config: TrainConfig, metrics: dict, result: RunResult | None = None) -> str:
    """``REPORT.md`` of one run."""
    p = reports.pct
    lines = [
        f"# {config.family} {config.variant} (seed {config.seed})",
        "",
        reports.markdown_table(
            ["split / model", "WA %", "UA %", "macro-F1 %"],
            [
                [
                    "validation",
                    p(metrics["val"]["wa"]),
                    p(metrics["val"]["ua"]),
                    p(metrics["val"]["macro_f1"]),
                ],
                [
                    "test, trained",
                    p(metrics["test"]["wa"]),
                    p(metrics["test"]["ua"]),
                    p(metrics["test"]["macro_f1"]),
                ],
                [
                    "test, merged (deHRF)",
                    p(metrics["test_merged"]["wa"]),
                    p(metrics["test_merged"]["ua"]),
                    p(metrics["test_merged"]["macro_f1"]),
                ],
            ]
            + (
                [
                    [
                        "test, QAT-tuned (deployed)",
                        p(metrics["test_deployed"]["wa"]),
                        p(metrics["test_deployed"]["ua"]),
                        p(metrics["test_deployed"]["macro_f1"]),
                    ]
                ]
                if "test_deployed" in metrics
                else []
            )
            + (
                [
                    [
                        "test, int8 (LiteRT)",
                        p(metrics["int8"]["test"]["wa"]),
                        p(metrics["int8"]["test"]["ua"]),
                        p(metrics["int8"]["test"]["macro_f1"]),
                    ]
                ]
                if "int8" in metrics and "test" in metrics["int8"]
                else []
            ),
        ),
        "",
        reports.markdown_table(
            ["figure", "value"],
            [
                [
                    "parameters (train / deployed / plain)",
                    f"{metrics['params_train']:,} / {metrics['params_deployed']:,} / "
                    f"{metrics['params_plain']:,}",
                ],
                [
                    "MACs (train / deployed)",
                    f"{metrics['macs_train']:,} / {metrics['macs_deployed']:,}",
                ],
                ["merge: max abs logit difference", f"{metrics['merge_max_abs_diff']:.2e}"],
                ["best epoch / epochs run", f"{metrics['best_epoch']} / {metrics['epochs_run']}"],
                ["training time (s)", f"{metrics['seconds']:.1f}"],
            ]
            + _int8_rows(metrics.get("int8")),
        ),
        "",
        "Per-class test recall (%): "
        + ", ".join(f"{k} {p(v)}" for k, v in metrics["test"]["per_class_recall"].items()),
        "",
        "![confusion](confusion.png) ![curves](curves.png)",
        "",
    ]
    return "\n".join(lines)


def _int8_rows(int8: dict | None) -> list[list[str]]:
    if not int8:
        return []
    rows = [
        ["int8 flatbuffer (bytes)", f"{int8.get('flatbuffer_bytes', '-'):,}"],
        ["TFLM arena, recommended (bytes)", f"{int8.get('arena_recommended', '-'):,}"],
    ]
    if "agreement_with_float" in int8:
        rows.append(
            ["int8 vs float argmax agreement (test)", f"{100 * int8['agreement_with_float']:.1f} %"]
        )
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
        metrics=json.loads((path / "metrics.json").read_text()),
        model=keras.models.load_model(path / "model.keras", safe_mode=True),
        merged=keras.models.load_model(path / "model_merged.keras", safe_mode=True),
        deployed=(
            keras.models.load_model(path / "model_deployed.keras", safe_mode=True)
            if (path / "model_deployed.keras").is_file()
            else None
        ),
    )


def history_frame(path: str | Path) -> pd.DataFrame:
    """``history.csv`` of a run folder."""
    return pd.read_csv(Path(path) / "history.csv")
