"""Fake quantization that mirrors TFLite's int8 scheme, for quantization-aware training.

TFLite's full-integer scheme (what the converter writes and LiteRT / TFLite Micro run):

- weights per output channel, symmetric, to ``[-127, 127]`` with ``scale = max|w| / 127`` and
  round-half-away-from-zero (``std::round``);
- activations per tensor, asymmetric, to ``[-128, 127]``: the calibrated range is widened to
  contain 0, ``scale = (max - min) / 255`` and the zero point is ``-128 - min / scale`` rounded
  (so that 0.0 is exactly representable); values are quantized as ``round(x / scale) + zp``,
  again rounding half away from zero, and clamped.

The functions here compute ``dequantize(quantize(x))`` in float with a straight-through
estimator, so gradients flow as if the rounding were the identity (and, for activations, are zero
outside the representable range, which is what clamping does).
"""

from __future__ import annotations

from keras import ops

from data_prep.int8 import INT8_MAX as QMAX
from data_prep.int8 import INT8_MIN as QMIN
from data_prep.int8 import round_half_away


def _round_half_away(x):
    # TFLite rounds half away from zero (std::round), not half to even like ops.round: the one
    # rounding function of the project, in keras ops.
    return round_half_away(x, ops)


def fake_quant_per_channel(w, axis: int = -1, bits: int = 8):
    """Symmetric per-channel fake quantization of a weight tensor (straight-through gradient).

    Args:
        w: Weight tensor, e.g. a Dense kernel ``(d, units)``.
        axis: The output-channel axis (one scale per index along it).
        bits: Bit width; int8 uses the symmetric range ``[-127, 127]``.

    Returns:
        A tensor of ``w``'s shape and dtype holding ``round(w / s) * s`` per channel.
    """
    qmax = float(2 ** (bits - 1) - 1)
    axis = axis % len(w.shape)
    reduce_axes = tuple(i for i in range(len(w.shape)) if i != axis)
    max_abs = ops.max(ops.abs(w), axis=reduce_axes, keepdims=True)
    scale = ops.maximum(max_abs, 1e-12) / qmax
    q = ops.clip(_round_half_away(w / scale), -qmax, qmax) * scale
    # Straight-through estimator: the forward value is q, the gradient is that of w.
    return w + ops.stop_gradient(q - w)


def activation_qparams(range_min, range_max):
    """TFLite's per-tensor int8 ``(scale, zero_point)`` for a calibrated range.

    Works on Python floats, NumPy values and backend tensors alike. The range is widened to
    contain 0 first; an empty range (``min == max == 0``) gets scale 1 (nothing to represent).

    Returns:
        ``(scale, zero_point)``; the zero point is an integer-valued float in ``[-128, 127]``.
    """
    lo = ops.minimum(ops.cast(range_min, "float32"), 0.0)
    hi = ops.maximum(ops.cast(range_max, "float32"), 0.0)
    span = hi - lo
    scale = ops.where(span > 0, span / float(QMAX - QMIN), 1.0)
    zero_point = ops.clip(_round_half_away(QMIN - lo / scale), QMIN, QMAX)
    return scale, zero_point


def fake_quant_activation(x, range_min, range_max):
    """Asymmetric per-tensor int8 fake quantization of an activation (straight-through).

    Args:
        x: Activation tensor.
        range_min: Calibrated minimum (scalar).
        range_max: Calibrated maximum (scalar).

    Returns:
        ``(clip(round(x / s) + zp, -128, 127) - zp) * s`` with the TFLite ``s, zp`` of the
        range; the gradient is 1 inside the representable range and 0 outside.
    """
    scale, zp = activation_qparams(range_min, range_max)
    scale = ops.cast(scale, x.dtype)
    zp = ops.cast(zp, x.dtype)
    lo = (QMIN - zp) * scale
    hi = (QMAX - zp) * scale
    clipped = ops.clip(x, lo, hi)
    q = ops.clip(_round_half_away(x / scale) + zp, QMIN, QMAX)
    return clipped + ops.stop_gradient((q - zp) * scale - clipped)


def fake_quant_fixed(x, scale: float, zero_point: int):
    """Fake quantization with fixed int8 parameters (e.g. softmax: scale 1/256, zero point -128).

    TFLite fixes the output quantization of some ops instead of calibrating it; this mirrors
    those. Gradient as in :func:`fake_quant_activation`.
    """
    lo = (QMIN - zero_point) * scale
    hi = (QMAX - zero_point) * scale
    clipped = ops.clip(x, lo, hi)
    q = ops.clip(_round_half_away(x / scale) + zero_point, QMIN, QMAX)
    return clipped + ops.stop_gradient((q - zero_point) * scale - clipped)
