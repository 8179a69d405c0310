"""A LayerNorm whose int8 TFLite graph is all-integer, in one of three lowerings.

Keras' ``LayerNormalization`` converts to a graph that keeps float ``NEG``/``DEQUANTIZE`` steps
after full-integer quantization (see DESIGN.md). This layer lowers either to

- ``"rsqrt"`` (default): MEAN, SUB, SQUARED_DIFFERENCE/MUL, MEAN, ADD, RSQRT, MUL: the variance
  is an int8 tensor whose range is set by the loudest frame in the calibration data, so a quiet
  frame's variance sits a few int8 steps above zero and its reciprocal square root is coarse;
- ``"l2"``: MEAN, SUB, L2_NORMALIZATION, MUL, ADD: TFLite's integer L2 normalisation computes
  each frame's sum of squares and its inverse square root in 32-bit fixed point, so the
  normalisation is as precise for quiet frames as for loud ones; its output is int8 with the
  fixed scale 1/128;
- ``"pool"``: as ``"rsqrt"``, but the mean (not the variance) is an AVERAGE_POOL_2D over a
  ``(B, T, d, 1)`` view (window ``(1, d)``): CMSIS-NN runs it in ~10 instructions per element on
  Cortex-M4 where TFLM's MEAN takes ~140. The variance stays a MEAN because TFLite gives an
  average pool its input's scale: pooled, the variance of a quiet frame would be a few int8
  steps of the largest square (measured: int8-vs-float agreement 0.82-0.95 instead of 0.95-0.99
  on five trained Conformers; mean-only pooling keeps 0.95-0.99, and saves ~4 % of the
  instructions; ``benchmarks/device_cost.py``).

All compute the same function in float: ``(x - mean) / sqrt(var + eps)`` for ``"rsqrt"``
and ``"pool"``, ``(x - mean) / sqrt(max(var, eps))`` for ``"l2"``, which differ only for frames
whose variance is within an order of magnitude of ``eps`` (1e-5). The lowering is therefore a
conversion choice that a trained model can switch
(:func:`keras_hrf.reparam.set_layer_norm_lowering`).
"""

from __future__ import annotations

import keras
from keras import ops

#: Graph forms of :class:`LayerNorm` (see the module docstring).
LOWERINGS = ("rsqrt", "l2", "pool")


@keras.saving.register_keras_serializable(package="keras_hrf")
class LayerNorm(keras.layers.Layer):
    """Layer normalisation over the last axis: ``(x - mean) * rsqrt(var + eps) * gamma + beta``.

    Input and output shape: ``(..., d)``.

    Args:
        epsilon: Added to the variance before the reciprocal square root (``"rsqrt"``), or its
            floor (``"l2"``).
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned gain ``gamma``.
        lowering: ``"rsqrt"``, ``"l2"`` or ``"pool"``: which TFLite ops the layer converts
            to (module docstring); the float function is the same.
        **kwargs: Base ``Layer`` arguments.
    """

    def __init__(
        self,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        lowering: str = "rsqrt",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"LayerNorm: epsilon must be > 0, got {epsilon!r}")
        if lowering not in LOWERINGS:
            raise ValueError(f"LayerNorm: lowering must be one of {LOWERINGS}, got {lowering!r}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.lowering = lowering
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
        mean = self._mean(x)
        centred = x - mean
        if self.lowering == "l2":
            y = self._l2_normalize(centred) * self._unit_gain(x.shape[-1])
        else:
            # centred * centred (not ops.square) keeps the graph to MUL, which every runtime has.
            var = ops.mean(centred * centred, axis=-1, keepdims=True)
            y = centred * ops.rsqrt(var + self.epsilon)
            if self.gamma is not None:
                y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def _mean(self, x):
        """Mean over the last axis, ``(..., d) -> (..., 1)``: MEAN, or with ``"pool"`` an
        AVERAGE_POOL_2D of window ``(1, d)`` over ``x`` seen as ``(B, T, d, 1)``."""
        if self.lowering != "pool" or len(x.shape) not in (2, 3):
            return ops.mean(x, axis=-1, keepdims=True)
        d = x.shape[-1]
        x4 = ops.expand_dims(x if len(x.shape) == 3 else ops.expand_dims(x, 1), -1)
        m = ops.average_pool(x4, pool_size=(1, d), strides=(1, d), padding="valid")
        m = ops.squeeze(m, -1)  # (B, T, 1)
        return m if len(x.shape) == 3 else ops.squeeze(m, 1)

    def _l2_normalize(self, centred):
        """``centred / ||centred||`` as the converter's L2_NORMALIZATION pattern wants it."""
        import tensorflow as tf

        d = centred.shape[-1]
        # A zero bias keeps the converter from fusing SUB and the square into
        # SQUARED_DIFFERENCE before it looks for the L2-normalisation pattern; it is folded
        # away afterwards (the op list is checked in the tests).
        centred = tf.nn.bias_add(centred, tf.zeros((d,), centred.dtype))
        # ||c||^2 = d * var, so the floor d * eps is the "max(var, eps)" of the docstring.
        return tf.math.l2_normalize(centred, axis=-1, epsilon=d * self.epsilon)

    def _unit_gain(self, d: int):
        """``sqrt(d) * gamma``: from unit norm to unit variance, then the learned gain (one
        constant, so the graph has one MUL after L2_NORMALIZATION)."""
        gain = float(d) ** 0.5
        return gain if self.gamma is None else self.gamma * gain

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "lowering": self.lowering,
            }
        )
        return config
