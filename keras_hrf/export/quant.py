"""Affine (de)quantization exactly as TFLite's reference kernels do it.

TFLite's ``QUANTIZE`` (reference ``AffineQuantize``, used by TFLite Micro) computes
``clamp(round(x / scale) + zero_point, -128, 127)`` in float32 with ``TfLiteRound`` =
``std::round``, i.e. round half *away from zero* (numpy's ``np.round`` rounds half to even, which
would differ on exact ties). A device that quantizes its features must do the same.
"""

from __future__ import annotations

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 like TFLite's ``QUANTIZE``: float32 division, round half away, clamp."""
    if not scale > 0:
        raise ValueError(f"quantization scale must be > 0, got {scale!r}")
    q = np.asarray(x, dtype=np.float32) / np.float32(scale)
    if not np.all(np.isfinite(q)):
        raise ValueError("cannot quantize NaN/inf values")
    # std::round: x - trunc(x) is exact in floating point, so the tie test is too (floor(x + 0.5)
    # is not: 0.49999997 + 0.5 rounds up to 1.0 in float32).
    whole = np.trunc(q)
    q = whole + np.sign(q) * (np.abs(q - whole) >= np.float32(0.5))
    return np.clip(q + int(zero_point), INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32: ``(q - zero_point) * scale``."""
    return ((np.asarray(q, dtype=np.int32) - int(zero_point)) * np.float32(scale)).astype(
        np.float32
    )
