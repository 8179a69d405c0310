"""Functional building blocks shared by the three model families.

Every block adds its layers to the *functional* graph (no nested sub-models), so that each
``HRFDense`` is a top-level layer that :func:`keras_hrf.reparam.merge` can find and replace, and so
that the TFLite graph of every family is built from the same few TFLM-friendly ops.
"""

from __future__ import annotations

import keras

from keras_hrf.layers import (
    HRFDense,
    HRFPointwiseConv2D,
    LayerNorm,
    LayerToBatchNorm,
    MultiHeadAttentionCore,
)
from keras_hrf.models.hrf_config import HRFConfig

#: Activations TFLite Micro has int8 kernels for (no GELU kernel in TFLM, see DESIGN.md).
ALLOWED_ACTIVATIONS = ("relu", "silu", "swish", None)

#: Momentum of every BatchNormalization. Keras' default (0.99) averages the batch statistics over
#: ~100 steps; an epoch of RAVDESS is ~30 steps, so after one epoch 0.99**30 = 74 % of the moving
#: statistics would still be the initial mean 0 / variance 1, and validation (which normalises
#: with the moving statistics) would see a different network from the one being trained - a
#: DS-CNN with the default predicted one class on validation for 11 epochs. With 0.9 the initial
#: values weigh 0.9**30 = 4 % after one epoch, and the estimate still averages ~10 batches.
BN_MOMENTUM = 0.9


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """A ``BatchNormalization`` with :data:`BN_MOMENTUM`: folded at conversion into the
    convolution before it (the TFLite converter) or into the Dense layers after it
    (:func:`keras_hrf.reparam.fold_batch_norms_forward`, a pre-norm block's)."""
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def check_activation(activation: str | None) -> str | None:
    """Refuse activations that TFLite Micro cannot run, with the reason."""
    if activation not in ALLOWED_ACTIVATIONS:
        raise ValueError(
            f"activation {activation!r} is not supported: the model must run under TFLite Micro, "
            f"which has int8 kernels for {', '.join(a for a in ALLOWED_ACTIVATIONS if a)} "
            f"(no GELU); pick one of those"
        )
    return activation


def linear(
    units: int,
    site: str,
    hrf: HRFConfig | None,
    name: str,
    activation: str | None = None,
) -> keras.layers.Layer:
    """A ``Dense`` layer, or an ``HRFDense`` if ``site`` is one of ``hrf.sites``.

    Both have the same ``name``, which is what lets the merged model's layer list match that of a
    model built without HRF.
    """
    if hrf is not None and site in hrf.sites:
        return HRFDense(units, activation=activation, name=name, **hrf.layer_kwargs())
    return keras.layers.Dense(units, activation=activation, name=name)


def pointwise_conv(
    units: int,
    hrf: HRFConfig | None,
    name: str,
    activation: str | None = None,
    use_bias: bool = True,
) -> keras.layers.Layer:
    """A 1x1 ``Conv2D``, or an ``HRFPointwiseConv2D`` at the ``pointwise`` HRF site (same name)."""
    if hrf is not None and "pointwise" in hrf.sites:
        return HRFPointwiseConv2D(
            units, activation=activation, use_bias=use_bias, name=name, **hrf.layer_kwargs()
        )
    return keras.layers.Conv2D(units, 1, activation=activation, use_bias=use_bias, name=name)


def feed_forward(
    x,
    d_model: int,
    ffn_dim: int,
    hrf: HRFConfig | None,
    name: str,
    activation: str = "relu",
    dropout: float = 0.0,
):
    """Position-wise FFN ``W2·act(W1·x + b1) + b2``; ``(B, T, d) -> (B, T, d)``.

    With HRF at ``ffn_in`` the first linear is an ``HRFDense``: the extra linear of the paper sits
    directly before ``W1`` with nothing non-linear in between, so it merges exactly.
    """
    check_activation(activation)
    h = linear(ffn_dim, "ffn_in", hrf, f"{name}_fc1", activation=activation)(x)
    if dropout:
        h = keras.layers.Dropout(dropout, name=f"{name}_hidden_drop")(h)
    return linear(d_model, "ffn_out", hrf, f"{name}_fc2")(h)


def self_attention(
    x,
    d_model: int,
    num_heads: int,
    hrf: HRFConfig | None,
    name: str,
    window: int | None = None,
    mask=None,
    per_head: bool = True,
):
    """Multi-head self-attention from Dense projections + :class:`MultiHeadAttentionCore`.

    ``(B, T, d) -> (B, T, d)``. With ``window``, attention is local to non-overlapping windows.
    """
    q = linear(d_model, "attention", hrf, f"{name}_query")(x)
    k = linear(d_model, "attention", hrf, f"{name}_key")(x)
    v = linear(d_model, "attention", hrf, f"{name}_value")(x)
    ctx = MultiHeadAttentionCore(
        num_heads, window=window, mask=mask, per_head=per_head, name=f"{name}_core"
    )([q, k, v])
    return linear(d_model, "attention", hrf, f"{name}_out")(ctx)


#: Kinds of normalisation layer (:func:`normalization`).
NORMS = ("layer", "batch", "layer_to_batch")


def normalization(kind: str, name: str) -> keras.layers.Layer:
    """A normalisation over the last axis: ``"layer"`` (:class:`LayerNorm`), ``"batch"``
    (:func:`batch_norm`) or ``"layer_to_batch"`` (:class:`LayerToBatchNorm`, annealed from the
    first to the second while training)."""
    if kind == "layer":
        return LayerNorm(name=name)
    if kind == "batch":
        return batch_norm(name)
    if kind == "layer_to_batch":
        return LayerToBatchNorm(momentum=BN_MOMENTUM, name=name)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


#: Placements / kinds of a Transformer block's normalisation (``norm=`` of
#: :func:`transformer_block`).
TRANSFORMER_NORMS = ("post", "pre", "batch", "layer_to_batch")


def transformer_block(
    x,
    d_model: int,
    num_heads: int,
    ffn_dim: int,
    hrf: HRFConfig | None,
    name: str,
    norm: str = "post",
    dropout: float = 0.1,
    activation: str = "relu",
    window: int | None = None,
):
    """A Transformer encoder block (self-attention + FFN, residuals, normalisation).

    Args:
        norm: ``"post"`` (``LN(x + f(x))``, the original Transformer), ``"pre"``
            (``x + f(LN(x))``, usually easier to train and friendlier to int8) or ``"batch"``
            (``x + f(BN(x))``: pre-norm with a BatchNormalization, whose moving statistics make
            it an affine map at inference that the converter folds into the Dense layers of
            ``f``, :func:`keras_hrf.reparam.fold_batch_norms_forward`: no normalisation op on
            the device) or ``"layer_to_batch"`` (the same at the end of training, where it
            started as ``"pre"``: :class:`~keras_hrf.layers.LayerToBatchNorm`).
    """
    if norm not in TRANSFORMER_NORMS:
        raise ValueError(f"norm must be one of {TRANSFORMER_NORMS}, got {norm!r}")

    def drop(t, tag):
        return keras.layers.Dropout(dropout, name=f"{name}_{tag}_drop")(t) if dropout else t

    def sublayer(t, fn, tag):
        if norm != "post":
            kind = "layer" if norm == "pre" else norm
            y = fn(normalization(kind, f"{name}_{tag}_norm")(t))
            return keras.layers.Add(name=f"{name}_{tag}_add")([t, drop(y, tag)])
        y = fn(t)
        t = keras.layers.Add(name=f"{name}_{tag}_add")([t, drop(y, tag)])
        return LayerNorm(name=f"{name}_{tag}_norm")(t)

    x = sublayer(
        x,
        lambda t: self_attention(t, d_model, num_heads, hrf, f"{name}_mhsa", window=window),
        "mhsa",
    )
    return sublayer(
        x,
        lambda t: feed_forward(
            t, d_model, ffn_dim, hrf, f"{name}_ffn", activation=activation, dropout=dropout
        ),
        "ffn",
    )


#: Subsampling stems of the Transformer families (``stem=`` preset option).
STEMS = ("conv1d", "conv2d")


def conv_subsampling(x, d_model: int, name: str, layers: int = 2, kernel_size: int = 3):
    """``layers`` Conv1D(d_model, kernel, stride 2, ReLU): ``(B, T, F) -> (B, ~T/2^layers, d)``.

    The mel bands are the convolution's input channels, so no layer sees local structure along
    frequency (the ``"conv1d"`` stem).
    """
    for i in range(layers):
        x = keras.layers.Conv1D(
            d_model,
            kernel_size,
            strides=2,
            padding="same",
            activation="relu",
            name=f"{name}_conv{i}",
        )(x)
    return x


def conv2d_subsampling(
    x,
    d_model: int,
    name: str,
    channels: tuple[int, ...] = (8, 16),
    strides: tuple[tuple[int, int], ...] = ((2, 2), (2, 2)),
):
    """The Conformer / ESPnet stem: Conv2D 3x3 (ReLU) layers over (time, mel), then a linear.

    ``(B, T, F) -> (B, T', F', 1) -> Conv2D ... -> (B, T', F'·C) -> Dense(d_model)`` with ``T'``
    and ``F'`` divided by the product of ``strides`` (``"same"`` padding). Unlike the Conv1D stem
    the kernels see local structure along frequency (formants, harmonics, pitch movement). Ops:
    RESHAPE, CONV_2D, FULLY_CONNECTED. The first feature map is what sets the TFLite Micro arena
    (``T/s·F/s·C`` int8 bytes next to the ``T·F`` input), hence few channels at full resolution.

    Args:
        channels: Output channels of each Conv2D.
        strides: ``(time, frequency)`` stride of each Conv2D. The kernel is 3 along an axis,
            or the stride where that is larger (so that no input frame or band is skipped).
    """
    if len(channels) != len(strides) or not channels:
        raise ValueError(
            f"conv2d stem: need one stride per conv layer, got channels={channels!r}, "
            f"strides={strides!r}"
        )
    frames, bands = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((frames, bands, 1), name=f"{name}_expand")(x)
    for i, (c, s) in enumerate(zip(channels, strides)):
        x = keras.layers.Conv2D(
            int(c),
            tuple(max(3, int(n)) for n in s),
            strides=tuple(s),
            padding="same",
            activation="relu",
            name=f"{name}_conv{i}",
        )(x)
    _, t, f, c = x.shape
    x = keras.layers.Reshape((t, f * c), name=f"{name}_flatten")(x)
    return keras.layers.Dense(d_model, name=f"{name}_proj")(x)


def subsampling(
    x,
    d_model: int,
    name: str,
    stem: str = "conv1d",
    layers: int = 2,
    channels: tuple[int, ...] = (8, 16),
    strides: tuple[tuple[int, int], ...] = ((2, 2), (2, 2)),
):
    """The stem a preset names: ``"conv1d"`` (:func:`conv_subsampling` with ``layers``) or
    ``"conv2d"`` (:func:`conv2d_subsampling` with ``channels`` and ``strides``)."""
    if stem == "conv1d":
        return conv_subsampling(x, d_model, name, layers=layers)
    if stem == "conv2d":
        return conv2d_subsampling(x, d_model, name, channels=channels, strides=strides)
    raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")


def classifier_head(x, num_classes: int, dropout: float = 0.0):
    """Temporal average pooling and a linear classifier producing logits ``(B, num_classes)``."""
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_drop")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)
