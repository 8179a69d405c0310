"""Training and run folders on the synthetic corpus."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from data_prep import encode_labels, splits
from keras_hrf.export import runs
from keras_hrf.training import TrainConfig, fit, load_run
from keras_hrf.training.metrics import classification_metrics, participant_vote


@pytest.fixture(scope="session")
def split(synthetic_features):
    _, manifest, _ = synthetic_features
    return splits.speaker_kfold(manifest, n_folds=3, seed=0)[0]


@pytest.fixture(scope="session")
def hrf_run(synthetic_features, split, tiny):
    feats, manifest, params = synthetic_features
    # One epoch of quantization-aware fine-tuning of the merged model, too (qat_epochs).
    cfg = TrainConfig(hrf={}, epochs=3, model_overrides=tiny, seed=1, qat_epochs=1)
    return fit(cfg, feats, manifest, split, feature_params=params, progress=False)


def test_fit_trains_merges_and_reports(hrf_run, synthetic_features, split):
    m = hrf_run.metrics
    assert m.merge_max_abs_diff < 1e-4
    assert m.test.ua == m.test_merged.ua
    assert m.params_deployed == m.params_plain < m.params_train
    assert list(hrf_run.history.columns[:2]) == ["epoch", "loss"]
    assert "val_ua" in hrf_run.history and len(hrf_run.history) == 3
    assert m.test.n == len(split.test)
    # QAT tuned a copy of the merged model: same layers, other weights, its own test figures.
    deployed = hrf_run.deployed
    assert [type(a) for a in deployed.layers] == [type(b) for b in hrf_run.merged.layers]
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(deployed.get_weights(), hrf_run.merged.get_weights(), strict=True)
    )
    assert m.test_deployed.n == len(split.test) and len(m.qat_history["loss"]) == 1
    # Normaliser comes from the training split only.
    feats = synthetic_features[0]
    np.testing.assert_allclose(
        hrf_run.normalizer.mean, feats[split.train].mean(axis=(0, 1)), rtol=1e-4, atol=1e-4
    )


def test_same_seed_same_weights(synthetic_features, split, tiny):
    feats, manifest, params = synthetic_features
    cfg = TrainConfig(epochs=1, model_overrides=tiny, seed=5)
    a = fit(cfg, feats, manifest, split, feature_params=params, progress=False)
    b = fit(cfg, feats, manifest, split, feature_params=params, progress=False)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_run_folder_round_trip(hrf_run, tmp_path):
    out = runs.save_run(hrf_run, tmp_path / "run")
    for name in (
        "model.keras",
        "model_merged.keras",
        "model_deployed.keras",
        "history.csv",
        "metrics.json",
        "confusion.png",
        "curves.png",
        "config.json",
        "REPORT.md",
        "device/model_int8.tflite",
        "device/model_meta.json",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["int8"]["agreement_with_float"] <= 1
    loaded = load_run(out)
    x = hrf_run.predictions["x_test"][:4]
    np.testing.assert_allclose(
        loaded.merged.predict(x, verbose=0), hrf_run.merged.predict(x, verbose=0), atol=1e-6
    )
    assert loaded.labels == hrf_run.labels
    # The device files come from the deployed (QAT-tuned) model.
    np.testing.assert_allclose(
        loaded.deployed.predict(x, verbose=0), hrf_run.deployed.predict(x, verbose=0), atol=1e-6
    )
    assert "QAT-tuned" in (out / "REPORT.md").read_text()
    assert not list(tmp_path.glob(".run.tmp-*"))  # no leftovers of the atomic write
    # What the weights depend on beyond the config: the versions that trained them.
    env = json.loads((out / "config.json").read_text())["environment"]
    assert env["tensorflow"] == tf.__version__ and env["numpy"] == np.__version__


def test_metrics_against_hand_computed_values():
    m = classification_metrics([0, 0, 0, 1], [0, 0, 1, 1], ["a", "b", "c"])
    assert m["wa"] == 0.75 and m["ua"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    v = participant_vote(["p", "p", "p", "q"], [1, 1, 1, 0], [1, 0, 1, 1], ["no", "yes"])
    assert v["participants"] == 2 and v["wa"] == 0.5


def test_config_and_label_errors():
    with pytest.raises(ValueError, match="unknown model family"):
        TrainConfig(family="lstm")
    with pytest.raises(ValueError, match="unknown site"):
        TrainConfig(hrf={"sites": ["conv"]})
    import pandas as pd

    with pytest.raises(ValueError, match="not among the classes"):
        encode_labels(pd.Series(["happy", "bored"]), ["happy", "sad"])


def test_train_config_takes_the_normalisers_default():
    """One default for leaving the log floor out of the statistics, stated once (data_prep)."""
    from data_prep.features import DEFAULT_EXCLUDE_FLOOR

    assert TrainConfig().exclude_floor is DEFAULT_EXCLUDE_FLOOR


def test_mixup_is_deterministic_for_a_seed_and_mixes_targets_and_weights():
    from keras_hrf.training.pipeline import Augmentation, train_dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 20, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(12) % 3]
    w = np.linspace(0.5, 1.5, 12).astype("float32")
    aug = Augmentation(time_masks=0, freq_masks=0, mixup=0.4)

    def batches(seed):
        ds = train_dataset(x, y, w, batch_size=6, seed=seed, augmentation=aug)
        return [tuple(t.numpy() for t in b) for b in ds]

    a, b, c = batches(3), batches(3), batches(4)
    for (xa, ya, _), (xb, yb, _) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(p[0], q[0]) for p, q in zip(a, c, strict=True))
    for _, yb, wb in a:
        np.testing.assert_allclose(yb.sum(1), 1.0, rtol=1e-6)  # mixed one-hot targets
        assert np.any((yb > 0) & (yb < 1))  # ... mixed (lam is not 0 or 1)
        assert np.all((wb >= 0.5 - 1e-6) & (wb <= 1.5 + 1e-6))


def test_time_shift_moves_the_window_and_fills_with_the_padding_row():
    """Each example is its input moved by one offset in [-s, s], the uncovered frames equal to
    the padding row; the same seed gives the same shifts, and the masks of runs without a shift
    are unchanged by the option's existence."""
    from keras_hrf.training.pipeline import Augmentation, train_dataset

    frames, mels, s = 40, 3, 6
    x = np.tile(np.arange(frames, dtype="float32")[None, :, None], (16, 1, mels)) + 1.0
    y = np.eye(2, dtype="float32")[np.arange(16) % 2]
    w = np.ones(16, "float32")
    pad = np.array([-7.0, -8.0, -9.0], "float32")
    aug = Augmentation(time_shift=s, time_masks=0, freq_masks=0)

    def run(seed, augmentation=aug):
        ds = train_dataset(
            x, y, w, batch_size=16, seed=seed, augmentation=augmentation, pad_row=pad
        )
        return next(iter(ds))[0].numpy()

    out = run(5)
    shifts = set()
    for ex in out:
        inside = ex[:, 0] > 0
        starts = ex[inside, 0] - 1 - np.flatnonzero(inside)  # source frame - output frame
        assert len(set(starts.tolist())) == 1  # one offset per example
        shift = -int(starts[0])
        assert abs(shift) <= s and inside.sum() == frames - abs(shift)
        uncovered = np.broadcast_to(pad, (frames - inside.sum(), mels))
        np.testing.assert_array_equal(ex[~inside], uncovered)
        shifts.add(shift)
    assert len(shifts) > 3  # offsets differ between examples
    np.testing.assert_array_equal(out, run(5))
    masks = Augmentation(time_shift=0, time_masks=2, freq_masks=1)
    np.testing.assert_array_equal(run(5, masks), run(5, masks))
    with pytest.raises(ValueError, match="time_shift"):
        TrainConfig(time_shift=-1)


def test_batch_norm_recalibration_follows_the_current_weights():
    """After recalibration the moving mean of a BatchNorm is the mean of its input over the data
    (what EMA weights need: the average leaves the statistics of the raw weights behind)."""
    import keras

    from keras_hrf.training.pipeline import recalibrate_batch_norm

    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    dense = keras.layers.Dense(4, name="d")
    out = keras.layers.BatchNormalization(momentum=0.9, name="bn")(dense(inp))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(2.0, 1.0, size=(2048, 6)).astype("float32")
    bn = model.get_layer("bn")
    assert np.allclose(bn.moving_mean.numpy(), 0.0)
    assert recalibrate_batch_norm(model, x, batch_size=32, passes=2) == 1
    target = dense(x).numpy().mean(0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), target, atol=0.05 * np.abs(target).max())
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    assert recalibrate_batch_norm(plain, x, batch_size=32) == 0


def test_ema_weights_are_what_is_merged_and_exported(synthetic_features, split, tiny):
    """With ``ema`` the kept weights are the average: the merged model predicts what the EMA
    model does, and the average differs from the raw last weights."""
    feats, manifest, params = synthetic_features
    cfg = TrainConfig(
        hrf={},
        epochs=2,
        model_overrides=tiny,
        seed=2,
        ema=0.5,
        selection="last",
        mixup=0.4,
        batch_size=16,
    )  # ema 0.5 and batch 16: enough steps that the short-run cap (ema_decay) keeps 0.5
    r = fit(cfg, feats, manifest, split, feature_params=params, progress=False)
    x = r.predictions["x_test"][:8]
    np.testing.assert_allclose(
        r.merged.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-4
    )
    assert r.metrics.best_epoch == r.metrics.epochs_run == 2  # "last": the end of the schedule
    # The model holds the optimizer's moving average (finalised into it at the end of fit) ...
    average = [v.numpy() for v in r.model.optimizer._model_variables_moving_average]
    for a, b in zip(average, [v.numpy() for v in r.model.trainable_variables], strict=True):
        np.testing.assert_array_equal(a, b)
    # ... which is not where the same run without the average ends.
    plain = fit(
        dataclasses.replace(cfg, ema=0.0),
        feats,
        manifest,
        split,
        feature_params=params,
        progress=False,
    )
    assert np.abs(plain.merged.predict(x, verbose=0) - r.merged.predict(x, verbose=0)).max() > 1e-3


def test_validation_selects_no_epoch_before_select_from():
    import keras

    from keras_hrf.training.pipeline import ValidationUA

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    model.compile(optimizer="adam", loss="mse")
    x, y = np.zeros((4, 3), "float32"), np.array([0, 1, 0, 1])
    cb = ValidationUA(x, y, patience=2, progress=None, select_from=2)
    cb.set_model(model)
    for epoch in range(4):  # the same UA every epoch: the first selectable one is kept
        cb.on_epoch_end(epoch, {})
        assert not model.stop_training  # patience counts from select_from on
        if epoch < 2:
            assert cb.best_weights is None
    assert cb.best_epoch == 2
