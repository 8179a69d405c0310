"""ConvTransformer: convolutional subsampling + post-LN Transformer encoder (the pilot's model).

``(B, T, n_mels) -> stem (Conv2D s2 x 2 + linear; or the pilot's Conv1D s2 x 2) -> blocks x N
-> mean over time -> logits``. No
positional encoding: the convolutions give the encoder local order, and the classifier pools over
time anyway (and TFLM gets no extra constant tensor).
"""

from __future__ import annotations

import keras

from keras_hrf.models.blocks import classifier_head, subsampling, transformer_block
from keras_hrf.models.hrf_config import HRFConfig

PRESETS = {
    # Sized for the budgets of models.BUDGETS (int8 flash, TFLM arena, measured by the tests):
    # the Conv2D stem's first map (150 x 32 x 4 int8) next to the input sets the arena; the
    # per-node and per-channel records of TFLM (~25 KB for two blocks) are the rest, hence one
    # head. Attention runs at T/4 = 75 frames (40 ms).
    "light": dict(
        d_model=48,
        num_heads=1,
        ffn_dim=96,
        num_blocks=2,
        dropout=0.1,
        norm="post",
        stem="conv2d",
        stem_channels=(4, 16),
        stem_strides=((2, 2), (2, 2)),
    ),
    # The first convolution at time stride 4 keeps its map at 75 x 32 x 4: attention at T/8.
    "tiny": dict(
        d_model=40,
        num_heads=1,
        ffn_dim=80,
        num_blocks=1,
        dropout=0.1,
        norm="post",
        stem="conv2d",
        stem_channels=(4, 8),
        stem_strides=((4, 2), (2, 2)),
    ),
    "large": dict(
        d_model=128,
        num_heads=4,
        ffn_dim=256,
        num_blocks=4,
        dropout=0.1,
        norm="post",
        stem="conv2d",
        stem_channels=(16, 32),
        stem_strides=((2, 2), (2, 2)),
    ),
}


def build_graph(
    inputs,
    num_classes: int,
    hrf: HRFConfig | None,
    d_model: int,
    num_heads: int,
    ffn_dim: int,
    num_blocks: int,
    dropout: float = 0.1,
    norm: str = "post",
    activation: str = "relu",
    subsampling_layers: int = 2,
    stem: str = "conv1d",
    stem_channels: tuple[int, ...] = (8, 16),
    stem_strides: tuple[tuple[int, int], ...] = ((2, 2), (2, 2)),
):
    """Functional graph from ``inputs`` ``(B, T, F)`` to logits ``(B, num_classes)``.

    ``stem`` picks the subsampling (:func:`keras_hrf.models.blocks.subsampling`):
    ``subsampling_layers`` Conv1D layers, or the Conv2D stem with ``stem_channels`` /
    ``stem_strides``.
    """
    x = subsampling(
        inputs,
        d_model,
        "subsample",
        stem,
        layers=subsampling_layers,
        channels=stem_channels,
        strides=stem_strides,
    )
    if dropout:
        x = keras.layers.Dropout(dropout, name="subsample_drop")(x)
    for b in range(num_blocks):
        x = transformer_block(
            x,
            d_model,
            num_heads,
            ffn_dim,
            hrf,
            f"block{b}",
            norm=norm,
            dropout=dropout,
            activation=activation,
        )
    return classifier_head(x, num_classes)
