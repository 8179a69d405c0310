"""DS-CNN: the depthwise-separable CNN of Arm's keyword spotting (Zhang et al. 2017, "Hello Edge"),
adapted to 3 s of log-Mel and sized for a microcontroller's arena.

``(B, T, F) -> (B, T, F, 1) -> Conv2D (stride) -> BN -> ReLU -> [DepthwiseConv2D 3x3 -> BN ->
ReLU -> Conv2D 1x1 -> BN -> ReLU] x N -> global average pool -> logits``. It is the peer a user
would pick instead of a Transformer, trained by the same code, and the HRF idea applies to it too:
the 1x1 (pointwise) convolutions are linear maps of each position's channels, so at the
``pointwise`` HRF site they train as :class:`~keras_hrf.layers.HRFPointwiseConv2D` and merge back
into plain 1x1 convolutions (BatchNorm, which follows each, is folded into them at conversion).

Arm's DS-CNN starts with a 10x4 convolution at stride 2 with 64 channels; on a 300 x 64 log-Mel
its first feature map is 150 x 32 x 64 int8 = 307 KB, which no small microcontroller holds. The
presets here keep the first map small instead (a larger first stride and few channels), which is
what bounds the TFLite Micro arena: that map and the input are alive together.
"""

from __future__ import annotations

import keras

from keras_hrf.models.blocks import batch_norm, pointwise_conv
from keras_hrf.models.hrf_config import HRFConfig

PRESETS = {
    # <= 100 KiB int8 flash, <= 64 KiB TFLM arena (models.BUDGETS): the first map is
    # 75 x 32 x 12 int8 (28.8 KB, next to the 19.2 KB input); channels grow only after the
    # blocks have downsampled.
    "light": dict(
        first_filters=12,
        first_kernel=(10, 4),
        first_strides=(4, 2),
        filters=(32, 48, 96, 128, 160),
        strides=((2, 2), (1, 1), (2, 2), (1, 1), (1, 1)),
        dropout=0.1,
    ),
    # <= 48 KiB flash, <= 48 KiB arena: first map 75 x 16 x 8.
    "tiny": dict(
        first_filters=8,
        first_kernel=(10, 4),
        first_strides=(4, 4),
        filters=(24, 48, 64, 96),
        strides=((2, 2), (1, 1), (2, 1), (1, 1)),
        dropout=0.1,
    ),
    # ~2.5x light's parameters and MACs (Arm's DS-CNN width of 64 from the first block on, the
    # first map kept at 75 x 32): the former 273 K-parameter preset, with a 150 x 32 x 64 first
    # map, took ~9x light's time per epoch.
    "large": dict(
        first_filters=24,
        first_kernel=(10, 4),
        first_strides=(4, 2),
        filters=(64, 96, 160, 192, 256),
        strides=((2, 2), (1, 1), (2, 2), (1, 1), (1, 1)),
        dropout=0.2,
    ),
}


def build_graph(
    inputs,
    num_classes: int,
    hrf: HRFConfig | None,
    first_filters: int,
    first_kernel: tuple[int, int],
    first_strides: tuple[int, int],
    filters: tuple[int, ...],
    strides: tuple[tuple[int, int], ...],
    dropout: float = 0.1,
):
    """Functional graph from ``inputs`` ``(B, T, F)`` to logits ``(B, num_classes)``.

    Args:
        first_filters: Channels of the first (full) convolution.
        first_kernel: Its ``(time, frequency)`` kernel.
        first_strides: Its stride; sets the size of the first feature map (and the arena).
        filters: Output channels of each depthwise-separable block's pointwise convolution.
        strides: ``(time, frequency)`` stride of each block's depthwise convolution.
        dropout: Dropout before the classifier.
    """
    if len(filters) != len(strides) or not filters:
        raise ValueError(
            f"ds_cnn: need one stride per block, got filters={filters!r}, strides={strides!r}"
        )
    frames, bands = inputs.shape[1], inputs.shape[2]
    x = keras.layers.Reshape((frames, bands, 1), name="expand")(inputs)
    x = keras.layers.Conv2D(
        int(first_filters),
        tuple(first_kernel),
        strides=tuple(first_strides),
        padding="same",
        use_bias=False,
        name="conv0",
    )(x)
    x = batch_norm("conv0_bn")(x)
    x = keras.layers.ReLU(name="conv0_relu")(x)
    for i, (c, s) in enumerate(zip(filters, strides)):
        n = f"block{i}"
        x = keras.layers.DepthwiseConv2D(
            3, strides=tuple(s), padding="same", use_bias=False, name=f"{n}_dw"
        )(x)
        x = batch_norm(f"{n}_dw_bn")(x)
        x = keras.layers.ReLU(name=f"{n}_dw_relu")(x)
        x = pointwise_conv(int(c), hrf, f"{n}_pw", use_bias=False)(x)
        x = batch_norm(f"{n}_pw_bn")(x)
        x = keras.layers.ReLU(name=f"{n}_pw_relu")(x)
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        # The same average as GlobalAveragePooling2D, written as one window over the whole map:
        # that converts to AVERAGE_POOL_2D (CMSIS-NN's arm_avgpool_s8) where the global pool
        # converts to MEAN, which TFLite Micro runs with its reference kernel.
        x = keras.layers.AveragePooling2D((h, w), name="pool")(x)
        x = keras.layers.Flatten(name="pool_flat")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_drop")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)
