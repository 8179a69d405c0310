"""Helpers that make test models look trained (shared by the export and firmware tests)."""

from __future__ import annotations

import keras
import numpy as np


def train_briefly(model, x, y):
    """A few optimiser steps, so that weights and activation ranges are not the initial ones.

    Eagerly: for 4 steps, tracing the train step would cost 3-4x the steps themselves.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    model.fit(x, y, batch_size=16, epochs=1, steps_per_epoch=4, verbose=0)
    return model


def perturb(model, seed=1):
    """Add small noise to every weight: no zero biases or unit gains left (the converter shares
    identical constant buffers, which would make an untrained model's flatbuffer smaller)."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + 0.01 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model
