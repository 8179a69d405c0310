"""Quantization-aware fine-tuning (QAT) of a deployed model, with the training pipeline.

The twins, their calibration and ``strip`` are :mod:`keras_hrf.quantization.qat`; this is the
training loop around them (a few epochs at a low learning rate, ranges recalibrated every epoch,
best epoch on validation UA), also used without fake quantization as the control that separates
what QAT gains from what more epochs gain.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pandas as pd

from keras_hrf import graph, reparam
from keras_hrf.quantization import qat
from keras_hrf.training.pipeline import Augmentation, ValidationUA, train_dataset


@dataclasses.dataclass(frozen=True)
class QATConfig:
    """Quantization-aware fine-tuning of a deployed model.

    Attributes:
        epochs: Fine-tuning epochs (a few: the model is already trained).
        learning_rate: Peak learning rate (cosine decay to 0), well below the training one.
        batch_size: Batch size.
        patience: Early stopping on validation UA of the fake-quantized model (0 disables);
            the best epoch's weights are kept.
        augment: SpecAugment masks as in training (``augmentation``).
        augmentation: The masks, when ``augment``.
        fake_quant: ``False`` fine-tunes the float model the same way without fake quantization:
            the control that separates what QAT gains from what a few more epochs gain.
        seed: Seed of shuffling and augmentation.
    """

    epochs: int = 5
    learning_rate: float = 1e-4
    batch_size: int = 32
    patience: int = 0
    augment: bool = True
    augmentation: Augmentation = dataclasses.field(default_factory=Augmentation)
    fake_quant: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"QAT epochs must be >= 1, got {self.epochs}")
        if not self.learning_rate > 0:
            raise ValueError(f"QAT learning_rate must be > 0, got {self.learning_rate}")


def fine_tune(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: QATConfig | None = None,
    *,
    calibration_data: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[keras.Model, pd.DataFrame]:
    """Quantization-aware fine-tuning of a deployed (merged) model.

    The activation ranges are recalibrated on ``calibration_data`` at the start of every epoch
    (see :func:`keras_hrf.quantization.qat.calibrate`); pass the representative data that
    conversion will use.

    Args:
        model: The float model to tune (not modified).
        x_train: Normalised training features ``[N, frames, n_mels]``.
        y_train: Class indices ``[N]``.
        x_val: Normalised validation features (early stopping / best epoch).
        y_val: Their class indices.
        config: Fine-tuning options.
        calibration_data: Representative data for the ranges (default: 200 training examples
            drawn with ``config.seed``).
        sample_weight: Per-example loss weights (e.g. the run's class balance), default 1.
        progress: Progress bar over epochs.

    Returns:
        ``(tuned, history)``: the stripped (plain, convertible) model with the best epoch's
        weights, and one row per epoch (``loss``, ``val_ua``, ``lr``).
    """
    from tqdm.auto import tqdm

    config = config or QATConfig()
    keras.utils.set_random_seed(config.seed)
    num_classes = int(model.output_shape[-1])
    # Tune the graph that is deployed: BatchNorms the converter folds into the Dense after them
    # are folded first (their output is no int8 tensor; the kernel diag(s) W is quantized).
    model = reparam.fold_normalizations(model)
    if calibration_data is None:
        rng = np.random.default_rng(config.seed)
        calibration_data = x_train[np.sort(rng.choice(len(x_train), min(200, len(x_train)), False))]
    if config.fake_quant:
        qat_model = qat.prepare(model, calibration_data=calibration_data)
    else:
        qat_model = graph.rewrite(model, lambda layer: None)  # a float copy, tuned the same way
    steps = math.ceil(len(x_train) / config.batch_size)
    lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps * config.epochs)
    qat_model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    qat_model.optimizer.build(qat_model.trainable_variables)  # one trace of the step (see fit)
    w = np.ones(len(x_train), "float32") if sample_weight is None else sample_weight
    # The training pipeline of fit (shuffling, seeded SpecAugment).
    ds = train_dataset(
        x_train,
        keras.utils.to_categorical(y_train, num_classes),
        w.astype("float32"),
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=config.augmentation if config.augment else Augmentation.none(),
    )
    desc = "QAT fine-tune" if config.fake_quant else "float fine-tune"
    bar = tqdm(total=config.epochs, desc=desc, unit="epoch", disable=not progress)
    ua_cb = ValidationUA(x_val, y_val, config.patience, bar)
    recalibrate = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: (
            epoch and config.fake_quant and qat.calibrate(qat_model, calibration_data)
        )
    )
    with bar:
        hist = qat_model.fit(
            ds, epochs=config.epochs, verbose=0, callbacks=[recalibrate, ua_cb], shuffle=False
        )
    history = pd.DataFrame(hist.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return (qat.strip(qat_model) if config.fake_quant else qat_model), history
