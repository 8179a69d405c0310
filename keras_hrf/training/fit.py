"""Training: a frozen :class:`TrainConfig` and :func:`fit`, a small explicit wrapper of
``model.fit``.

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
from typing import Any

import keras
import numpy as np
import pandas as pd

from data_prep.features import FeatureParams, Normalizer
from data_prep.splits import Split
from keras_hrf import models, reparam
from keras_hrf.metrics import classification_metrics, unweighted_accuracy


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run folder).

    Attributes:
        family: Model family (``keras_hrf.models.FAMILIES``).
        size: Preset, ``"light"`` or ``"large"``.
        hrf: ``None`` (plain), or a dict of :class:`keras_hrf.models.HRFConfig` fields
            (``{}`` = the paper's default placement).
        model_overrides: Preset hyper-parameters to change (e.g. ``{"dropout": 0.2}``).
        epochs: Maximum number of epochs.
        batch_size: Training batch size.
        learning_rate: Peak learning rate.
        weight_decay: Decoupled weight decay (AdamW); 0 gives Adam.
        schedule: ``"cosine"`` (decay to 0 over ``epochs``) or ``"constant"``.
        warmup_epochs: Linear warm-up epochs before the schedule.
        label_smoothing: Label smoothing of the cross-entropy.
        time_masks: SpecAugment time masks per example.
        time_mask_max: Longest time mask (frames).
        freq_masks: SpecAugment frequency masks per example.
        freq_mask_max: Widest frequency mask (mel bands).
        patience: Early-stopping patience in epochs on validation UA (0 disables).
        class_balance: ``"weights"`` (inverse-frequency sample weights) or ``"none"``.
        exclude_floor: Fit the normaliser without the log-floor values (digital silence).
        qat_epochs: Quantization-aware fine-tuning of the merged model after training
            (:mod:`keras_hrf.qat`); 0 (default) deploys the merged model as trained.
        qat_learning_rate: Peak learning rate of that fine-tuning.
        seed: Seed of initialisation, shuffling and augmentation.
    """

    family: str = "conv_transformer"
    size: str = "light"
    hrf: dict | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    time_masks: int = 2
    time_mask_max: int = 30
    freq_masks: int = 2
    freq_mask_max: int = 8
    patience: int = 15
    class_balance: str = "weights"
    exclude_floor: bool = False
    qat_epochs: int = 0
    qat_learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.family not in models.FAMILIES:
            raise ValueError(
                f"unknown model family {self.family!r}; choose one of {', '.join(models.FAMILIES)}"
            )
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.class_balance not in ("weights", "none"):
            raise ValueError(
                f"class_balance must be 'weights' or 'none', got {self.class_balance!r}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.qat_epochs < 0:
            raise ValueError(f"qat_epochs must be >= 0, got {self.qat_epochs}")
        models.HRFConfig.from_any(self.hrf if self.hrf != {} else True)  # validates early

    @property
    def variant(self) -> str:
        """Short name: ``light``, ``light+hrf``, ``large``..."""
        name = self.size + ("+hrf" if self.hrf is not None else "")
        if self.hrf and self.hrf.get("quantize_merged"):
            name += "(q)"
        return name + ("+qat" if self.qat_epochs else "")

    def hrf_config(self) -> models.HRFConfig | None:
        """The :class:`HRFConfig` this run trains with (``None`` for plain)."""
        if self.hrf is None:
            return None
        return models.HRFConfig.from_any(self.hrf if self.hrf else True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {sorted(unknown)}")
        return cls(**data)


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
        metrics: ``{"val": ..., "test": ..., "test_merged": ...}`` (see
            :func:`keras_hrf.metrics.classification_metrics`) plus ``merge_max_abs_diff``,
            ``best_epoch``, ``seconds``, ``params_train``, ``params_deployed``, ``macs_*``.
        predictions: Test split: ``y_true``, ``y_pred`` (class indices), ``logits`` and the
            normalised features ``x_test``.
        representative: A sample of normalised training features for int8 calibration.
        deployed: The model that is exported: ``merged`` after quantization-aware fine-tuning
            (``config.qat_epochs > 0``), else ``None`` (the merged model itself).
        split: The split the run trained, validated and tested on.
    """

    config: TrainConfig
    model: keras.Model
    merged: keras.Model
    labels: list[str]
    normalizer: Normalizer
    feature_params: FeatureParams
    history: pd.DataFrame
    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray]
    representative: np.ndarray
    deployed: keras.Model | None = None
    split: Split | None = None

    @property
    def to_deploy(self) -> keras.Model:
        """The model the device gets: the QAT-tuned one if there is one, else ``merged``."""
        return self.deployed if self.deployed is not None else self.merged


def encode_labels(emotions: pd.Series, labels: list[str] | None = None) -> tuple[np.ndarray, list]:
    """Class indices of ``emotions`` and the label list (sorted unique names by default)."""
    labels = sorted(emotions.unique()) if labels is None else list(labels)
    lookup = {name: i for i, name in enumerate(labels)}
    unknown = sorted(set(emotions) - set(lookup))
    if unknown:
        raise ValueError(f"emotion label(s) {unknown} are not among the classes {labels}")
    return emotions.map(lookup).to_numpy(dtype=np.int32), labels


def sample_weights(y: np.ndarray, num_classes: int, class_balance: str = "weights") -> np.ndarray:
    """Per-example loss weights: inverse class frequency (mean 1 over ``y``), or all ones.

    Args:
        y: Class indices of the training examples.
        num_classes: Number of classes.
        class_balance: ``"weights"`` or ``"none"`` (see :class:`TrainConfig`).
    """
    if class_balance == "none":
        return np.ones(len(y), np.float32)
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    cw = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
    return cw[y].astype(np.float32)


def _spec_augment(x, seed, cfg: TrainConfig):
    """Stateless (seeded per example) time and frequency masks on one ``[frames, mels]`` example."""
    import tensorflow as tf

    frames, mels = x.shape
    seeds = tf.random.experimental.stateless_split(seed, cfg.time_masks + cfg.freq_masks)

    def mask(x, s, axis_len, max_width, axis):
        width = tf.random.stateless_uniform([], s, 0, max_width + 1, dtype=tf.int32)
        start = tf.random.stateless_uniform(
            [], s[::-1], 0, tf.maximum(axis_len - width, 0) + 1, dtype=tf.int32
        )
        idx = tf.range(axis_len)
        keep = tf.cast((idx < start) | (idx >= start + width), x.dtype)
        return x * (keep[:, None] if axis == 0 else keep[None, :])

    # Masked values become 0, i.e. the training mean after normalisation.
    for i in range(cfg.time_masks):
        x = mask(x, seeds[i], frames, min(cfg.time_mask_max, frames), 0)
    for j in range(cfg.freq_masks):
        x = mask(x, seeds[cfg.time_masks + j], mels, min(cfg.freq_mask_max, mels), 1)
    return x


def _train_dataset(x, y_onehot, w, cfg: TrainConfig):
    import tensorflow as tf

    n = len(x)
    ds = tf.data.Dataset.from_tensor_slices((x, y_onehot, w))
    ds = ds.shuffle(n, seed=cfg.seed, reshuffle_each_iteration=True)
    # A deterministic per-example seed stream for the stateless masks (new each epoch).
    seeds = tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def aug(item, s):
        xi, yi, wi = item
        return _spec_augment(xi, s, cfg), yi, wi

    return (
        ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(cfg.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


class _ValidationUA(keras.callbacks.Callback):
    """Computes validation UA each epoch, keeps the best weights, stops after ``patience``."""

    def __init__(self, x_val, y_val, patience: int, progress):
        super().__init__()
        self.x_val, self.y_val = x_val, y_val
        self.patience = patience
        self.progress = progress
        self.best = -1.0
        self.best_epoch = -1
        self.best_weights = None
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logits = self.model.predict(self.x_val, verbose=0, batch_size=256)
        ua = unweighted_accuracy(self.y_val, logits.argmax(-1))
        logs["val_ua"] = ua
        lr = self.model.optimizer.learning_rate
        logs["lr"] = float(keras.ops.convert_to_numpy(lr))
        if ua > self.best:
            self.best, self.best_epoch, self.wait = ua, epoch, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
        if self.progress is not None:
            self.progress.set_postfix(
                loss=f"{logs.get('loss', float('nan')):.3f}",
                val_ua=f"{ua:.3f}",
                best=f"{self.best:.3f}",
            )
            self.progress.update(1)
        if self.patience and self.wait >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


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
    lr: Any = config.learning_rate
    if config.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if config.warmup_epochs else config.learning_rate,
            decay_steps=max(1, steps * (config.epochs - config.warmup_epochs)),
            warmup_target=config.learning_rate if config.warmup_epochs else None,
            warmup_steps=steps * config.warmup_epochs,
        )
    optimizer = (
        keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)
        if config.weight_decay
        else keras.optimizers.Adam(lr)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        ),
    )
    ds = _train_dataset(x_train, keras.utils.to_categorical(y_train, num_classes), w_train, config)
    bar = tqdm(
        total=config.epochs,
        desc=f"train {config.family} {config.variant}",
        unit="epoch",
        disable=not progress,
    )
    ua_cb = _ValidationUA(x_val, y_val, config.patience, bar)
    with bar:
        hist = model.fit(
            ds,
            epochs=config.epochs,
            verbose=0,
            callbacks=[ua_cb, *(callbacks or [])],
            shuffle=False,
        )
    history = pd.DataFrame(hist.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))

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
    metrics = {
        "val": classification_metrics(y_val, val_pred, labels),
        "test": classification_metrics(y_test, pred, labels),
        "test_merged": classification_metrics(y_test, logits_merged.argmax(-1), labels),
        "merge_max_abs_diff": float(np.abs(logits - logits_merged).max()),
        "best_epoch": int(ua_cb.best_epoch + 1),
        "epochs_run": int(len(history)),
        "seconds": float(time.perf_counter() - started),
        "params_train": int(model.count_params()),
        "params_deployed": int(merged.count_params()),
        "params_plain": int(plain_twin.count_params()),
        "macs_train": int(models.count_macs(model)),
        "macs_deployed": int(models.count_macs(merged)),
    }
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(x_train), size=min(representative_size, len(x_train)), replace=False)
    representative = x_train[np.sort(pick)]
    deployed = None
    predictions = {"y_true": y_test, "y_pred": pred, "logits": logits, "x_test": x_test}
    if config.qat_epochs:
        from keras_hrf import qat

        deployed, qat_history = qat.fine_tune(
            merged,
            x_train,
            y_train,
            x_val,
            y_val,
            qat.QATConfig(
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
        metrics["test_deployed"] = classification_metrics(y_test, deployed_pred, labels)
        metrics["qat_history"] = qat_history.to_dict("list")
        # int8 agreement is measured against the float model that was converted.
        predictions["y_pred_deployed"] = deployed_pred
        metrics["seconds"] = float(time.perf_counter() - started)
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
    )
