"""The int8 device artefacts of a training run folder: written with the run, or back-filled.

:func:`save_run` is :func:`keras_hrf.training.runs.save_run` with the export inside the same
atomic write, so a run folder is complete (models, metrics with ``int8``, ``device/``) or absent;
:func:`add_device_export` adds them to a run saved without (a resumable back-fill).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from data_prep.features import FeatureParams, Normalizer
from keras_hrf.export.artifacts import export
from keras_hrf.export.runtime_check import predict
from keras_hrf.training import runs as training_runs
from keras_hrf.training.config import TrainConfig
from keras_hrf.training.metrics import classification_metrics
from keras_hrf.training.results import RunMetrics, RunResult


def save_run(result: RunResult, out_dir: str | Path, *, export: bool = True) -> Path:
    """Write a run folder for ``result`` (atomically), with its int8 device artefacts.

    Args:
        result: From :func:`keras_hrf.training.fit`.
        out_dir: The run folder; replaced if it exists.
        export: Also write ``device/`` (the int8 export of the deployed model, checked in LiteRT
            and TFLM) and its figures as ``metrics.json["int8"]``.

    Returns:
        The run folder.
    """
    if not export:
        return training_runs.save_run(result, out_dir)

    def with_device(tmp: Path, res: RunResult) -> RunMetrics:
        return res.metrics.with_int8(
            device_figures(
                res.to_deploy,
                tmp / "device",
                representative=res.representative,
                labels=res.labels,
                feature_params=res.feature_params,
                normalizer=res.normalizer,
                origin=_origin(res.config, res.metrics, res.data),
                x_test=res.predictions["x_test"],
                y_true=res.predictions["y_true"],
                y_pred_float=res.predictions.get("y_pred_deployed", res.predictions["y_pred"]),
            )
        )

    return training_runs.save_run(result, out_dir, extra=with_device)


def _origin(config: TrainConfig, metrics: RunMetrics, data: dict | None = None) -> dict:
    origin = {
        "family": config.family,
        "size": config.size,
        "hrf": config.hrf,
        "params_train": metrics.params_train,
        "seed": config.seed,
    }
    if data is not None:
        # The device shows the mapped class names; the map says what they stand for.
        origin["corpora"] = [c["name"] for c in data["corpora"]]
        origin["label_map"] = data.get("label_map") or {}
        origin["label_selection"] = data.get("labels")
    return origin


def run_firmware_targets():
    """What a run's export measures on real firmware: ``$KERAS_HRF_FIRMWARE`` if set, else the
    Cortex-M4 alone where its toolchain is present (~15 s a run; all three targets would triple
    it), else nothing."""
    from keras_hrf.device import firmware
    from keras_hrf.export.artifacts import ENV_FIRMWARE

    if os.environ.get(ENV_FIRMWARE, "").strip():
        return "auto"
    return ("m4",) if firmware.missing("m4", firmware.Trees.from_env()) is None else None


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
    exported = export(
        merged,
        device_dir,
        representative_data=representative,
        labels=labels,
        feature_params=feature_params,
        normalizer=normalizer,
        origin=origin,
        samples=x_test,
        overwrite=True,
        firmware=run_firmware_targets(),
    )
    figures = exported.report.to_dict()
    if exported.firmware is not None:
        figures["firmware"] = {
            t: {
                k: f.to_dict()[k]
                for k in ("arena_used", "instructions", "flash_total", "ram_total", "identical")
            }
            for t, f in exported.firmware.targets.items()
        }
    y_int8 = predict(exported.int8_bytes, x_test).argmax(-1)
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
    run = training_runs.load_run(run_dir)
    x_test = run.normalizer.transform(x_test_raw)
    y_pred = run.to_deploy.predict(x_test, verbose=0, batch_size=256).argmax(-1)
    figures = device_figures(
        run.to_deploy,
        run.path / "device",
        representative=np.load(run.path / "representative.npy"),
        labels=run.labels,
        feature_params=run.feature_params,
        normalizer=run.normalizer,
        origin=_origin(run.config, run.metrics, run.data),
        x_test=x_test,
        y_true=y_true,
        y_pred_float=y_pred,
    )
    training_runs.update_metrics(run.path, run.metrics.with_int8(figures))
    return figures
