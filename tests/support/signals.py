"""Test signals shared by the feature and front-end tests."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from data_prep.features import FeatureParams

P = FeatureParams()
REPO = Path(__file__).resolve().parents[2]


def speechlike(rate: int, seconds: float, seed: int, top_hz: float = 7000.0) -> np.ndarray:
    """A band-limited test signal: random sinusoids below ``top_hz`` under a syllable envelope.

    Built analytically, so the same signal can be written at any sample rate exactly.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(rate * seconds))) / rate
    freqs = rng.uniform(80.0, top_hz, 40)
    phases = rng.uniform(0, 2 * np.pi, 40)
    amps = rng.uniform(0.2, 1.0, 40) / np.sqrt(freqs / 80.0)
    x = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    # Scale by the bound sum(amps), not by the sampled peak, which differs between rates.
    return (0.9 * x * env / amps.sum()).astype(np.float32)


def reference_log_mel(y: np.ndarray, params: FeatureParams) -> np.ndarray:
    """The features written independently with librosa's high-level API."""
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=params.sample_rate,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window="hann",
        center=False,
        power=params.power,
        n_mels=params.n_mels,
        fmin=params.fmin,
        fmax=params.fmax,
        htk=False,
        norm="slaney",
    )
    return np.log(mel + params.log_offset).T
