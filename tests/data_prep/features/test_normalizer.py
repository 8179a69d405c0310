"""Normalizer: statistics of the training split, the log floor, JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
from support.signals import P

from data_prep.features import (
    DEFAULT_EXCLUDE_FLOOR,
    FeatureParams,
    Normalizer,
)

# ---------------------------------------------------------------- Normalizer


def test_normalizer_fit_transform_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(10, 50, 8)) * np.arange(1, 9) + np.arange(8) * 3).astype(np.float32)
    p8 = FeatureParams(n_mels=8)
    norm = Normalizer.fit(x, p8)  # no value near the floor: exclusion changes nothing
    assert norm.exclude_floor is DEFAULT_EXCLUDE_FLOOR is False  # the project's one default
    flat = x.reshape(-1, 8).astype(np.float64)
    np.testing.assert_allclose(norm.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std, flat.std(0), rtol=1e-5)
    z = norm.transform(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.reshape(-1, 8).mean(0), 0, atol=1e-4)
    assert norm.feature_fingerprint == p8.fingerprint()

    path = tmp_path / "sub" / "norm.json"
    norm.save(path)
    loaded = Normalizer.load(path)
    np.testing.assert_array_equal(loaded.mean, norm.mean)
    np.testing.assert_array_equal(loaded.std, norm.std)
    assert loaded.to_dict() == norm.to_dict()
    np.testing.assert_array_equal(loaded.transform(x), z)
    assert [p.name for p in path.parent.iterdir()] == ["norm.json"]  # no temp left behind

    with pytest.raises(ValueError, match="unknown Normalizer key"):
        Normalizer.from_dict({**norm.to_dict(), "scale": 1})
    with pytest.raises(ValueError, match="mel bands"):
        norm.transform(np.zeros((3, 4), np.float32))


def test_normalizer_exclude_floor():
    floor = np.float32(P.floor)
    rng = np.random.default_rng(1)
    signal = rng.normal(-5.0, 2.0, size=(20, 100, 64)).astype(np.float32)
    x = signal.copy()
    x[:, 60:] = floor  # floor padding / digital silence
    x[:, :, 63] = floor  # a band without any signal
    with_floor = Normalizer.fit(x, P, exclude_floor=False)
    without = Normalizer.fit(x, P, exclude_floor=True)
    kept = signal[:, :60, :63].reshape(-1, 63).astype(np.float64)
    np.testing.assert_allclose(without.mean[:63], kept.mean(0), rtol=1e-5)
    np.testing.assert_allclose(without.std[:63], kept.std(0), rtol=1e-5)
    assert np.all(with_floor.mean[:63] < without.mean[:63] - 3)  # the spike drags the mean
    # The all-floor band falls back to all-value statistics (std clamped, no division by 0).
    assert without.mean[63] == pytest.approx(floor) and without.std[63] == Normalizer.min_std
    assert np.all(np.isfinite(without.transform(x)))
    np.testing.assert_allclose(with_floor.mean, x.reshape(-1, 64).mean(0, dtype=np.float64))
    with pytest.raises(ValueError, match="FeatureParams"):
        Normalizer.fit(x, None)
    with pytest.raises(ValueError, match="mel bands"):
        Normalizer.fit(x, FeatureParams(n_mels=40))
