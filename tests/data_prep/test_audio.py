"""Tests of data_prep.audio.load_audio on real files written with soundfile."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from data_prep.audio import load_audio
from data_prep.errors import AudioError


def tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mono_16k_roundtrip(tmp_path):
    x = tone(16000, 0.5)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and y.shape == x.shape
    # 16-bit PCM quantisation only.
    np.testing.assert_allclose(y, x, atol=1.0 / 32768)


def test_flac_is_read(tmp_path):
    x = tone(16000, 0.3)
    path = tmp_path / "a.flac"
    sf.write(path, x, 16000)
    np.testing.assert_allclose(load_audio(path), x, atol=1.0 / 32768)


def test_stereo_is_mixed_to_mean(tmp_path):
    left, right = tone(16000, 0.3, 440), tone(16000, 0.3, 1000, amp=0.25)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


def test_48k_is_resampled(tmp_path):
    path = tmp_path / "hi.wav"
    sf.write(path, tone(48000, 1.0, 1000), 48000, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert y.shape == (16000,)
    # soxr compensates its filter delay: the output is the same tone on the 16 kHz grid.
    expected = tone(16000, 1.0, 1000)
    np.testing.assert_allclose(y[200:-200], expected[200:-200], atol=2e-3)


def test_segment_start_end(tmp_path):
    x = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    path = tmp_path / "seg.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, start=0.25, end=0.5), x[4000:8000])
    np.testing.assert_array_equal(load_audio(path, start=0.5), x[8000:])
    # An end past the file is clipped; NaN (pandas' missing value) means "not given".
    np.testing.assert_array_equal(load_audio(path, start=0.75, end=9.0), x[12000:])
    np.testing.assert_array_equal(load_audio(path, start=float("nan"), end=float("nan")), x)


def test_invalid_arguments_are_value_errors(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(16000, 0.5), 16000)
    with pytest.raises(ValueError, match="after its start"):
        load_audio(path, start=0.3, end=0.2)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, 0)
    with pytest.raises(ValueError, match="start"):
        load_audio(path, start=-1.0)


def write_bad(tmp_path, kind: str):
    """One unusable file of each kind; returns (path, expected message fragment)."""
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return tmp_path / "does_not_exist.wav", "file not found"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
        return path, "unreadable or corrupt"
    if kind == "not_audio":
        path = tmp_path / "notes.flac"
        path.write_text("this is not audio\n")
        return path, "unreadable or corrupt"
    if kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000)
        return path, "empty audio"
    if kind == "nan":
        x = tone(16000, 0.5)
        x[100] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
        return path, "NaN/inf"
    if kind == "inf":
        x = tone(16000, 0.5)
        x[7] = np.inf
        sf.write(path, x, 16000, subtype="FLOAT")
        return path, "NaN/inf"
    if kind == "silent":
        sf.write(path, np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
        return path, "silent audio"
    if kind == "short":
        sf.write(path, tone(16000, 0.05), 16000)
        return path, "too short"
    if kind == "segment_past_end":
        sf.write(path, tone(16000, 0.5), 16000)
        return path, "past the end"
    raise AssertionError(kind)


BAD_KINDS = [
    "missing",
    "corrupt",
    "not_audio",
    "empty",
    "nan",
    "inf",
    "silent",
    "short",
    "segment_past_end",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_audio_raises_audio_error_with_reason(tmp_path, kind):
    path, fragment = write_bad(tmp_path, kind)
    start = 2.0 if kind == "segment_past_end" else None
    with pytest.raises(AudioError, match=fragment) as info:
        load_audio(path, start=start)
    message = str(info.value)
    # The message names the file and says what to do.
    assert str(path) in message
    assert any(w in message for w in ("remove", "re-export", "check", "fix", "lower"))


def test_min_duration_is_configurable(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, tone(16000, 0.05), 16000)
    assert load_audio(path, min_duration=0.01).shape == (800,)
