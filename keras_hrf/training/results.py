"""What a training run produces: the typed :class:`RunMetrics` of ``metrics.json`` and the
in-memory :class:`RunResult` of :func:`keras_hrf.training.fit`.

Every reader of a run's metrics (run reports, the reproduction's tables, the quantization study,
the command line) goes through :meth:`RunMetrics.from_dict`, so the JSON layout is defined once;
:meth:`RunMetrics.to_dict` writes exactly the layout that earlier runs have, so committed run
folders keep loading.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import pandas as pd

from data_prep.features import FeatureParams, Normalizer
from data_prep.splits import Split
from keras_hrf.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class SplitMetrics:
    """Classification metrics of one split (see
    :func:`keras_hrf.training.metrics.classification_metrics`).

    Attributes:
        n: Number of examples.
        wa: Weighted accuracy (plain accuracy), a fraction.
        ua: Unweighted accuracy (mean per-class recall over the classes present).
        macro_f1: Macro-averaged F1 over the classes present.
        per_class_recall: Class name -> recall (classes present only).
        confusion: Rows true, columns predicted, over all classes.
    """

    n: int
    wa: float
    ua: float
    macro_f1: float
    per_class_recall: dict[str, float]
    confusion: list[list[int]]

    @classmethod
    def from_dict(cls, data: dict) -> SplitMetrics:
        return cls(
            n=int(data["n"]),
            wa=float(data["wa"]),
            ua=float(data["ua"]),
            macro_f1=float(data["macro_f1"]),
            per_class_recall={k: float(v) for k, v in data["per_class_recall"].items()},
            confusion=[[int(c) for c in row] for row in data["confusion"]],
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunMetrics:
    """``metrics.json`` of a run folder.

    Attributes:
        val: Validation split, trained model.
        test: Test split, trained model.
        test_merged: Test split, merged (deHRF) model.
        merge_max_abs_diff: Largest |logit difference| between the trained and merged models.
        best_epoch: 1-based epoch whose weights were kept.
        epochs_run: Epochs trained before early stopping (or the cap).
        seconds: Wall time of the run.
        params_train: Parameters of the trained model (HRF factors included).
        params_deployed: Parameters of the merged model.
        params_plain: Parameters of the same preset without HRF (equal to ``params_deployed``).
        macs_train: MACs of the trained model.
        macs_deployed: MACs of the merged model.
        test_deployed: Test split, QAT-tuned model (runs with ``qat_epochs``).
        qat_history: Per-epoch history of that fine-tuning (column -> list).
        int8: The int8 export's figures (``keras_hrf.export`` check report plus ``test``: int8
            WA/UA/macro-F1, and ``agreement_with_float``); ``None`` before export.
    """

    val: SplitMetrics
    test: SplitMetrics
    test_merged: SplitMetrics
    merge_max_abs_diff: float
    best_epoch: int
    epochs_run: int
    seconds: float
    params_train: int
    params_deployed: int
    params_plain: int
    macs_train: int
    macs_deployed: int
    test_deployed: SplitMetrics | None = None
    qat_history: dict | None = None
    int8: dict | None = None

    @property
    def int8_ua(self) -> float | None:
        """int8 test UA (LiteRT), if exported."""
        return None if not self.int8 else self.int8.get("test", {}).get("ua")

    @property
    def int8_agreement(self) -> float | None:
        """Share of test examples where int8 and float argmax agree, if exported."""
        return None if not self.int8 else self.int8.get("agreement_with_float")

    @property
    def flatbuffer_bytes(self) -> int | None:
        """Size of the int8 flatbuffer, if exported."""
        return None if not self.int8 else self.int8.get("flatbuffer_bytes")

    @property
    def arena_bytes(self) -> int | None:
        """Recommended TFLM arena, if exported."""
        return None if not self.int8 else self.int8.get("arena_recommended")

    def with_int8(self, figures: dict) -> RunMetrics:
        """A copy with the int8 figures of an export."""
        return dataclasses.replace(self, int8=figures)

    @classmethod
    def from_dict(cls, data: dict) -> RunMetrics:
        """Read the ``metrics.json`` layout (written by :meth:`to_dict`).

        Raises:
            ValueError: a required key is missing (the file is not a training run's metrics).
        """
        try:
            return cls(
                val=SplitMetrics.from_dict(data["val"]),
                test=SplitMetrics.from_dict(data["test"]),
                test_merged=SplitMetrics.from_dict(data["test_merged"]),
                merge_max_abs_diff=float(data["merge_max_abs_diff"]),
                best_epoch=int(data["best_epoch"]),
                epochs_run=int(data["epochs_run"]),
                seconds=float(data["seconds"]),
                params_train=int(data["params_train"]),
                params_deployed=int(data["params_deployed"]),
                params_plain=int(data.get("params_plain", data["params_deployed"])),
                macs_train=int(data["macs_train"]),
                macs_deployed=int(data["macs_deployed"]),
                test_deployed=(
                    SplitMetrics.from_dict(data["test_deployed"])
                    if "test_deployed" in data
                    else None
                ),
                qat_history=data.get("qat_history"),
                int8=data.get("int8"),
            )
        except KeyError as e:
            raise ValueError(f"run metrics lack {e.args[0]!r}: not a training run's metrics") from e

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "val": self.val.to_dict(),
            "test": self.test.to_dict(),
            "test_merged": self.test_merged.to_dict(),
            "merge_max_abs_diff": self.merge_max_abs_diff,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "seconds": self.seconds,
            "params_train": self.params_train,
            "params_deployed": self.params_deployed,
            "params_plain": self.params_plain,
            "macs_train": self.macs_train,
            "macs_deployed": self.macs_deployed,
        }
        if self.test_deployed is not None:
            out["test_deployed"] = self.test_deployed.to_dict()
        if self.qat_history is not None:
            out["qat_history"] = self.qat_history
        if self.int8 is not None:
            out["int8"] = self.int8
        return out


@dataclasses.dataclass
class RunResult:
    """What :func:`fit` returns.

    Attributes:
        config: The run's configuration.
        model: The trained (train-time, possibly HRF) model with the best validation weights.
        merged: ``reparam.merge(model)``: the deployable model.
        labels: Class names; logit ``i`` is ``labels[i]``.
        normalizer: Fitted on the training split.
        feature_params: Parameters of the features the model was trained on.
        history: One row per epoch: ``loss``, ``val_loss``, ``val_ua``, ``lr``.
        metrics: The run's :class:`RunMetrics` (``int8`` still ``None``: export adds it).
        predictions: Test split: ``y_true``, ``y_pred`` (class indices), ``logits`` and the
            normalised features ``x_test``.
        representative: A sample of normalised training features for int8 calibration.
        deployed: The model that is exported: ``merged`` after quantization-aware fine-tuning
            (``config.qat_epochs > 0``), else ``None`` (the merged model itself).
        split: The split the run trained, validated and tested on.
        teacher_logits: The teachers' logits per training example (distilled runs), or None.
        data: The corpora and label selection the run was trained on, or None.
    """

    config: TrainConfig
    model: keras.Model
    merged: keras.Model
    labels: list[str]
    normalizer: Normalizer
    feature_params: FeatureParams
    history: pd.DataFrame
    metrics: RunMetrics
    predictions: dict[str, np.ndarray]
    representative: np.ndarray
    deployed: keras.Model | None = None
    split: Split | None = None
    teacher_logits: np.ndarray | None = None
    data: dict | None = None

    @property
    def to_deploy(self) -> keras.Model:
        """The model the device gets: the QAT-tuned one if there is one, else ``merged``."""
        return self.deployed if self.deployed is not None else self.merged
