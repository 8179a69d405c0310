"""Fixtures of the feature tests: real audio files written once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from support.signals import P, speechlike

from data_prep.features import log_mel


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    """A few real WAV/FLAC files of different lengths; also warms librosa up once per session."""
    root = tmp_path_factory.mktemp("feature_audio")
    lengths = {"short_1s": 1.0, "mid_2p5s": 2.5, "long_4s": 4.0, "tiny_0p02s": 0.02}
    for i, (name, secs) in enumerate(lengths.items()):
        sf.write(root / f"{name}.wav", speechlike(16000, secs, seed=i), 16000, subtype="PCM_16")
    sf.write(root / "flac_3s.flac", speechlike(16000, 3.0, seed=9), 16000)
    # Bad files for the skip/raise tests.
    sf.write(root / "silent.wav", np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 10)
    nan = speechlike(16000, 1.0, seed=5)
    nan[10] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    log_mel(speechlike(16000, 0.5, seed=0), P)  # numba / lazy-import warm-up
    return root


@pytest.fixture()
def good_manifest(audio_dir) -> pd.DataFrame:
    names = ["short_1s.wav", "mid_2p5s.wav", "long_4s.wav", "flac_3s.flac"]
    return pd.DataFrame({"path": [str(audio_dir / n) for n in names], "label": list("abcd")})
