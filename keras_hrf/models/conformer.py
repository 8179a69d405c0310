"""Conformer (Gulati et al. 2020), adapted to TFLite Micro.

Block: ``x + ½·FFN(LN x)``, ``x + MHSA(LN x)``, ``x + Conv(LN x)``, ``x + ½·FFN(LN x)``, then LN.
The convolution module is pointwise (2d) + GLU, depthwise Conv1D, BatchNorm, SiLU, pointwise (d);
its pointwise linears are the ``pointwise`` HRF site.
Both macaron FFN halves carry HRF at the chosen sites. SiLU (not GELU/Swish-with-beta) because TFLM
has int8 kernels for LOGISTIC and MUL.
"""

from __future__ import annotations

import keras

from keras_hrf.layers import GLU
from keras_hrf.models.blocks import (
    NORMS,
    batch_norm,
    classifier_head,
    feed_forward,
    linear,
    normalization,
    self_attention,
    subsampling,
)
from keras_hrf.models.hrf_config import HRFConfig

PRESETS = {
    # Sized for models.BUDGETS: one block, as a Conformer block is ~80 TFLite ops (five
    # LayerNorms, two FFNs, attention, the convolution module) whose TFLM records weigh on the
    # arena as much as the activations do.
    "light": dict(
        d_model=48,
        num_heads=2,
        ffn_dim=96,
        num_blocks=1,
        conv_kernel=15,
        dropout=0.1,
        stem="conv2d",
        stem_channels=(4, 16),
        stem_strides=((2, 2), (2, 2)),
    ),
    "tiny": dict(
        d_model=24,
        num_heads=1,
        ffn_dim=48,
        num_blocks=1,
        conv_kernel=15,
        dropout=0.1,
        stem="conv2d",
        stem_channels=(4, 8),
        stem_strides=((4, 2), (2, 2)),
    ),
    # ~4x light's parameters and MACs: big enough to test "large > light" and to teach, small
    # enough for 3 seeds x 6 folds on 2 cores (the former 1.1 M-parameter preset took ~18x
    # light's time per epoch).
    "large": dict(
        d_model=80,
        num_heads=4,
        ffn_dim=160,
        num_blocks=2,
        conv_kernel=15,
        dropout=0.1,
        stem="conv2d",
        stem_channels=(8, 16),
        stem_strides=((2, 2), (2, 2)),
    ),
}


def _conv_module(x, d_model: int, kernel: int, name: str, dropout: float, hrf, activation: str):
    # The pointwise convolutions of a sequence are per-frame linears (Dense); they take HRF at
    # the "pointwise" site.
    h = linear(2 * d_model, "pointwise", hrf, f"{name}_pw1")(x)
    h = GLU(name=f"{name}_glu")(h)
    h = keras.layers.DepthwiseConv1D(kernel, padding="same", name=f"{name}_dw")(h)
    h = batch_norm(f"{name}_bn")(h)
    h = keras.layers.Activation(activation, name=f"{name}_{activation}")(h)
    h = linear(d_model, "pointwise", hrf, f"{name}_pw2")(h)
    if dropout:
        h = keras.layers.Dropout(dropout, name=f"{name}_drop")(h)
    return h


def build_graph(
    inputs,
    num_classes: int,
    hrf: HRFConfig | None,
    d_model: int,
    num_heads: int,
    ffn_dim: int,
    num_blocks: int,
    conv_kernel: int = 15,
    dropout: float = 0.1,
    subsampling_layers: int = 2,
    stem: str = "conv1d",
    stem_channels: tuple[int, ...] = (8, 16),
    stem_strides: tuple[tuple[int, int], ...] = ((2, 2), (2, 2)),
    activation: str = "silu",
    norm: str = "layer",
):
    """Functional graph from ``inputs`` ``(B, T, F)`` to logits ``(B, num_classes)``.

    Stem options as in :func:`keras_hrf.models.conv_transformer.build_graph`. ``activation``
    is that of the FFNs and of the convolution module (``"silu"`` as in the paper, or
    ``"relu"``, which TFLite fuses into the preceding FULLY_CONNECTED / DEPTHWISE_CONV_2D: no
    LOGISTIC and MUL per element on a microcontroller; the GLU keeps its sigmoid).

    ``norm`` is that of the five normalisations of a block: ``"layer"`` (:class:`LayerNorm`, per
    frame, as in the paper) or ``"batch"`` (BatchNormalization over batch and time with the
    moving statistics at inference: the converter folds each one that feeds only Dense layers
    into them, :func:`keras_hrf.reparam.fold_batch_norms_forward`; in a one-block model such as
    the light preset that is all five, so its deployed graph has no normalisation op, while in
    deeper ones a block's output norm also feeds the next block's residual and stays a MUL and
    an ADD), or ``"layer_to_batch"``
    (:class:`~keras_hrf.layers.LayerToBatchNorm`: trains as LayerNorm, annealed to the
    BatchNormalization that is deployed, as ``"batch"``; ``TrainConfig.norm_anneal``).
    """
    if activation not in ("silu", "relu"):
        raise ValueError(f"conformer activation must be 'silu' or 'relu', got {activation!r}")
    if norm not in NORMS:
        raise ValueError(f"conformer norm must be one of {NORMS}, got {norm!r}")

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

    def residual(t, y, tag, scale=None):
        if dropout:
            y = keras.layers.Dropout(dropout, name=f"{tag}_drop")(y)
        if scale is not None:
            y = keras.layers.Rescaling(scale, name=f"{tag}_half")(y)
        return keras.layers.Add(name=f"{tag}_add")([t, y])

    for b in range(num_blocks):
        n = f"block{b}"
        for tag, kind in (("ffn1", "ffn"), ("mhsa", "mhsa"), ("conv", "conv"), ("ffn2", "ffn")):
            h = normalization(norm, f"{n}_{tag}_norm")(x)
            if kind == "ffn":
                h = feed_forward(
                    h, d_model, ffn_dim, hrf, f"{n}_{tag}", activation=activation, dropout=dropout
                )
                x = residual(x, h, f"{n}_{tag}", scale=0.5)
            elif kind == "mhsa":
                h = self_attention(h, d_model, num_heads, hrf, f"{n}_mhsa")
                x = residual(x, h, f"{n}_{tag}")
            else:
                h = _conv_module(
                    h,
                    d_model,
                    conv_kernel,
                    f"{n}_conv",
                    dropout=0.0,
                    hrf=hrf,
                    activation=activation,
                )
                x = residual(x, h, f"{n}_{tag}")
        x = normalization(norm, f"{n}_out_norm")(x)
    return classifier_head(x, num_classes)
