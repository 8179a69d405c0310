"""FeatureParams: the device contract, JSON round trip, fingerprint, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.signals import P

from data_prep.features import (
    FeatureParams,
)

# ---------------------------------------------------------------- FeatureParams


def test_defaults_are_the_device_contract():
    assert P.to_dict() == {
        "sample_rate": 16000,
        "n_fft": 512,
        "win_length": 400,
        "hop_length": 160,
        "center": False,
        "power": 1.0,
        "n_mels": 64,
        "fmin": 0.0,
        "fmax": 8000.0,
        "mel": "slaney",
        "log_offset": 1e-6,
        "frames": 300,
        "crop": "center",
        "pad_value": None,
        "min_duration": 0.1,
    }
    assert P.fill_value == pytest.approx(np.log(1e-6))
    # Golden fingerprint: it names cache folders and travels with exported models, so a change
    # must be deliberate (bump FEATURE_ALGORITHM_VERSION or change a default knowingly).
    assert P.fingerprint() == "0e9867852e677419"


def test_params_json_roundtrip_and_fingerprint():
    p = FeatureParams(n_mels=40, crop="start", pad_value=0.0, fmax=7600)
    q = FeatureParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q == p and q.fingerprint() == p.fingerprint()
    # Numeric types are normalised: 0 and 0.0 are the same parameter.
    assert FeatureParams(fmin=0, fmax=8000).fingerprint() == P.fingerprint()
    assert FeatureParams(n_mels=40).fingerprint() != P.fingerprint()
    assert FeatureParams.from_dict({"n_mels": 40}) == FeatureParams(n_mels=40)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown FeatureParams key\(s\) \['n_mel'\]"):
        FeatureParams.from_dict({"n_mel": 40})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_fft": 500}, "power of two"),
        ({"win_length": 1024}, "win_length"),
        ({"hop_length": 0}, "hop_length"),
        ({"n_mels": 300}, "n_mels"),
        ({"fmax": 9000.0}, "fmax"),
        ({"fmin": 8000.0}, "fmin"),
        ({"power": 3.0}, "power"),
        ({"mel": "bark"}, "mel"),
        ({"log_offset": 0.0}, "log_offset"),
        ({"crop": "end"}, "crop"),
        ({"frames": 2.5}, "frames"),
        ({"center": "no"}, "center"),
        ({"pad_value": float("nan")}, "pad_value"),
        ({"min_duration": -1}, "min_duration"),
    ],
)
def test_params_validation(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        FeatureParams(**kwargs)
