"""A strided convolution over few channels, computed as a stride-1 convolution over blocks.

A model's first convolution reads a one-channel log-Mel with a tall kernel at a stride (the
ds_cnn light preset: 10 x 4 at (4, 2)). CMSIS-NN runs that op at ~6.6 Cortex-M4 instructions per
MAC (measured, ``benchmarks/device_cost.py``): with one input channel its im2col copies a few
bytes per kernel row and its SIMD dot products are 40 long. The same convolution can be written
as a *space-to-depth* rearrangement followed by a stride-1 convolution (the rewrite behind
YOLOv5's Focus layer and TResNet's stem): cut the padded input into ``sh x sw`` blocks, stack each
block's values as channels (``sh * sw * C`` of them), and convolve with the kernel cut the same
way (``ceil(kh / sh) x ceil(kw / sw)`` taps, the missing taps zero). Every output is the same sum
of the same products, so the function is unchanged; what changes is the TFLite graph (PAD,
RESHAPE, TRANSPOSE, RESHAPE, CONV_2D) and what CMSIS-NN does with it.

:class:`SpaceToDepthConv2D` keeps the original ``Conv2D``'s kernel ``(kh, kw, C, F)`` and bias as
its weights (so a trained ``Conv2D``'s weights load as they are, see
:func:`keras_hrf.reparam.space_to_depth_convs`) and cuts the kernel in ``call`` (constant-folded by
the TFLite converter). The rearrangement is done in 4-D tensors, batch folded into the first
axis, because TFLite Micro's int8 TRANSPOSE takes at most 4 dimensions.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding (the extra row goes after) for one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _output_geometry(h: int, w: int, kernel, strides, padding: str) -> tuple[int, int, int, int]:
    """``(top pad, left pad, output height, output width)`` of ``Conv2D`` on ``h x w``."""
    (kh, kw), (sh, sw) = kernel, strides
    if padding == "same":
        (top, _), (left, _) = _same_pads(h, kh, sh), _same_pads(w, kw, sw)
        return top, left, math.ceil(h / sh), math.ceil(w / sw)
    return 0, 0, (h - kh) // sh + 1, (w - kw) // sw + 1


@keras.saving.register_keras_serializable(package="keras_hrf")
class SpaceToDepthConv2D(keras.layers.Layer):
    """``Conv2D(filters, kernel_size, strides, padding)`` computed over ``strides``-sized blocks.

    Input ``(B, H, W, C)`` with static ``H, W, C``; output ``(B, Ho, Wo, filters)``, exactly the
    shape (and, up to float summation order, the values) of the ``Conv2D`` it replaces.

    Args:
        filters: Output channels ``F``.
        kernel_size: ``(kh, kw)``.
        strides: ``(sh, sw)``, each >= 1.
        padding: ``"same"`` or ``"valid"`` (as ``keras.layers.Conv2D``).
        use_bias: Whether the layer adds a bias.
        activation: An activation applied after the bias (as ``Conv2D``'s).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str = "same",
        use_bias: bool = True,
        activation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("same", "valid"):
            raise ValueError(
                f"SpaceToDepthConv2D: padding must be 'same' or 'valid', got {padding!r}"
            )
        self.filters = int(filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        if min(self.strides) < 1 or min(self.kernel_size) < 1:
            raise ValueError(
                f"SpaceToDepthConv2D: kernel_size and strides must be >= 1, got "
                f"{self.kernel_size} and {self.strides}"
            )
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        h, w, c = input_shape[1:]
        if h is None or w is None or c is None:
            raise ValueError(
                f"SpaceToDepthConv2D needs static height, width and channels, got {input_shape}"
            )
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        top, left, ho, wo = _output_geometry(h, w, self.kernel_size, self.strides, self.padding)
        if ho < 1 or wo < 1:
            raise ValueError(f"SpaceToDepthConv2D: kernel {self.kernel_size} exceeds {input_shape}")
        self._blocks = (math.ceil(kh / sh), math.ceil(kw / sw))
        # Rows / columns the block convolution reads: (output + taps - 1) blocks of the stride.
        rows, cols = (ho - 1 + self._blocks[0]) * sh, (wo - 1 + self._blocks[1]) * sw
        self._geometry = dict(h=h, w=w, c=c, top=top, left=left, rows=rows, cols=cols, ho=ho, wo=wo)
        self.kernel = self.add_weight(
            name="kernel", shape=(kh, kw, c, self.filters), initializer="glorot_uniform"
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )

    def block_kernel(self):
        """The kernel cut into blocks: ``(ceil(kh/sh), ceil(kw/sw), sh * sw * C, F)``, taps past
        the original kernel zero; channel order ``(row in block, column in block, C)``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        (bh, bw), c = self._blocks, self._geometry["c"]
        k = ops.pad(self.kernel, [[0, bh * sh - kh], [0, bw * sw - kw], [0, 0], [0, 0]])
        k = ops.reshape(k, (bh, sh, bw, sw * c * self.filters))
        k = ops.transpose(k, (0, 2, 1, 3))
        return ops.reshape(k, (bh, bw, sh * sw * c, self.filters))

    def call(self, x):
        g, (sh, sw) = self._geometry, self.strides
        if tuple(x.shape[1:]) != (g["h"], g["w"], g["c"]):
            raise ValueError(
                f"{self.name}: built for inputs (B, {g['h']}, {g['w']}, {g['c']}), called on "
                f"{tuple(x.shape)}"
            )
        # Pad (with zeros: int8 PAD pads with the zero point, which is what CONV_2D's own
        # padding means), or crop the rows / columns no output reads.
        bottom, right = g["rows"] - g["h"] - g["top"], g["cols"] - g["w"] - g["left"]
        x = ops.pad(x, [[0, 0], [g["top"], max(bottom, 0)], [g["left"], max(right, 0)], [0, 0]])
        if bottom < 0 or right < 0:
            x = x[:, : g["rows"], : g["cols"], :]
        # (B, rows, cols, C) -> (B * rows/sh, sh, cols/sw, sw * C) -> swap the middle axes ->
        # (B, rows/sh, cols/sw, sh * sw * C); 4-D throughout (TFLM's int8 TRANSPOSE).
        x = ops.reshape(x, (-1, sh, g["cols"] // sw, sw * g["c"]))
        x = ops.transpose(x, (0, 2, 1, 3))
        x = ops.reshape(x, (-1, g["rows"] // sh, g["cols"] // sw, sh * sw * g["c"]))
        y = ops.conv(x, self.block_kernel(), strides=1, padding="valid")
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        _, _, ho, wo = _output_geometry(
            input_shape[1], input_shape[2], self.kernel_size, self.strides, self.padding
        )
        return (input_shape[0], ho, wo, self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "activation": keras.activations.serialize(self.activation),
        }

    @classmethod
    def from_conv2d(cls, conv: keras.layers.Conv2D) -> SpaceToDepthConv2D:
        """The equivalent layer of a (built) ``Conv2D``, same name; load its weights with
        ``set_weights(conv.get_weights())``.

        Raises:
            ValueError: the convolution is dilated, grouped, channels-first or unstrided.
        """
        if tuple(conv.dilation_rate) != (1, 1) or conv.groups != 1:
            raise ValueError(f"{conv.name}: only undilated, ungrouped convolutions rewrite")
        if conv.data_format != "channels_last":
            raise ValueError(f"{conv.name}: only channels_last convolutions rewrite")
        return cls(
            filters=conv.filters,
            kernel_size=tuple(conv.kernel_size),
            strides=tuple(conv.strides),
            padding=conv.padding,
            use_bias=conv.use_bias,
            activation=keras.activations.serialize(conv.activation),
            name=conv.name,
        )
