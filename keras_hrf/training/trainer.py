"""Training: :func:`fit`, a small explicit wrapper of ``model.fit``.

``fit(config, features, manifest, split)`` normalises with statistics of the training split only,
builds the model, trains with SpecAugment-style masking through ``tf.data``, stops early on
validation UA (restoring the best weights), evaluates on the test split, and merges the HRF layers
(checking that the merged model predicts what the trained one does). Runs are deterministic for a
seed on CPU: model init, shuffling and masking all derive from ``config.seed``.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import pandas as pd

from data_prep.features import FeatureParams, Normalizer
from data_prep.labels import encode_labels
from data_prep.splits import Split
from keras_hrf import models, reparam
from keras_hrf.layers import LayerToBatchNorm
from keras_hrf.training.config import TrainConfig
from keras_hrf.training.distillation import DistillationLoss, soften, teacher_logits
from keras_hrf.training.metrics import classification_metrics
from keras_hrf.training.optimizer import make_optimizer
from keras_hrf.training.pipeline import (
    NormAnnealing,
    ValidationUA,
    recalibrate_batch_norm,
    sample_weights,
    train_dataset,
)
from keras_hrf.training.qat_finetune import QATConfig, fine_tune
from keras_hrf.training.results import RunMetrics, RunResult, SplitMetrics
from keras_hrf.training.splits import split_speakers


def fit(
    config: TrainConfig,
    features: np.ndarray,
    manifest: pd.DataFrame,
    split: Split,
    *,
    feature_params: FeatureParams | None = None,
    labels: list[str] | None = None,
    progress: bool = True,
    representative_size: int = 200,
    callbacks: list | None = None,
    data: dict | None = None,
) -> RunResult:
    """Train one model on ``split`` and evaluate it.

    Args:
        config: The run's configuration.
        features: Raw (un-normalised) log-Mel features ``[N, frames, n_mels]``, rows aligned with
            ``manifest``.
        manifest: Corpus manifest with an ``emotion`` column.
        split: Row indices of the train / validation / test parts (speaker-independent).
        feature_params: The parameters the features were computed with (recorded for export).
        labels: Class names in logit order (default: sorted emotions of the manifest).
        progress: Show a progress bar over epochs.
        representative_size: Number of normalised training examples kept for int8 calibration.
        callbacks: Extra Keras callbacks (e.g. timers), run after the validation-UA callback.
        data: What the features are of (``DataSpec.to_dict()``: corpora, label selection);
            recorded in the run's ``config.json`` and its export's origin.

    Returns:
        A :class:`RunResult`.
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    if len(features) != len(manifest):
        raise ValueError(f"{len(features)} feature rows but {len(manifest)} manifest rows")
    for part in ("train", "val", "test"):
        if len(getattr(split, part)) == 0:
            raise ValueError(f"the split's {part} part is empty")
    feature_params = feature_params or FeatureParams(
        frames=features.shape[1], n_mels=features.shape[2]
    )
    y, labels = encode_labels(manifest["emotion"], labels)
    num_classes = len(labels)
    started = time.perf_counter()

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    norm = Normalizer.fit(features[split.train], feature_params, exclude_floor=config.exclude_floor)
    x_train = norm.transform(features[split.train])
    x_val = norm.transform(features[split.val])
    x_test = norm.transform(features[split.test])
    y_train, y_val, y_test = y[split.train], y[split.val], y[split.test]

    w_train = sample_weights(y_train, num_classes, config.class_balance)

    model = models.build(
        config.family,
        config.size,
        hrf=config.hrf_config(),
        input_shape=features.shape[1:],
        num_classes=num_classes,
        seed=config.seed,
        **config.model_overrides,
    )
    steps = math.ceil(len(x_train) / config.batch_size)
    optimizer = make_optimizer(config, steps)
    targets = keras.utils.to_categorical(y_train, num_classes)
    teacher = None
    if config.teacher:
        # Once per training example, before training (see keras_hrf.training.distillation).
        teacher = teacher_logits(
            config.teacher, features[split.train], labels, split_speakers(split)
        )
        targets = np.concatenate([targets, soften(teacher, config.kd_temperature)], axis=1)
        loss = DistillationLoss(
            num_classes,
            temperature=config.kd_temperature,
            weight=config.kd_weight,
            label_smoothing=config.label_smoothing,
        )
    else:
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        )
    model.compile(optimizer=optimizer, loss=loss)
    # Built here, not lazily inside the first traced step: a tf.function that creates variables
    # is traced a second time, and the train step's trace (most of a short run's time) with it.
    optimizer.build(model.trainable_variables)
    ds = train_dataset(
        x_train,
        targets,
        w_train,
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=config.augmentation,
        # What a shift uncovers looks like the end of a short utterance: the padding value.
        pad_row=norm.transform(np.full((feature_params.n_mels,), feature_params.fill_value)),
    )
    bar = tqdm(
        total=config.epochs,
        desc=f"train {config.family} {config.variant}",
        unit="epoch",
        disable=not progress,
    )
    progressive = [la for la in model._flatten_layers() if isinstance(la, LayerToBatchNorm)]
    anneal_steps = round(config.norm_anneal * steps * config.epochs)
    ua_cb = ValidationUA(
        x_val,
        y_val,
        config.patience,
        bar,
        select_best=config.selection == "best",
        # Only weights whose LayerToBatchNorms have become BatchNorms can be kept.
        select_from=math.ceil(anneal_steps / steps) if progressive else 0,
    )
    # With EMA the averaged weights are swapped in at every epoch end: validated, kept, and in
    # the model when training ends (so merged and exported).
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if optimizer.use_ema else []
    # LayerNorm -> BatchNorm annealing first, so that a "best" selection restores the mix of
    # the epoch it validated.
    anneal = [NormAnnealing(progressive, anneal_steps)] if progressive else []
    with bar:
        hist = model.fit(
            ds,
            epochs=config.epochs,
            verbose=0,
            callbacks=[*anneal, *swap, ua_cb, *(callbacks or [])],
            shuffle=False,
        )
    history = pd.DataFrame(hist.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    if optimizer.use_ema:
        # The average is of the trainable weights; BatchNorm's statistics follow it here.
        recalibrate_batch_norm(model, x_train, config.batch_size)

    merged = reparam.merge(model)
    logits = model.predict(x_test, verbose=0, batch_size=256)
    logits_merged = merged.predict(x_test, verbose=0, batch_size=256)
    pred = logits.argmax(-1)
    val_pred = model.predict(x_val, verbose=0, batch_size=256).argmax(-1)
    plain_twin = models.build(
        config.family,
        config.size,
        hrf=None,
        input_shape=features.shape[1:],
        num_classes=num_classes,
        **config.model_overrides,
    )
    metrics = RunMetrics(
        val=SplitMetrics.from_dict(classification_metrics(y_val, val_pred, labels)),
        test=SplitMetrics.from_dict(classification_metrics(y_test, pred, labels)),
        test_merged=SplitMetrics.from_dict(
            classification_metrics(y_test, logits_merged.argmax(-1), labels)
        ),
        merge_max_abs_diff=float(np.abs(logits - logits_merged).max()),
        best_epoch=int(ua_cb.best_epoch + 1),
        epochs_run=int(len(history)),
        seconds=float(time.perf_counter() - started),
        params_train=int(model.count_params()),
        params_deployed=int(merged.count_params()),
        params_plain=int(plain_twin.count_params()),
        macs_train=int(models.count_macs(model)),
        macs_deployed=int(models.count_macs(merged)),
    )
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(x_train), size=min(representative_size, len(x_train)), replace=False)
    representative = x_train[np.sort(pick)]
    deployed = None
    predictions = {"y_true": y_test, "y_pred": pred, "logits": logits, "x_test": x_test}
    if config.qat_epochs:
        deployed, qat_history = fine_tune(
            merged,
            x_train,
            y_train,
            x_val,
            y_val,
            QATConfig(
                epochs=config.qat_epochs,
                learning_rate=config.qat_learning_rate,
                batch_size=config.batch_size,
                seed=config.seed,
            ),
            calibration_data=representative,
            sample_weight=w_train,
            progress=progress,
        )
        deployed_pred = deployed.predict(x_test, verbose=0, batch_size=256).argmax(-1)
        # int8 agreement is measured against the float model that was converted.
        predictions["y_pred_deployed"] = deployed_pred
        metrics = dataclasses.replace(
            metrics,
            test_deployed=SplitMetrics.from_dict(
                classification_metrics(y_test, deployed_pred, labels)
            ),
            qat_history=qat_history.to_dict("list"),
            seconds=float(time.perf_counter() - started),
        )
    return RunResult(
        config=config,
        model=model,
        merged=merged,
        labels=labels,
        normalizer=norm,
        feature_params=feature_params,
        history=history,
        metrics=metrics,
        predictions=predictions,
        representative=representative,
        deployed=deployed,
        split=split,
        teacher_logits=teacher,
        data=data,
    )
