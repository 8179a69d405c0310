"""Gated linear unit, as used by the Conformer convolution module."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_hrf")
class GLU(keras.layers.Layer):
    """``a * sigmoid(b)`` where ``[a, b]`` are the two halves of the last axis.

    Input shape ``(..., 2c)``, output shape ``(..., c)``. Lowers to two STRIDED_SLICE, LOGISTIC
    and MUL in TFLite, all with int8 kernels in TFLite Micro.
    """

    def call(self, x):
        half = x.shape[-1] // 2
        return x[..., :half] * keras.ops.sigmoid(x[..., half:])

    def build(self, input_shape):
        if input_shape[-1] is None or input_shape[-1] % 2:
            raise ValueError(f"GLU {self.name!r}: last axis must be even, got {input_shape[-1]}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] // 2,)

    def get_config(self):
        return super().get_config()
