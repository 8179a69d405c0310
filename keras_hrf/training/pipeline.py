"""The input pipeline of training: class balance, SpecAugment masks, ``tf.data``, and the
validation callback that selects the best epoch.

Deterministic for a seed on CPU: shuffling and masking derive from the run's seed.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_hrf.training.metrics import unweighted_accuracy


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Train-time augmentation of each example (stateless, seeded): a random time shift,
    SpecAugment-style masks and mixup.

    Attributes:
        time_shift: Largest shift of the window in frames (uniform in ``[-s, s]``); the frames
            it uncovers get the padding value, as an utterance shorter than the window has. 0
            disables it. It stands in for random crops of a longer utterance: the same content
            at another offset, which a sliding window on a device sees.
        time_masks: Time masks per example.
        time_mask_max: Longest time mask (frames).
        freq_masks: Frequency masks per example.
        freq_mask_max: Widest frequency mask (mel bands).
        mixup: Mixup's Beta(alpha, alpha) parameter; 0 disables it. Each batch is mixed with a
            permutation of itself, ``lam * a + (1 - lam) * b`` with one ``lam`` per batch, on
            the features, the one-hot targets and the loss weights alike.
    """

    time_shift: int = 0
    time_masks: int = 2
    time_mask_max: int = 30
    freq_masks: int = 2
    freq_mask_max: int = 8
    mixup: float = 0.0

    @classmethod
    def none(cls) -> Augmentation:
        """No masks, no mixup."""
        return cls(time_shift=0, time_masks=0, freq_masks=0, mixup=0.0)


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


def time_shift(x, seed, max_shift: int, pad_row):
    """Shift one ``[frames, mels]`` example by a seeded uniform offset in ``[-max_shift,
    max_shift]`` frames; uncovered frames become ``pad_row`` ``[mels]``."""
    import tensorflow as tf

    frames = x.shape[0]
    shift = tf.random.stateless_uniform([], seed, -max_shift, max_shift + 1, dtype=tf.int32)
    src = tf.range(frames) - shift  # output frame t shows input frame t - shift
    inside = (src >= 0) & (src < frames)
    shifted = tf.gather(x, tf.clip_by_value(src, 0, frames - 1))
    return tf.where(inside[:, None], shifted, tf.cast(pad_row, x.dtype)[None, :])


def spec_augment(x, seed, cfg: Augmentation, pad_row=None):
    """Stateless (seeded per example) time shift, then time and frequency masks, on one
    ``[frames, mels]`` example.

    Args:
        x: The normalised example.
        seed: Its ``[2]`` stateless seed.
        cfg: The augmentation.
        pad_row: ``[mels]`` normalised padding value for the time shift (default zeros).
    """
    import tensorflow as tf

    frames, mels = x.shape
    # The shift's seed comes after the masks' ones, and only when it is on, so that runs without
    # a shift keep the masks they always had.
    n_seeds = cfg.time_masks + cfg.freq_masks + (1 if cfg.time_shift else 0)
    seeds = tf.random.experimental.stateless_split(seed, max(n_seeds, 1))
    if cfg.time_shift:
        pad = tf.zeros([mels], x.dtype) if pad_row is None else pad_row
        x = time_shift(x, seeds[n_seeds - 1], min(cfg.time_shift, frames), pad)

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


def train_dataset(
    x, y_onehot, w, *, batch_size: int, seed: int, augmentation: Augmentation, pad_row=None
):
    """The shuffled, augmented, batched ``tf.data`` pipeline of one run.

    Args:
        x: Normalised features ``[N, frames, n_mels]``.
        y_onehot: One-hot targets ``[N, classes]``.
        w: Per-example loss weights ``[N]``.
        batch_size: Batch size.
        seed: Seed of the shuffling and of the per-example mask seeds (a new draw each epoch,
            the same sequence for the same seed).
        augmentation: The shift, masks and mixup.
        pad_row: ``[mels]`` normalised padding value the time shift fills in (the corpus'
            padding, e.g. the log floor, through the run's normaliser); default zeros.

    Returns:
        A dataset of ``(x, y, w)`` batches.
    """
    import tensorflow as tf

    n = len(x)
    if pad_row is not None:
        pad_row = tf.constant(np.asarray(pad_row, np.float32))
    ds = tf.data.Dataset.from_tensor_slices((x, y_onehot, w))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    # A deterministic per-example seed stream for the stateless masks (new each epoch).
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    # Traced as written (no AutoGraph conversion): their only branches and loops are on Python
    # values, and converting them took a second of every run.
    @tf.autograph.experimental.do_not_convert
    def aug(item, s):
        xi, yi, wi = item
        return spec_augment(xi, s, augmentation, pad_row), yi, wi

    @tf.autograph.experimental.do_not_convert
    def mix(batch, s):
        return mixup(batch, s, augmentation.mixup)

    ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
    if augmentation.mixup > 0:
        # Its own seed stream (one pair per batch), so that mixup leaves the masks unchanged.
        batch_seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, batch_seeds.batch(2)))
        ds = ds.map(mix)
    return ds.prefetch(tf.data.AUTOTUNE)


def mixup(batch, seed, alpha: float):
    """Mix a batch ``(x, y, w)`` with a permutation of itself (see :class:`Augmentation`).

    ``lam ~ Beta(alpha, alpha)`` is drawn statelessly from ``seed`` (two Gamma draws), as is the
    permutation, so the same seed gives the same mixed batches.
    """
    import tensorflow as tf

    x, y, w = batch
    n = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    g = [tf.random.stateless_gamma([], s, alpha, dtype=tf.float32) for s in (seeds[0], seeds[1])]
    lam = g[0] / (g[0] + g[1])
    perm = tf.argsort(tf.random.stateless_uniform([n], seeds[2]))

    def mix(t):
        t = tf.cast(t, tf.float32)  # one-hot targets come as float64 from numpy
        return lam * t + (1.0 - lam) * tf.gather(t, perm)

    return mix(x), mix(y), mix(w)


def recalibrate_batch_norm(model, x: np.ndarray, batch_size: int, passes: int = 2) -> int:
    """Re-estimate the moving statistics of every BatchNormalization for the model's current
    weights: forward passes in training mode over ``x`` (in order, no augmentation).

    Needed after an EMA of the weights is swapped in: the average is of the trainable weights
    only, so the moving means and variances still describe the raw weights' activations. With
    momentum 0.9 (:data:`keras_hrf.models.blocks.BN_MOMENTUM`) two passes over ~30 batches
    leave under 0.5 % of the old statistics.

    Returns:
        The number of BatchNormalization layers (0: nothing was run).
    """
    norms = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not norms:
        return 0
    for _ in range(passes):
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size], training=True)
    return len(norms)


class ValidationUA(keras.callbacks.Callback):
    """Computes validation UA each epoch; keeps the best weights and stops after ``patience``,
    or, with ``select_best=False``, leaves the last weights (and never stops early).

    Place it after ``keras.callbacks.SwapEMAWeights(swap_on_epoch=True)``: it then validates
    (and keeps) the moving-average weights. Epochs before ``select_from`` (0-based) are
    validated but neither kept nor counted towards ``patience`` (a LayerNorm -> BatchNorm
    annealing still running, :class:`NormAnnealing`: only its final form is deployable).
    """

    def __init__(
        self,
        x_val,
        y_val,
        patience: int,
        progress,
        select_best: bool = True,
        select_from: int = 0,
    ):
        super().__init__()
        self.select_from = int(select_from)
        self.x_val, self.y_val = x_val, y_val
        self.patience = patience if select_best else 0
        self.select_best = select_best
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
        if not self.select_best:
            self.best, self.best_epoch = max(self.best, ua), epoch  # the kept epoch is the last
        elif epoch < self.select_from:
            pass
        elif ua > self.best:
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


class NormAnnealing(keras.callbacks.Callback):
    """Lowers the ``mix`` of every :class:`~keras_hrf.layers.LayerToBatchNorm` from 1 to 0,
    linearly over the first ``steps`` optimiser steps, and holds it at 0 after them.

    ``mix`` is set before each training batch to ``max(0, 1 - step / steps)`` (step 0 first),
    so the last of those steps trains with the LayerNorm share at ``1 / steps`` and every later
    one as pure BatchNormalization; ``mix`` is set to 0 when training ends, however many steps
    ran (with ``selection="best"`` the trainer keeps only epochs after the annealing, which
    :class:`ValidationUA` then restores).
    """

    def __init__(self, layers, steps: int):
        super().__init__()
        self.layers, self.steps, self.step = list(layers), max(1, int(steps)), 0

    def _set(self, value: float) -> None:
        for layer in self.layers:
            layer.mix.assign(value)

    def on_train_batch_begin(self, batch, logs=None):
        self._set(max(0.0, 1.0 - self.step / self.steps))
        self.step += 1

    def on_train_end(self, logs=None):
        self._set(0.0)
