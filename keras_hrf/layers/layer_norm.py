"""A LayerNorm written as mean / variance / rsqrt, so that its int8 TFLite graph is all-integer.

Keras' ``LayerNormalization`` converts to a graph that keeps float ``NEG``/``DEQUANTIZE`` steps
after full-integer quantization (see DESIGN.md); this one lowers to MEAN, SUB, MUL, ADD and RSQRT,
all of which have int8 kernels in TFLite and TFLite Micro.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_hrf")
class LayerNorm(keras.layers.Layer):
    """Layer normalisation over the last axis: ``(x - mean) * rsqrt(var + eps) * gamma + beta``.

    Input and output shape: ``(..., d)``.

    Args:
        epsilon: Added to the variance before the reciprocal square root.
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned gain ``gamma``.
        **kwargs: Base ``Layer`` arguments.
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"LayerNorm: epsilon must be > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.supports_masking = True

    def build(self, input_shape):
        d = input_shape[-1]
        self.gamma = (
            self.add_weight(name="gamma", shape=(d,), initializer="ones") if self.scale else None
        )
        self.beta = (
            self.add_weight(name="beta", shape=(d,), initializer="zeros") if self.center else None
        )

    def call(self, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        # centred * centred (not ops.square) keeps the graph to MUL, which every runtime has.
        var = ops.mean(centred * centred, axis=-1, keepdims=True)
        y = centred * ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "center": self.center, "scale": self.scale})
        return config
