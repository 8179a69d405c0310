"""Session-wide fixtures shared by the whole suite.

TensorFlow import and librosa's first feature call are slow, so expensive artefacts (the synthetic
corpus, its features, tiny trained models) are built once per session here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Environment variable that points at the RAVDESS copy (../shared/data/ravdess_speech_16k);
#: tests that need real data skip only when it is unset.
RAVDESS_ENV = "KERAS_HRF_RAVDESS"


@pytest.fixture(scope="session")
def ravdess_root() -> Path:
    """Root of the real RAVDESS speech corpus, or skip when the variable is unset."""
    value = os.environ.get(RAVDESS_ENV)
    if not value:
        pytest.skip(f"{RAVDESS_ENV} is not set (path of ravdess_speech_16k)")
    root = Path(value)
    if not root.is_dir():
        pytest.fail(f"{RAVDESS_ENV}={value} is set but is not a folder")
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic corpus (real 16 kHz WAV files) shared by the session."""
    from data_prep import synthetic

    out = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(out, speakers=6, per_class=4, seed=0)
    return out
