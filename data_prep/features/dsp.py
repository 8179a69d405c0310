"""The log-Mel computation: window, mel filter bank, one signal -> fixed-length features.

librosa log-Mel spectrograms parameterised so that a microcontroller computes the same numbers
with CMSIS-DSP (see DESIGN.md, "Features"): 16 kHz audio, a 400-sample periodic Hann window
centred in a 512-point FFT frame, hop 160, no centre padding, magnitude spectrum, 64 Slaney mel
bands, natural log with an offset of 1e-6, then a fixed number of frames. :func:`window` and
:func:`mel_filters` are reused by the device front-end (:mod:`data_prep.device_frontend`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from data_prep.audio import load_audio
from data_prep.features.params import FeatureParams


@functools.lru_cache(maxsize=16)
def window(params: FeatureParams) -> np.ndarray:
    """The analysis window: a periodic Hann of ``win_length`` centred in ``n_fft`` zeros.

    Periodic ("DFT-even") Hann is ``0.5 - 0.5 cos(2 pi n / N)`` for ``n = 0 .. N-1``, what
    ``scipy.signal.get_window("hann", N)`` and librosa use.

    Returns:
        Read-only float64 array of length ``n_fft``. Double precision on purpose: librosa
        multiplies the float32 frames by the window, so a float64 window makes the FFT run in
        double precision, as librosa's own (float64) windows do; a float32 window would switch
        numpy to a single-precision FFT whose rounding noise (~1e-7 of the spectral peak) shows as
        up to 1e-3 differences in near-silent bands. A float32 device casts it without loss that
        matters (relative 6e-8).
    """
    n = np.arange(params.win_length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / params.win_length)
    out = np.zeros(params.n_fft, dtype=np.float64)
    left = (params.n_fft - params.win_length) // 2
    out[left : left + params.win_length] = hann
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def mel_filters(params: FeatureParams) -> np.ndarray:
    """The mel filter bank, ``librosa.filters.mel`` with the parameters' settings.

    Returns:
        Read-only float32 array ``[n_mels, n_fft // 2 + 1]``.
    """
    import librosa

    fb = librosa.filters.mel(
        sr=params.sample_rate,
        n_fft=params.n_fft,
        n_mels=params.n_mels,
        fmin=params.fmin,
        fmax=params.fmax,
        htk=params.mel == "htk",
        norm="slaney",
        dtype=np.float32,
    )
    fb.setflags(write=False)
    return fb


def log_mel(signal: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:  # noqa: B008
    """Log-Mel spectrogram of one signal (all frames, no crop or pad).

    Args:
        signal: 1-D audio at ``params.sample_rate`` (as returned by
            :func:`data_prep.audio.load_audio`). A signal shorter than one frame (``n_fft``
            samples) is zero-padded to one frame, so that every input gives at least one frame.
        params: Feature parameters.

    Returns:
        float32 ``[n_frames, n_mels]``, ``n_frames = 1 + (len - n_fft) // hop_length`` when
        ``center`` is False.

    Raises:
        ValueError: ``signal`` is not 1-D, is empty, or contains NaN/inf.
    """
    import librosa

    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"log_mel expects a non-empty 1-D signal, got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise ValueError("log_mel got a signal with NaN/inf values")
    if signal.size < params.n_fft:
        signal = np.pad(signal, (0, params.n_fft - signal.size))
    spec = librosa.stft(
        signal,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.n_fft,  # the window below is already padded to n_fft
        window=window(params),
        center=params.center,
        pad_mode="constant",
    )
    mag = np.abs(spec)
    if params.power != 1.0:
        mag = mag**params.power
    mel = mel_filters(params) @ mag
    return np.ascontiguousarray(np.log(mel + np.float32(params.log_offset)).T, dtype=np.float32)


def fix_length(feats: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:  # noqa: B008
    """Crop or pad ``[n_frames, n_mels]`` features to ``[params.frames, n_mels]``.

    Longer inputs are cropped per ``params.crop``; shorter ones are padded *at the end* with
    ``params.fill_value`` (the log floor by default, i.e. silence).

    Returns:
        float32 ``[params.frames, n_mels]`` (a new array).
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError(f"fix_length expects [n_frames, n_mels], got shape {feats.shape}")
    n = feats.shape[0]
    if n >= params.frames:
        first = (n - params.frames) // 2 if params.crop == "center" else 0
        return feats[first : first + params.frames].copy()
    out = np.full((params.frames, feats.shape[1]), params.fill_value, dtype=np.float32)
    out[:n] = feats
    return out


def features_of(
    path: str | Path,
    params: FeatureParams = FeatureParams(),  # noqa: B008
    *,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Fixed-length features of one file (load, log-Mel, crop/pad), no cache.

    Raises:
        AudioError: the file cannot be used (see :func:`data_prep.audio.load_audio`).
    """
    signal = load_audio(
        path, params.sample_rate, start=start, end=end, min_duration=params.min_duration
    )
    return fix_length(log_mel(signal, params), params)
