"""TFLite's int8 affine quantization, bit-exact, and its rounding: what a device's input stage does.

TFLite's ``QUANTIZE`` (reference ``AffineQuantize``, used by TFLite Micro) computes
``clamp(round(x / scale) + zero_point, -128, 127)`` in float32 with ``TfLiteRound`` =
``std::round``, i.e. round half *away from zero* (numpy's ``np.round`` rounds half to even, which
would differ on exact ties). The exporter, the device front-end twin and the fake quantization of
quantization-aware training all round with :func:`round_half_away`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: Any, xp: Any = np) -> Any:
    """``std::round`` / ``roundf``: round half away from zero.

    Args:
        x: Values (a NumPy array, or a tensor of ``xp``).
        xp: The array namespace: ``numpy`` (default) or ``keras.ops`` (fake quantization in the
            forward pass of a model); both have ``abs``, ``floor``, ``sign`` and ``where``.

    Returns:
        The rounded values, same type and dtype as ``x``. The tie test is exact: ``|x| -
        floor(|x|)`` is exact in floating point, while ``floor(|x| + 0.5)`` is not (in float32,
        0.49999997 + 0.5 rounds to 1.0).
    """
    if xp is np:
        x = np.asarray(x)
    a = xp.abs(x)
    whole = xp.floor(a)
    return xp.sign(x) * xp.where(a - whole >= 0.5, whole + 1, whole)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 like TFLite's ``QUANTIZE``: float32 division, round half away, clamp."""
    if not scale > 0:
        raise ValueError(f"quantization scale must be > 0, got {scale!r}")
    q = np.asarray(x, dtype=np.float32) / np.float32(scale)
    if not np.all(np.isfinite(q)):
        raise ValueError("cannot quantize NaN/inf values")
    return np.clip(round_half_away(q) + int(zero_point), INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32: ``(q - zero_point) * scale``."""
    return ((np.asarray(q, dtype=np.int32) - int(zero_point)) * np.float32(scale)).astype(
        np.float32
    )
