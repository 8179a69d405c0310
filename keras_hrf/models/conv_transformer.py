"""ConvTransformer: convolutional subsampling + post-LN Transformer encoder (the pilot's model).

``(B, T, n_mels) -> Conv1D s2 -> Conv1D s2 -> blocks x N -> mean over time -> logits``. No
positional encoding: the convolutions give the encoder local order, and the classifier pools over
time anyway (and TFLM gets no extra constant tensor).
"""

from __future__ import annotations

import keras

from keras_hrf.models.blocks import classifier_head, conv_subsampling, transformer_block
from keras_hrf.models.hrf_config import HRFConfig

PRESETS = {
    # The pilot's light model (92,168 parameters for 64 mels, 8 classes): a ~100 KB int8
    # flatbuffer; attention runs at T/4 = 75 frames, so one 75x75 int8 score matrix per head.
    "light": dict(d_model=64, num_heads=4, ffn_dim=128, num_blocks=2, dropout=0.1, norm="post"),
    "large": dict(d_model=128, num_heads=4, ffn_dim=256, num_blocks=4, dropout=0.1, norm="post"),
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
):
    """Functional graph from ``inputs`` ``(B, T, F)`` to logits ``(B, num_classes)``."""
    x = conv_subsampling(inputs, d_model, "subsample", layers=subsampling_layers)
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
