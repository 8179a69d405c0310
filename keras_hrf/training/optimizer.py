"""The optimiser of a run: AdamW (or Adam) over a warm-up + cosine schedule, with an optional
exponential moving average of the weights.

:func:`make_optimizer` builds Keras' own classes, so a saved ``model.keras`` compiles on load
without anything of this project imported. It evaluates the learning-rate schedule once per
step: Keras' TensorFlow backend reads ``optimizer.learning_rate`` again for every variable in
its decoupled weight decay, and each read of a schedule puts another copy of it (a ``tf.cond``
between warm-up and cosine, two branch graphs) into the traced train step. For a one-block
test model that was 25 copies, ~30 % of the train step's trace, which is most of a short
run's time.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_hrf.training.config import TrainConfig


def ema_decay(decay: float, total_steps: int) -> float:
    """The EMA decay a run uses: ``decay``, but at most ``1 - 4 / total_steps``.

    Keras' weight average starts from the initial weights and is not bias-corrected, so an
    average over more steps than a short run has is mostly the initialisation (after 120 steps
    at 0.998 the initial weights still carry 0.998^120 = 79 % of it). Capping the horizon
    ``1 / (1 - decay)`` at a quarter of the run's steps leaves long runs alone (RAVDESS, 100
    epochs of 32 steps: 0.998 is kept) and makes short ones average their last quarter.
    """
    if not decay:
        return 0.0
    return min(decay, max(0.0, 1.0 - 4.0 / max(1, total_steps)))


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> Any:
    """The run's learning rate: a float (``schedule="constant"``) or Keras' ``CosineDecay``
    with a linear warm-up of ``config.warmup_epochs`` (decaying to 0 at ``config.epochs``)."""
    if config.schedule != "cosine":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        0.0 if config.warmup_epochs else config.learning_rate,
        decay_steps=max(1, steps_per_epoch * (config.epochs - config.warmup_epochs)),
        warmup_target=config.learning_rate if config.warmup_epochs else None,
        warmup_steps=steps_per_epoch * config.warmup_epochs,
    )


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Keras ``AdamW`` (``Adam`` when ``config.weight_decay`` is 0) for ``config``.

    Args:
        config: The run's configuration (learning rate, schedule, warm-up, weight decay, EMA).
        steps_per_epoch: Optimiser steps per epoch (the schedule's and the EMA's time base).

    Returns:
        The optimiser, not built; the schedule is evaluated once per step (module docstring).
    """
    lr = learning_rate(config, steps_per_epoch)
    decay = ema_decay(config.ema, steps_per_epoch * config.epochs)
    ema = {"use_ema": True, "ema_momentum": decay} if decay else {}
    optimizer = (
        keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **ema)
        if config.weight_decay
        else keras.optimizers.Adam(lr, **ema)
    )
    return schedule_once_per_step(optimizer)


def schedule_once_per_step(
    optimizer: keras.optimizers.Optimizer,
) -> keras.optimizers.Optimizer:
    """Make ``optimizer`` evaluate its learning-rate schedule once per step; returns it.

    During one step's update (weight decay, the update rule, the EMA) the schedule is replaced
    by its value at that step, then put back, so every part of the step reads the same tensor
    instead of rebuilding the schedule. The values are the same (the step counter only moves
    after the update), so the weights are too. The class and its config stay Keras' own.
    An optimiser with a constant learning rate is returned unchanged.
    """
    schedule = optimizer._learning_rate
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return optimizer
    keras_update = optimizer._backend_apply_gradients

    def update_with_one_schedule_value(grads, trainable_variables):
        optimizer._learning_rate = schedule(optimizer.iterations)
        try:
            return keras_update(grads, trainable_variables)
        finally:
            optimizer._learning_rate = schedule

    optimizer._backend_apply_gradients = update_with_one_schedule_value
    return optimizer
