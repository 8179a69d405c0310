"""Multiply-accumulate counts of a model per inference (batch 1)."""

from __future__ import annotations

import math

import keras

from keras_hrf.layers import HRFDense, MultiHeadAttentionCore, SpaceToDepthConv2D


def _positions(shape) -> int:
    """Number of positions a per-position linear runs at: the product of the middle axes."""
    return math.prod(int(n) for n in shape[1:-1]) if len(shape) > 2 else 1


def layer_macs(layer: keras.layers.Layer, input_shape, output_shape) -> int:
    """MACs of one call of ``layer`` (batch 1) given its (first) input and output shapes.

    Counts the matrix products and convolutions, which dominate; element-wise work (norms,
    activations, residual adds, pooling, softmax) is not counted, as is usual for MAC figures.
    """
    if isinstance(layer, HRFDense):
        d = int(input_shape[-1])
        k = layer.inner_width(d)
        chain = d * k + k * k * (layer.depth - 2) + k * layer.units
        return _positions(input_shape) * chain
    if isinstance(layer, keras.layers.Dense):
        return _positions(input_shape) * int(input_shape[-1]) * layer.units
    if isinstance(layer, keras.layers.DepthwiseConv1D):
        k = layer.kernel_size[0]
        return int(output_shape[1]) * k * int(input_shape[-1]) * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv1D):
        k = layer.kernel_size[0]
        cin = int(input_shape[-1]) // layer.groups
        return int(output_shape[1]) * k * cin * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        out = int(output_shape[1]) * int(output_shape[2])
        return out * kh * kw * int(input_shape[-1]) * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = int(input_shape[-1]) // layer.groups
        return int(output_shape[1]) * int(output_shape[2]) * kh * kw * cin * layer.filters
    if isinstance(layer, SpaceToDepthConv2D):  # the convolution it computes, not its zero taps
        kh, kw = layer.kernel_size
        return (
            int(output_shape[1])
            * int(output_shape[2])
            * kh
            * kw
            * int(input_shape[-1])
            * (layer.filters)
        )
    if isinstance(layer, MultiHeadAttentionCore):
        t, d = int(input_shape[1]), int(input_shape[-1])
        span = layer.window if layer.window is not None else t
        return 2 * t * span * d  # q·kᵀ and softmax·v
    return 0


def count_macs(model: keras.Model) -> int:
    """Total multiply-accumulates of one inference of ``model`` (batch 1).

    HRF layers are counted as trained (the factor chain applied in turn), so an HRF model costs
    more than its merged twin, which costs exactly what the plain model does.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            inputs = node.input_tensors
            if not inputs:
                continue
            out = node.output_tensors[0]
            total += layer_macs(layer, inputs[0].shape, out.shape)
    return int(total)
