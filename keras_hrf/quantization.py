"""Fake quantization that mirrors TFLite's int8 scheme, for quantization-aware training.

TFLite's full-integer scheme quantizes weights per output channel, symmetric, to [-127, 127] with
``scale = max|w| / 127`` and round-half-away-from-zero; activations per tensor, asymmetric, to
[-128, 127]. The functions here compute ``dequantize(quantize(x))`` in float with a
straight-through estimator, so gradients flow as if the rounding were the identity.
"""

from __future__ import annotations

from keras import ops


def _round_half_away(x):
    # TFLite rounds half away from zero (std::round), not half to even like ops.round.
    return ops.sign(x) * ops.floor(ops.abs(x) + 0.5)


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
