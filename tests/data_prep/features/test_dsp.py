"""The log-Mel computation against librosa's own high-level API."""

from __future__ import annotations

import librosa
import numpy as np
from support.signals import P, reference_log_mel, speechlike

from data_prep.features import (
    FeatureParams,
    fix_length,
    log_mel,
    mel_filters,
    window,
)

# ---------------------------------------------------------------- computation


def test_window_is_periodic_hann_centred_in_fft_frame():
    w = window(P)
    assert w.shape == (512,) and w.dtype == np.float64
    assert not w[:56].any() and not w[456:].any()
    expected = librosa.util.pad_center(librosa.filters.get_window("hann", 400), size=512)
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)


def test_mel_filters_match_librosa():
    fb = mel_filters(P)
    assert fb.shape == (64, 257) and fb.dtype == np.float32
    expected = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=0.0, fmax=8000.0)
    np.testing.assert_allclose(fb, expected, rtol=1e-6, atol=1e-9)


def test_log_mel_matches_independent_librosa(audio_dir):
    y = speechlike(16000, 2.0, seed=3)
    feats = log_mel(y, P)
    assert feats.dtype == np.float32
    assert feats.shape == (1 + (len(y) - 512) // 160, 64)
    np.testing.assert_allclose(feats, reference_log_mel(y, P), rtol=0, atol=1e-5)


def test_log_mel_power_and_mel_options(audio_dir):
    y = speechlike(16000, 1.0, seed=4)
    p = FeatureParams(power=2.0, n_mels=40, fmin=20.0, fmax=7600.0)
    np.testing.assert_allclose(log_mel(y, p), reference_log_mel(y, p), rtol=0, atol=1e-5)


def test_short_signal_gives_one_frame(audio_dir):
    feats = log_mel(np.full(100, 0.1, np.float32), P)
    assert feats.shape == (1, 64)


def test_fix_length_crop_and_pad():
    x = np.arange(500 * 2, dtype=np.float32).reshape(500, 2)
    p = FeatureParams(frames=300)
    np.testing.assert_array_equal(fix_length(x, p), x[100:400])
    np.testing.assert_array_equal(fix_length(x, FeatureParams(crop="start")), x[:300])
    short = fix_length(x[:10], p)
    assert short.shape == (300, 2)
    np.testing.assert_array_equal(short[:10], x[:10])
    assert np.all(short[10:] == np.float32(np.log(1e-6)))  # silence, not 0
    assert np.all(fix_length(x[:10], FeatureParams(pad_value=-5.0))[10:] == -5.0)
