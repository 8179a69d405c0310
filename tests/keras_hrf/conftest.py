"""Fixtures for keras_hrf tests that need real (synthetic) features."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    """Preset overrides for a tiny model: keeps training tests fast (presets are tested in
    models/)."""
    return {"d_model": 16, "ffn_dim": 32, "num_heads": 2, "num_blocks": 1}


@pytest.fixture(scope="session")
def synthetic_features(synthetic_root, tmp_path_factory):
    """(features [N, 300, 64], manifest, params) of the session's synthetic corpus."""
    from data_prep import load_features

    cache = tmp_path_factory.mktemp("feature_cache")
    return load_features("synthetic", synthetic_root, cache, progress=False)
