"""The run's optimiser: one evaluation of the schedule per step, Keras' weights and config."""

import keras
import numpy as np
import pytest

from keras_hrf.training import TrainConfig
from keras_hrf.training.optimizer import ema_decay, make_optimizer, schedule_once_per_step


class CountedCosine(keras.optimizers.schedules.CosineDecay):
    """Keras' schedule, counting how often it is evaluated (each is a copy in a traced step)."""

    calls = 0

    def __call__(self, step):
        CountedCosine.calls += 1
        return super().__call__(step)


def _train(optimizer, steps=6):
    keras.utils.set_random_seed(3)
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(4, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(4)(hidden)))
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)  # as fit does: the train step is traced once
    x = np.random.default_rng(0).normal(size=(8 * steps, 5)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8 * steps, 3)).astype("float32")
    CountedCosine.calls = 0
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model, CountedCosine.calls


def _adamw():
    schedule = CountedCosine(0.0, decay_steps=4, warmup_target=0.01, warmup_steps=2)
    return keras.optimizers.AdamW(schedule, weight_decay=0.1, use_ema=True, ema_momentum=0.5)


def test_one_schedule_evaluation_per_step_and_the_same_weights_as_keras():
    keras_model, keras_calls = _train(_adamw())
    model, calls = _train(schedule_once_per_step(_adamw()))
    # Keras reads the schedule once for each of the 6 variables' weight decay, plus the update.
    assert keras_calls == 7 and calls == 1  # one traced step
    for a, b in zip(keras_model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The schedule is back in place: the config (what model.keras stores) is Keras' own.
    assert isinstance(model.optimizer._learning_rate, CountedCosine)
    config, keras_config = model.optimizer.get_config(), keras_model.optimizer.get_config()
    assert {**config, "name": None} == {**keras_config, "name": None}  # names: adam_w, adam_w_1
    assert type(model.optimizer) is keras.optimizers.AdamW


def test_make_optimizer_follows_the_config():
    steps = 10
    opt = make_optimizer(TrainConfig(epochs=20, warmup_epochs=2, weight_decay=0.05, ema=0.9), steps)
    assert type(opt) is keras.optimizers.AdamW and opt.use_ema and opt.ema_momentum == 0.9
    lr = opt._learning_rate
    assert float(lr(0)) == 0.0 and float(lr(2 * steps)) == pytest.approx(1e-3)  # warm-up peak
    assert float(lr(20 * steps)) == pytest.approx(0.0, abs=1e-9)  # cosine to 0 at the end
    plain = make_optimizer(TrainConfig(weight_decay=0.0, ema=0.0, schedule="constant"), steps)
    assert type(plain) is keras.optimizers.Adam and not plain.use_ema
    assert float(plain.learning_rate) == pytest.approx(TrainConfig().learning_rate)


def test_ema_decay_is_capped_to_a_quarter_of_a_short_run():
    """An average over more steps than the run has would be mostly the initial weights."""
    assert ema_decay(0.998, 32 * 100) == 0.998  # RAVDESS, 100 epochs: unchanged
    assert ema_decay(0.998, 120) == pytest.approx(1 - 4 / 120)  # the quick demo
    assert 1 / (1 - ema_decay(0.999, 400)) == pytest.approx(100)
    assert ema_decay(0.0, 10) == 0.0 and ema_decay(0.998, 2) == 0.0
